//! The integration tests, one binary: the real `Router` and AWS SDK clients against the emulator
//! that `make test` starts (`AWS_ENDPOINT_URL`), pre-signed URLs against an in-process s3s server,
//! and what S3 itself refuses against a strict S3 (`strict_s3`, `STRICT_S3_ENDPOINT`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod abandoned;
mod api;
mod chain;
mod cli;
mod companion;
mod conformance;
mod contract;
mod events;
mod fanout;
mod faults;
mod hostile;
mod lambda;
mod limits;
mod presigned;
mod queue;
mod races;
mod receipts;
mod replays;
mod strict_s3;
mod verdicts;
mod verify;
mod versions;
