//! The wire contract of verified-uploads, shared by the service and the CLI: the record's JSON
//! and its statuses (`record`), the digest and part plan both sides compute (`digest`, `plan`),
//! problem types (`problem`), verdict events and webhooks (`events`), and the verifier queue's
//! messages (`queue`). Serde shapes and the arithmetic both sides must agree on; no I/O.

mod chain;
mod digest;
pub mod events;
mod invalid;
mod plan;
pub mod problem;
pub mod queue;
pub mod receipt;
mod record;

pub use chain::{BLOCK, Chain, ChainState, PartStates};
pub use digest::Sha256;
pub use invalid::Invalid;
pub use plan::{
    GIB, MAX_PART_COUNT, MAX_PART_SIZE, MIB, MIN_PART_SIZE, PartNumber, PartPlan,
    S3_MAX_OBJECT_BYTES,
};
pub use record::{Kind, Record, Status};
