//! Lambda entry points beside `http` (whose router `lambda_http` serves as the `api` function):
//! the `verifier` and `webhooks` functions' handlers.

pub mod verifier;
pub mod webhooks;
