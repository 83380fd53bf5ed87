//! The record as clients see it: `GET /uploads/{id}`, list entries, `complete`'s answer, a failed
//! verification's `upload`, and the `detail` of every verdict event and webhook.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Sha256;

/// An upload's state: `pending → completing → verified | failed`, `verifying` for objects
/// verified by the verifier function, `aborted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Completing,
        Self::Verifying,
        Self::Verified,
        Self::Failed,
        Self::Aborted,
    ];

    /// `verified`, `failed` or `aborted`: nothing changes the record any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Verified | Self::Failed | Self::Aborted)
    }

    /// `completing` or `verifying`: a client polls until it settles.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Self::Completing | Self::Verifying)
    }

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
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How the bytes reach S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Pre-signed part URLs, completed through the API.
    Multipart,
    /// One browser form POST (Uppy's small-file path).
    Post,
}

/// An upload session as the API shows it: `GET /uploads/{id}`, list entries, `complete`'s answer,
/// a failed verification's `upload`, and the `detail` of verdict events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Record {
    /// A server-generated ULID (26 characters of Crockford's base 32).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")
    )]
    pub upload_id: String,
    pub owner: String,
    pub status: Status,
    pub bucket: String,
    pub key: String,
    pub filename: String,
    pub content_type: String,
    /// `multipart` or `post` (a browser form POST).
    pub kind: Kind,
    /// The client declared no size (Uppy): `size`, `part_size` and `part_count` are 0 until
    /// completion measures them.
    pub open_size: bool,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
    pub part_checksums: bool,
    pub expected_sha256: Option<Sha256>,
    pub sha256: Option<Sha256>,
    pub etag: Option<String>,
    /// The S3 version the verification pinned: the exact bytes a `verified` record names.
    pub version_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    pub error: Option<String>,
    pub expires_at: Option<String>,
    pub verified_bytes: u64,
    /// While `completing`: the upstream fault (S3, KMS, DynamoDB) that stopped the last attempt,
    /// named without internals. Never a verdict: the service retries with back-off.
    #[serde(default)]
    pub last_error: Option<String>,
    /// How many attempts in a row failed that way (0 without a fault): what operators alarm on.
    #[serde(default)]
    pub attempts: u32,
    /// How many independently hashed segments the verdict's digest rests on: 1 for one
    /// sequential stream, more when the client declared `part_states`; 0 before a verdict, or
    /// when nothing could be hashed (the object was missing or of the wrong size).
    #[serde(default)]
    pub segments: u32,
    /// A `failed` verdict reached by segments: the first part whose bytes do not carry the
    /// declared SHA-256 chain forward (the part to look at).
    #[serde(default)]
    pub mismatch_part: Option<u16>,
}
