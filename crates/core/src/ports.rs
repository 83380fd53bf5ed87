//! The two things the domain needs from the outside world, as small traits. Each has one AWS
//! adapter in `vu-aws`; the domain never names an SDK type.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use crate::domain::{Change, Guard, ListedPart};
use crate::domain::{ContentType, Metadata, PartNumber, Sha256, Status, UploadId, UploadRecord};
pub use crate::receipt::{EcPoint, ReceiptSigner};
pub use vu_contract::queue::SegmentMessage;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("not found")]
    NotFound,
    /// A condition did not hold: a conditional write lost a race, or `If-Match` failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The service refused the request's content (e.g. S3 `InvalidPart`).
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("{service} request failed")]
    Unavailable {
        service: Upstream,
        #[source]
        source: BoxError,
    },
}

/// The services behind the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    S3,
    DynamoDB,
    /// The verifier's queue (SQS).
    Queue,
    /// The event bus verdicts are announced on (EventBridge).
    Events,
    /// The credentials provider that pre-signing needs.
    Credentials,
    /// The key that signs receipts (KMS).
    Kms,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::S3 => "S3",
            Self::DynamoDB => "DynamoDB",
            Self::Queue => "SQS",
            Self::Events => "EventBridge",
            Self::Credentials => "credentials",
            Self::Kms => "KMS",
        })
    }
}

impl PortError {
    pub fn unavailable(service: Upstream, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            service,
            source: source.into(),
        }
    }
}

pub struct NewMultipart<'a> {
    pub key: &'a str,
    pub content_type: &'a ContentType,
    pub metadata: &'a Metadata,
    /// Create with `ChecksumAlgorithm=SHA256` so every part must carry its SHA-256.
    pub part_checksums: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct PartToSign {
    pub part_number: PartNumber,
    /// Signed as `Content-Length`; `None` when the client never declared the object's size.
    pub len: Option<u64>,
    pub sha256: Option<Sha256>,
}

/// A browser form upload: POST `url` as `multipart/form-data` with `fields`, then the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PostForm {
    pub url: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SignedPart {
    pub part_number: PartNumber,
    pub url: String,
    /// Headers the client must send with its PUT, exactly as given: they are signed.
    pub headers: BTreeMap<String, String>,
}

/// One version of an object: what a verification pins and a verified record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
    /// S3's version id; `None` in a bucket without versioning.
    pub version_id: Option<String>,
}

/// The exact bytes a read may return: this ETag, and this version when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Pin<'a> {
    pub etag: &'a str,
    pub version_id: Option<&'a str>,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    fn bucket(&self) -> &str;
    async fn create_multipart(&self, req: &NewMultipart<'_>) -> Result<String, PortError>;
    async fn presign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartToSign],
        expires: Duration,
    ) -> Result<Vec<SignedPart>, PortError>;
    /// A browser form POST of one object under `key` of at most `max_len` bytes.
    async fn presign_post(
        &self,
        key: &str,
        content_type: &ContentType,
        max_len: u64,
        expires: Duration,
    ) -> Result<PostForm, PortError>;
    /// Every part S3 holds for the upload, all pages, in part order.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, PortError>;
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), PortError>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError>;
    /// The current version of `key`, or the version `version_id`; `None` when there is none.
    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, PortError>;
    /// `len` bytes from `start` of the pinned object (`PreconditionFailed` when its ETag is no
    /// longer the pinned one). Returned as the chunks that arrived, uncopied.
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
        pin: Pin<'_>,
    ) -> Result<Vec<Bytes>, PortError>;
    /// Deletes one version for good, or (`None`) the current object.
    async fn delete(&self, key: &str, version_id: Option<&str>) -> Result<(), PortError>;
    /// Deletes every version (and delete marker) of `key` but `keep`: nothing else stays
    /// under the key. How many went.
    async fn purge(&self, key: &str, keep: Option<&str>) -> Result<usize, PortError>;
    /// A GET of exactly `version_id` (when given) of `key`, downloaded as `filename`.
    async fn presign_get(
        &self,
        key: &str,
        version_id: Option<&str>,
        filename: &str,
        expires: Duration,
    ) -> Result<String, PortError>;
}

/// Runs the verifier again for an upload whose verification paused at a deadline.
#[async_trait]
pub trait Continuation: Send + Sync {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError>;

    /// Whether this queue carries segment messages (`send_segments`): without it, the holder
    /// hashes every segment itself.
    fn carries_segments(&self) -> bool {
        false
    }

