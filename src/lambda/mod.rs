//! Lambda entry points beside `http` (whose router `lambda_http` serves as the `api` function):
//! the `verifier` function's handler.

pub mod verifier;
