use serde::Serialize;

use super::{ContentType, Filename, Metadata, PartPlan, Sha256, UploadId};

/// An upload session's life: `pending → completing → verified | failed`, `pending → aborted`,
/// and `pending → verifying → verified | failed` for objects verified asynchronously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Completing,
    Verifying,
    Verified,
    Failed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completing => "completing",
            Self::Verifying => "verifying",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Completing,
            Self::Verifying,
            Self::Verified,
            Self::Failed,
            Self::Aborted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// No transition leaves these.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Verified | Self::Failed | Self::Aborted)
    }
}

/// How the bytes reach S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A multipart upload through pre-signed part URLs, completed through the API.
    Multipart,
    /// One browser form POST under a pre-signed policy (Uppy's small-file path); S3's
    /// `ObjectCreated:Post` event, or the owner's next `GET`, starts verification.
    Post,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Multipart => "multipart",
            Self::Post => "post",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Multipart, Self::Post]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The session as stored in DynamoDB and shown to its owner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadRecord {
    pub upload_id: UploadId,
    pub owner: String,
    pub status: Status,
    pub bucket: String,
    pub key: String,
    pub filename: Filename,
    pub content_type: ContentType,
    pub kind: Kind,
    /// The client did not declare a size (Uppy's Companion protocol): `size`, `part_size` and
    /// `part_count` are 0 until completion measures them from what S3 holds.
    pub open_size: bool,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    pub part_checksums: bool,
    #[serde(skip)]
    pub s3_upload_id: String,
    pub expected_sha256: Option<Sha256>,
    pub sha256: Option<Sha256>,
    pub etag: Option<String>,
    pub metadata: Metadata,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    pub error: Option<String>,
    /// Epoch seconds; DynamoDB's TTL removes unfinished sessions after it.
    #[serde(serialize_with = "rfc3339_opt")]
    pub expires_at: Option<i64>,
    /// Epoch seconds until which a completion holds the record; 0 when released.
    #[serde(skip)]
    pub lease_until: i64,
    /// Bytes of the object hashed so far: progress for clients polling a `verifying` upload.
    pub verified_bytes: u64,
    /// The serialized SHA-256 state after `verified_bytes`, while a verification is unfinished.
    #[serde(skip)]
    pub hash_state: Option<Vec<u8>>,
}

impl UploadRecord {
    pub fn plan(&self) -> PartPlan {
        PartPlan::from_record(self.size, self.part_size)
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

fn rfc3339_opt<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(epoch) => s.serialize_str(&rfc3339(*epoch)),
        None => s.serialize_none(),
    }
}
