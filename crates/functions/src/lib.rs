//! The entry points of verified-uploads: everything that knows how it was called.
//!
//! - `http`: the one axum `Router`, served by `lambda_http::run` in Lambda and by the local
//!   server; handlers, Uppy's Companion routes, the OpenAPI document, problem pages.
//! - `lambda`: the verifier and webhooks functions' handlers.
//! - `local`: `make dev`'s in-process verifier, sweeper and webhook deliveries.
//! - `config`: each binary's settings, read and checked at start.
//! - `wiring`: the service built over the AWS adapters, once per cold start.
//! - `webhooks`: Standard Webhooks signing and delivery.
//! - `verifier_cli`: the verifier binary's command line outside Lambda.
//!
//! `src/bin/*` only read their settings and call these.

pub mod config;
pub mod http;
pub mod lambda;
pub mod local;
pub mod verifier_cli;
pub mod webhooks;
pub mod wiring;
