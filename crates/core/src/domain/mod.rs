//! Values that are valid by construction: once parsed at the edge, nothing downstream re-checks
//! them. Identifiers (`ids`), what clients declare (`values`), the part plan (`plan`) and the checks
//! on what S3 holds (`parts`), the record (`record`), the record as stored (`item`) and its state
//! changes (`transition`).

mod fanned;
mod ids;
mod item;
mod parts;
mod record;
mod stamps;
mod transition;
mod values;

pub use fanned::{Fanned, SegmentEnd, SegmentEnds};
pub use ids::{LeaseToken, ObjectKey, UploadId};
pub use item::{
    ANNOUNCE, Cond, IN_FLIGHT_SHARDS, Item, Malformed, Value, Write, attr, from_item, in_flight,
    in_flight_keys, marks_unannounced, shard, to_item,
};
pub use parts::{ClaimedPart, ListedPart, PartsError, check_parts, measure, multipart_etag};
pub use record::{
    Chained, FailedVerdict, Failing, Fault, Hold, Kind, Lease, ObjectVersion, Pinned, Progress,
    State, UploadRecord, Verified,
};
pub use stamps::{rfc3339, timestamp, timestamp_now};
pub use transition::{Change, Guard, Saved};
pub use values::{AllowedContentTypes, ContentType, Filename, Metadata};
/// The values the wire carries as they are: the contract defines them once for the service and
/// the CLI.
pub use vu_contract::{
    ChainState, Invalid, MAX_PART_COUNT, MAX_PART_SIZE, MIN_PART_SIZE, PartNumber, PartPlan,
    PartStates, S3_MAX_OBJECT_BYTES, Sha256, Status,
};
