//! The record as a storage-neutral item: the attributes, names and formats DynamoDB stores (one
//! flat shape for every kind of session; an unsized one stores zeros and `open_size`). A
//! transition is defined on this item once (`Change::writes`, `Guard::condition`): the in-memory
//! store evaluates it here, the DynamoDB adapter only translates it into an `UpdateItem`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Fanned, Kind, LeaseToken, PartPlan, PartStates, Sha256, Status, UploadRecord};

/// One session as stored: attribute name → value.
pub type Item = BTreeMap<String, Value>;

/// The attribute types the record uses (DynamoDB's S, N, BOOL and a map of strings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    S(String),
    /// Integers only: every number the record stores is one (epoch seconds, byte counts).
    N(i128),
    Bool(bool),
    M(BTreeMap<String, String>),
}

/// One attribute written by a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Set(&'static str, Value),
    Remove(&'static str),
}

impl Write {
    pub fn attr(&self) -> &'static str {
        match self {
            Self::Set(attr, _) | Self::Remove(attr) => attr,
        }
    }

    /// `Set` with a value, `Remove` without: an optional field as the item holds it.
    pub fn put(attr: &'static str, value: Option<Value>) -> Self {
        match value {
            Some(v) => Self::Set(attr, v),
            None => Self::Remove(attr),
        }
    }

    pub fn apply(&self, item: &mut Item) {
        match self {
            Self::Set(attr, v) => item.insert((*attr).to_owned(), v.clone()),
            Self::Remove(attr) => item.remove(*attr),
        };
    }
}

