//! Values that are valid by construction: once parsed at the edge, nothing downstream re-checks them.

mod ids;
mod plan;
mod record;

pub use ids::{ContentType, Filename, Metadata, PartNumber, Sha256, UploadId};
pub use plan::{MAX_PART_COUNT, MAX_PART_SIZE, MIN_PART_SIZE, PartPlan, S3_MAX_OBJECT_BYTES};
pub use record::{Kind, Status, UploadRecord, rfc3339, timestamp, timestamp_now};

/// Why a value was refused; `field` names the input so the client can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
