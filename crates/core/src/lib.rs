//! The core of verified-uploads: no HTTP, Lambda or AWS SDK type reaches it (its dependencies
//! say so).
//!
//! - `domain`: values valid by construction (ids, digests, the part plan, the record and its
//!   state changes); no I/O.
//! - `ports`: what the use cases need from the world, as small traits; `memory` (feature
//!   `memory`): faithful in-memory ports with fault injection, for fast state-machine tests.
//! - `service`: the use cases, one file each (`create`, `parts`, `complete`, `finish`,
//!   `verifier`, `announce`, `download`, `abort`), speaking only to the ports.
//! - `hash`: an object streamed through SHA-256 in constant memory.
//! - `receipt`: a verified record as a signed, offline-checkable receipt (compact JWS, ES256),
//!   over the `ReceiptSigner` port.
//! - `settings`: the values the use cases are configured with (parsed by the entry points).
//! - `error`: what a use case answers instead of its result, mapped to HTTP once by the API.

pub mod domain;
pub mod error;
pub mod hash;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod ports;
pub mod receipt;
pub mod segments;
pub mod service;
pub mod settings;
pub mod view;
