//! State-machine tests over the in-memory ports.
