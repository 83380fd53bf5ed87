//! Direct-to-S3 multipart uploads, verified end to end by SHA-256.
//!
//! The domain (`domain`, `service`, `verify`) speaks only to the ports in `ports`; `aws` holds the
//! one adapter of each port, `http` the axum router shared by Lambda and the local server.

pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod ports;
pub mod presign;
pub mod s3_event;
pub mod service;
pub mod verify;