    /// Sends one message per segment of a verification fanned out.
    async fn send_segments(&self, segments: &[SegmentMessage]) -> Result<(), PortError> {
        let _ = segments;
        Err(PortError::Rejected("this queue carries no segments".into()))
    }
}

/// Tells the rest of the system that a record reached its final status. At-least-once: the same
/// verdict may be announced again (consumers drop duplicates by `{upload_id}:{status}`), but
/// only ever one that a conditional write made final.
#[async_trait]
pub trait Announcer: Send + Sync {
    async fn announce(&self, record: &UploadRecord) -> Result<(), PortError>;
}

/// Where a page of an owner's uploads ended; the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub upload_id: UploadId,
    pub created_at: String,
}

#[derive(Debug)]
pub struct Page {
    pub records: Vec<UploadRecord>,
    pub next: Option<PageKey>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Writes a new record; never overwrites one with the same id.
    async fn create(&self, record: &UploadRecord) -> Result<(), PortError>;
    async fn get(&self, id: UploadId) -> Result<Option<UploadRecord>, PortError>;
    /// `owner`'s records, newest first, `limit` read per page, optionally only those in `status`.
    async fn list_by_owner(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<&PageKey>,
    ) -> Result<Page, PortError>;
    /// Writes `change` only if `guard` holds (`PreconditionFailed` otherwise), and returns the
    /// record as written (`Change::apply`).
    async fn transition(
        &self,
        id: UploadId,
        guard: Guard,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, PortError>;
    /// Up to `limit` sessions in `completing` or `verifying` whose lease ran out before `now`
    /// (epoch seconds): the work of the sweep, whose holders died or whose hand-over was lost.
    async fn stalled(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError>;
    /// Up to `limit` `pending` sessions that expire before `expiring_before` (epoch seconds),
    /// soonest first: those old enough that S3's lifecycle has aborted their multipart upload.
    async fn abandoned(&self, expiring_before: i64, limit: u32)
    -> Result<Vec<UploadId>, PortError>;
    /// Asks the sweep to check the key of session `id` once `until` (epoch seconds) has passed:
    /// a form can be POSTed again while its policy is valid, and the clean-up of that replay may
    /// be lost. Stored beside the session (its own item), overwriting an earlier ask.
    async fn watch_key(&self, id: UploadId, until: i64) -> Result<(), PortError>;
    /// Up to `limit` sessions whose key is due a check before `now`, longest due first.
    async fn watched_keys(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError>;
    /// The key of `id` was checked: no more asks for it (none is fine).
    async fn unwatch_key(&self, id: UploadId) -> Result<(), PortError>;
    /// Up to `limit` final records still `unannounced`: verdicts whose announcer died or failed.
    async fn unannounced(&self, limit: u32) -> Result<Vec<UploadId>, PortError>;
    /// Clears `unannounced` on `id`; a record already clear (or gone) is left as it is.
    async fn announced(&self, id: UploadId) -> Result<(), PortError>;
    /// Reserves `bytes` for session `id` of `owner` in one conditional write, unless the owner
    /// would then hold more than `limits` allow (`Some(the limit)`). Reservations whose
    /// `expires_at` (epoch seconds) is before `now` are given back first.
    async fn reserve(
        &self,
        owner: &str,
        reservation: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError>;
    /// Gives back what session `id` of `owner` reserved; nothing if it holds nothing. Idempotent:
    /// a give-back retried after it landed (or racing another) gives back nothing more.
    /// `limits` are the ones it was reserved under (they say where a store keeps it).
    async fn unreserve(
        &self,
        owner: &str,
        id: UploadId,
        limits: OwnerLimits,
    ) -> Result<(), PortError>;
    /// Moves the expiry of what session `id` of `owner` reserved to `expires_at` (a reopened
    /// session lives on, and so must its reservation). `false` when it holds nothing (given
    /// back, or expired and given back).
    async fn extend(
        &self,
        owner: &str,
        id: UploadId,
        expires_at: i64,
        limits: OwnerLimits,
    ) -> Result<bool, PortError>;
}

/// What a session holds of its owner's limits until it is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub id: UploadId,
    pub bytes: u64,
    /// When the session expires unfinished (its TTL), and the reservation with it.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerLimits {
    pub open_sessions: u64,
    pub pending_bytes: u64,
}

/// The limit a reservation would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerLimit {
    OpenSessions(u64),
    PendingBytes(u64),
}
