//! The record's state changes. Each is one conditional write in a `SessionStore`; `apply` is
//! what every store writes, so an in-memory store and DynamoDB agree by construction.

use super::{PartPlan, Progress, Sha256, Status, UploadRecord};

/// Which record state a conditional write requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub status: Status,
    /// Also require the completion lease to have run out by this epoch second.
    pub lease_expired_by: Option<i64>,
}

impl Guard {
    pub fn status(status: Status) -> Self {
        Self {
            status,
            lease_expired_by: None,
        }
    }

    pub fn holds(&self, record: &UploadRecord) -> bool {
        record.status == self.status
            && self
                .lease_expired_by
                .is_none_or(|by| record.lease_until < by)
    }
}

/// A transition and what it writes besides `status` and `updated_at`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `completing`: this caller holds the completion until `lease_until`.
    Claim {
        lease_until: i64,
        /// The plan measured now, for a session that declared no size.
        sized: Option<PartPlan>,
        /// The digest the client declared only at completion.
        expected_sha256: Option<Sha256>,
    },
    /// Still `completing`, lease released: after an upstream fault, the next caller resumes.
    Release,
    /// Back to `pending`: S3 still holds the multipart upload and the client can fix its parts.
    Reopen,
    /// `verifying`, lease released: the verifier function takes it from here, continuing from
    /// `saved` (and only on the object whose ETag it pins) when given.
    HandOver {
        saved: Option<Saved>,
    },
    Verified {
        sha256: Sha256,
        etag: String,
        verified_at: String,
        bytes: u64,
    },
    /// The object is gone (deleted first); `error` says why.
    Failed {
        sha256: Option<Sha256>,
        etag: Option<String>,
        error: String,
    },
    Aborted,
}

/// Verification progress, saved with the ETag of the object it was made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub etag: String,
    pub progress: Progress,
}

impl Change {
    pub fn status(&self) -> Status {
        match self {
            Self::Claim { .. } | Self::Release => Status::Completing,
            Self::Reopen => Status::Pending,
            Self::HandOver { .. } => Status::Verifying,
            Self::Verified { .. } => Status::Verified,
            Self::Failed { .. } => Status::Failed,
            Self::Aborted => Status::Aborted,
        }
    }

    /// Final records are kept: they lose their TTL and any saved hash state.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Verified { .. } | Self::Failed { .. } | Self::Aborted
        )
    }

    /// The record as the write leaves it.
    pub fn apply(&self, record: &mut UploadRecord, now: &str) {
        record.status = self.status();
        record.updated_at = now.to_owned();
        if self.is_final() {
            record.expires_at = None;
            record.hash_state = None;
        }
        match self.clone() {
            Self::Claim {
                lease_until,
                sized,
                expected_sha256,
            } => {
                record.lease_until = lease_until;
                if sized.is_some() {
                    record.plan = sized;
                }
                if expected_sha256.is_some() {
                    record.expected_sha256 = expected_sha256;
                }
            }
            Self::Release | Self::Reopen => record.lease_until = 0,
            Self::HandOver { saved } => {
                record.lease_until = 0;
                if let Some(Saved { etag, progress }) = saved {
                    record.etag = Some(etag);
                    record.verified_bytes = progress.hashed;
                    record.hash_state = Some(progress.state);
                }
            }
            Self::Verified {
                sha256,
                etag,
                verified_at,
                bytes,
            } => {
                record.lease_until = 0;
                record.sha256 = Some(sha256);
                record.etag = Some(etag);
                record.verified_at = Some(verified_at);
                record.verified_bytes = bytes;
            }
            Self::Failed {
                sha256,
                etag,
                error,
            } => {
                record.lease_until = 0;
                if sha256.is_some() {
                    record.sha256 = sha256;
                }
                if etag.is_some() {
                    record.etag = etag;
                }
                record.error = Some(error);
            }
            Self::Aborted => {}
        }
    }
}
