//! Nothing here: the package exists for its integration test binary, `it/`.
