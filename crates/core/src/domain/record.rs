//! The session record: what DynamoDB stores, in a shape that admits only valid sessions.

use super::{
    ContentType, Filename, LeaseToken, Metadata, ObjectKey, PartPlan, Sha256, Status, UploadId,
};

/// How the bytes reach S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A multipart upload through pre-signed part URLs, completed through the API.
    Multipart {
        /// S3's id of the multipart upload.
        s3_upload_id: String,
        /// Created with `ChecksumAlgorithm=SHA256`: every part URL signs the part's SHA-256.
        part_checksums: bool,
    },
    /// One browser form POST under a pre-signed policy (Uppy's small-file path); S3's
    /// `ObjectCreated:Post` event, or the owner's next `GET`, starts verification.
    Post,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Multipart { .. } => "multipart",
            Self::Post => "post",
        }
    }

    pub fn part_checksums(&self) -> bool {
        matches!(
            self,
            Self::Multipart {
                part_checksums: true,
                ..
            }
        )
    }
}

/// Where an unfinished verification stopped: the first `hashed` bytes went through SHA-256,
/// whose internal state is `state` (sha2's serialized form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub hashed: u64,
    pub state: Vec<u8>,
}

/// The session as stored in DynamoDB. Clients see it through `http`'s view of it.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub upload_id: UploadId,
    pub owner: String,
    pub status: Status,
    pub bucket: String,
    pub key: ObjectKey,
    pub filename: Filename,
    pub content_type: ContentType,
    pub kind: Kind,
    /// `None` until measured when the client declared no size (Uppy's Companion protocol, form
    /// POSTs): completion reads it off what S3 holds.
    pub plan: Option<PartPlan>,
    /// The plan was measured at a completion (not declared): a refused completion forgets it.
    pub plan_measured: bool,
    pub expected_sha256: Option<Sha256>,
    pub sha256: Option<Sha256>,
    /// The ETag and S3 version of the object the verification pinned (and the record names).
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub metadata: Metadata,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    /// Why verification failed; on a `completing` record, a verdict decided but not yet final
    /// (the object is being deleted), which whoever completes the session carries out.
    pub error: Option<String>,
    /// Epoch seconds; DynamoDB's TTL removes `pending` sessions after it (and only those: a
    /// session that left `pending` is never removed under a running verification).
    pub expires_at: Option<i64>,
    /// Epoch seconds until which a completion holds the record; 0 when released.
    pub lease_until: i64,
    /// The holder of the lease, while one is held.
    pub lease_token: Option<LeaseToken>,
    /// Bytes of the object hashed so far: progress for clients polling a `verifying` upload.
    pub verified_bytes: u64,
    /// The SHA-256 state after `verified_bytes`, while a verification is unfinished.
    pub hash_state: Option<Vec<u8>>,
    /// A final record whose verdict may not have been announced yet (events, webhooks): set by
    /// the same write that made it final, cleared once the announcement went out, so a verdict
    /// whose announcer died is announced by the sweep.
    pub unannounced: bool,
}

impl UploadRecord {
    pub fn size(&self) -> Option<u64> {
        self.plan.map(|p| p.size())
    }

    /// Where a paused verification continues from.
    pub fn saved_progress(&self) -> Option<Progress> {
        self.hash_state.as_ref().map(|state| Progress {
            hashed: self.verified_bytes,
            state: state.clone(),
        })
    }
}

/// Now as fixed-width RFC 3339 with milliseconds, so timestamps sort as strings.
pub fn timestamp_now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `t` (UTC) as fixed-width RFC 3339 with milliseconds.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
