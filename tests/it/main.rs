//! The integration tests, one binary: the real `Router` and AWS SDK clients against the emulator
//! that `make test` starts (`AWS_ENDPOINT_URL`), and pre-signed URLs against an in-process s3s server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod api;
mod cli;
mod companion;
mod contract;
mod events;
mod hostile;
mod lambda;
mod limits;
mod presigned;
mod queue;
mod replays;
mod verdicts;
mod verify;
mod versions;