/// One clause of a write's condition, as DynamoDB evaluates it: a missing attribute, or one of
/// another type, satisfies no clause but `Absent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Eq(&'static str, Value),
    Lt(&'static str, Value),
    /// The attribute is missing (`attribute_not_exists`).
    Absent(&'static str),
}

impl Cond {
    pub fn holds(&self, item: &Item) -> bool {
        match self {
            Self::Eq(attr, v) => item.get(*attr) == Some(v),
            // Numbers compare as numbers, strings by their bytes: as `Value`'s order does.
            Self::Lt(attr, v) => item.get(*attr).is_some_and(|have| {
                std::mem::discriminant(have) == std::mem::discriminant(v) && have < v
            }),
            Self::Absent(attr) => !item.contains_key(*attr),
        }
    }
}

/// An item this service did not write (or a corrupted one): which attribute is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session item: {0}")]
pub struct Malformed(pub String);

/// The attribute names: the item's and the indexes' (template.yaml, scripts/create_table.py).
pub mod attr {
    pub const UPLOAD_ID: &str = "upload_id";
    pub const OWNER: &str = "owner";
    pub const STATUS: &str = "status";
    pub const BUCKET: &str = "bucket";
    pub const KEY: &str = "key";
    pub const FILENAME: &str = "filename";
    pub const CONTENT_TYPE: &str = "content_type";
    pub const KIND: &str = "kind";
    pub const OPEN_SIZE: &str = "open_size";
    pub const PLAN_MEASURED: &str = "plan_measured";
    pub const SIZE: &str = "size";
    pub const PART_SIZE: &str = "part_size";
    pub const PART_COUNT: &str = "part_count";
    pub const PART_CHECKSUMS: &str = "part_checksums";
    pub const S3_UPLOAD_ID: &str = "s3_upload_id";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const LEASE_TOKEN: &str = "lease_token";
    pub const VERIFIED_BYTES: &str = "verified_bytes";
    pub const METADATA: &str = "metadata";
    pub const EXPECTED_SHA256: &str = "expected_sha256";
    pub const SHA256: &str = "sha256";
    pub const ETAG: &str = "etag";
    pub const VERSION_ID: &str = "version_id";
    pub const VERIFIED_AT: &str = "verified_at";
    pub const ERROR: &str = "error";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const IN_FLIGHT: &str = "in_flight";
    pub const HASH_STATE: &str = "hash_state";
    pub const HASH_SEAL: &str = "hash_seal";
    pub const LAST_ERROR: &str = "last_error";
    pub const ATTEMPTS: &str = "attempts";
    pub const PART_STATES: &str = "part_states";
    pub const SEGMENTS: &str = "segments";
    pub const MISMATCH_PART: &str = "mismatch_part";
    pub const RECEIPT: &str = "receipt";
    /// A fan-out's segment ends (binary, base64), present from the fan-out on.
    pub const SEGMENT_ENDS: &str = "segment_ends";
}

// The encodings of the record's values, each defined once for `to_item` and `Change::writes`.

pub(super) fn text(v: impl Into<String>) -> Value {
    Value::S(v.into())
}

pub(super) fn number(v: impl Into<i128>) -> Value {
    Value::N(v.into())
}

pub(super) fn status(s: Status) -> Value {
    text(s.as_str())
}

pub(super) fn digest(d: Sha256) -> Value {
    text(d.to_hex())
}

/// Binary, 34 bytes a state, base64 in a string: 127 states are under 6 KB.
pub(super) fn part_states(s: &PartStates) -> Value {
    text(B64.encode(s.to_stored()))
}

/// Binary (a header, then an end: 35 bytes, 99 with its seal), base64 in a string: 128 sealed
/// ends are under 17 KB.
pub(super) fn fanned(f: &Fanned) -> Value {
    text(B64.encode(f.to_stored()))
}

pub(super) fn token(t: LeaseToken) -> Value {
    text(t.to_string())
}

pub(super) fn hash_state(state: &[u8]) -> Value {
    text(B64.encode(state))
}

pub(super) fn hash_seal(seal: &[u8; 64]) -> Value {
    text(B64.encode(seal))
}

/// The plan's attributes: an unsized session stores zeros and `open_size`.
pub(super) fn plan(plan: Option<PartPlan>) -> [(&'static str, Value); 4] {
    let (size, part_size, part_count) =
        plan.map_or((0, 0, 0), |p| (p.size(), p.part_size(), p.part_count()));
    [
        (attr::OPEN_SIZE, Value::Bool(plan.is_none())),
        (attr::SIZE, number(size)),
        (attr::PART_SIZE, number(part_size)),
        (attr::PART_COUNT, number(part_count)),
    ]
}

pub fn to_item(r: &UploadRecord) -> Item {
    let (s3_upload_id, part_checksums) = match &r.kind {
        Kind::Multipart {
            s3_upload_id,
            part_checksums,
        } => (s3_upload_id.as_str(), *part_checksums),
        Kind::Post => ("", false),
    };
    let required = [
        (attr::UPLOAD_ID, text(r.upload_id.to_string())),
        (attr::OWNER, text(&r.owner)),
        (attr::STATUS, status(r.status())),
        (attr::BUCKET, text(&r.bucket)),
        (attr::KEY, text(r.key.as_str())),
        (attr::FILENAME, text(r.filename.as_str())),
        (attr::CONTENT_TYPE, text(r.content_type.as_str())),
        (attr::KIND, text(r.kind.as_str())),
        (attr::PLAN_MEASURED, Value::Bool(r.plan_measured)),
        (attr::PART_CHECKSUMS, Value::Bool(part_checksums)),
        (attr::S3_UPLOAD_ID, text(s3_upload_id)),
        (attr::CREATED_AT, text(&r.created_at)),
        (attr::UPDATED_AT, text(&r.updated_at)),
        // Always present: the in-flight index sorts by `lease_until` (0: nobody holds it), and
        // clients read progress off `verified_bytes`.
        // A pending session's is its expiry: the in-flight index sorts pending sessions by it.
        (
            attr::LEASE_UNTIL,
            number(r.expires_at().unwrap_or(r.lease_until())),
        ),
        // A fan-out's progress is in its own attribute (`segment_ends`).
        (attr::VERIFIED_BYTES, number(r.stored_bytes())),
        (attr::METADATA, Value::M(r.metadata.as_map().clone())),
    ];
    let optional = [
        (attr::EXPECTED_SHA256, r.expected_sha256.map(digest)),
        (attr::SHA256, r.sha256().map(digest)),
        (attr::ETAG, r.etag().map(text)),
        (attr::VERSION_ID, r.version_id().map(text)),
        (attr::VERIFIED_AT, r.verified_at().map(text)),
        (attr::RECEIPT, r.receipt().map(text)),
        (attr::ERROR, r.error().map(text)),
        (attr::EXPIRES_AT, r.expires_at().map(number)),
        (attr::LEASE_TOKEN, r.lease_token().map(token)),
        (
            attr::IN_FLIGHT,
            in_flight(r.status(), r.unannounced(), r.upload_id),
        ),
        (
            attr::HASH_STATE,
            r.saved_progress().map(|p| hash_state(&p.state)),
        ),
        (
            attr::HASH_SEAL,
            r.saved_progress()
                .and_then(|p| p.seal.as_ref().map(hash_seal)),
        ),
        (attr::LAST_ERROR, r.fault().map(|f| text(&f.cause))),
        (attr::ATTEMPTS, r.fault().map(|f| number(f.attempts))),
        (
            attr::PART_STATES,
            (!r.part_states.is_empty()).then(|| part_states(&r.part_states)),
        ),
        (
            attr::SEGMENTS,
            (r.chained.segments > 0).then(|| number(r.chained.segments)),
        ),
        (attr::MISMATCH_PART, r.chained.mismatch_part.map(number)),
        (attr::SEGMENT_ENDS, r.fanned().map(fanned)),
    ];
    required
        .into_iter()
        .chain(plan(r.plan))
        .chain(optional.into_iter().filter_map(|(k, v)| Some((k, v?))))
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

mod index;
mod read;

pub use index::{ANNOUNCE, IN_FLIGHT_SHARDS, in_flight, in_flight_keys, marks_unannounced, shard};
pub use read::from_item;
