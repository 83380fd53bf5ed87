//! Values that are valid by construction: once parsed at the edge, nothing downstream re-checks
//! them. Identifiers (`ids`), what clients declare (`values`), the part plan (`plan`) and the checks
//! on what S3 holds (`parts`), the record (`record`) and its state changes (`transition`).

mod ids;
mod parts;
mod plan;
mod record;
mod transition;
mod values;

pub use ids::{LeaseToken, ObjectKey, PartNumber, UploadId};
pub use parts::{ClaimedPart, ListedPart, PartsError, check_parts, measure, multipart_etag};
pub use plan::{MAX_PART_COUNT, MAX_PART_SIZE, MIN_PART_SIZE, PartPlan, S3_MAX_OBJECT_BYTES};
pub use record::{Kind, Progress, Status, UploadRecord, rfc3339, timestamp, timestamp_now};
pub use transition::{Change, Guard, Saved};
pub use values::{AllowedContentTypes, ContentType, Filename, Metadata, Sha256};

/// Why a value was refused; `field` names the input so the client can fix it. Each parser names
/// its own value (`upload_id`, `part_number`, `sha256`, …); the edge renames it with `at` to the
/// field the client actually sent.
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

    /// The same refusal, for the request field `field`.
    pub fn at(self, field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..self
        }
    }
}
