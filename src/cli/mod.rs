//! Command-line front ends of the binaries, for use outside Lambda.

pub mod verify;
