//! Direct-to-S3 multipart uploads, verified end to end by SHA-256.
//!
//! - `domain`: values valid by construction (ids, digests, the part plan, the record and its
//!   state changes); no I/O.
//! - `service`: the use cases, one file each (`create`, `parts`, `complete`, `verifier`,
//!   `abort`), speaking only to the ports in `ports`; `verify` streams an object through SHA-256.
//! - `aws`: the one adapter of each port (S3, DynamoDB, Lambda); `memory` (tests only): faithful
//!   in-memory ports with fault injection, for fast state-machine tests.
//! - Entry points: `http` (the axum router, served by Lambda and locally), `lambda` (the verifier
//!   function's handler), `cli`, `client` (the `verified-uploads` command-line client), `local`
//!   (the in-process verifier of the local server);
//!   `src/bin/*` only wire configuration and clients to them.

pub mod aws;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod lambda;
pub mod local;
#[cfg(test)]
pub mod memory;
pub mod ports;
pub mod presign;
pub mod service;
pub mod verify;
pub mod webhooks;
