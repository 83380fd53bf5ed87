//! The record's state changes. Each is one conditional write in a `SessionStore`; `apply` is
//! what every store writes, so an in-memory store and DynamoDB agree by construction.

use super::{LeaseToken, PartPlan, Progress, Sha256, Status, UploadRecord};

/// Which record state a conditional write requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub status: Status,
    /// Also require the completion lease to have run out by this epoch second.
    pub lease_expired_by: Option<i64>,
    /// Also require this holder's lease: a holder that was taken over cannot write.
    pub holder: Option<LeaseToken>,
}

impl Guard {
    pub fn status(status: Status) -> Self {
        Self {
            status,
            lease_expired_by: None,
            holder: None,
        }
    }

    /// The completion `record` holds, still held by the same claim.
    pub fn held(record: &UploadRecord) -> Self {
        Self {
            status: Status::Completing,
            lease_expired_by: None,
            holder: record.lease_token,
        }
    }

    pub fn holds(&self, record: &UploadRecord) -> bool {
        record.status == self.status
            && self
                .lease_expired_by
                .is_none_or(|by| record.lease_until < by)
            && self.holder.is_none_or(|t| record.lease_token == Some(t))
    }
}

/// A transition and what it writes besides `status` and `updated_at`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `completing`: the holder of `token` holds the completion until `lease_until`. The TTL
    /// goes: DynamoDB must never remove a session under verification.
    Claim {
        lease_until: i64,
        token: LeaseToken,
        /// The plan measured now, for a session that declared no size.
        sized: Option<PartPlan>,
        /// The digest the client declared only at completion.
        expected_sha256: Option<Sha256>,
    },
    /// Still `completing`, lease released: after an upstream fault, the next caller resumes.
    Release,
    /// Back to `pending`: S3 still holds the multipart upload and the client can fix its parts.
    /// The session expires again at `expires_at`; a plan measured at the refused completion is
    /// forgotten (`unmeasure`), so the fixed parts are measured afresh.
    Reopen {
        expires_at: i64,
        unmeasure: bool,
    },
    /// Still `pending`: the digest a client declared before there was anything to verify (a
    /// form POST whose object has not arrived).
    Declare {
        expected_sha256: Sha256,
    },
    /// `verifying`, lease released: the verifier function takes it from here, continuing from
    /// `saved` (and only on the object whose ETag it pins) when given.
    HandOver {
        saved: Option<Saved>,
    },
    Verified {
        sha256: Sha256,
        etag: String,
        version_id: Option<String>,
        verified_at: String,
        bytes: u64,
    },
    /// Still `completing`, lease kept: the verdict `failed` is decided and recorded before the
    /// object is deleted, so a holder that dies in between leaves it for the next to finish.
    Failing {
        sha256: Option<Sha256>,
        etag: Option<String>,
        version_id: Option<String>,
        error: String,
    },
    /// `failed`, after `Failing` and the object's deletion.
    Failed,
    Aborted,
}

/// Verification progress, saved with the ETag and version of the object it was made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub etag: String,
    pub version_id: Option<String>,
    pub progress: Progress,
}

impl Change {
    pub fn status(&self) -> Status {
        match self {
            Self::Claim { .. } | Self::Release | Self::Failing { .. } => Status::Completing,
            Self::Reopen { .. } | Self::Declare { .. } => Status::Pending,
            Self::HandOver { .. } => Status::Verifying,
            Self::Verified { .. } => Status::Verified,
            Self::Failed => Status::Failed,
            Self::Aborted => Status::Aborted,
        }
    }

    /// Final records are kept: they lose their TTL and any saved hash state.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Verified { .. } | Self::Failed | Self::Aborted)
    }

    /// Whether the write ends the holder's lease (lease 0, no token).
    pub fn ends_lease(&self) -> bool {
        matches!(
            self,
            Self::Release
                | Self::Reopen { .. }
                | Self::HandOver { .. }
                | Self::Verified { .. }
                | Self::Failed
        )
    }

    /// The record as the write leaves it.
    pub fn apply(&self, record: &mut UploadRecord, now: &str) {
        record.status = self.status();
        record.updated_at = now.to_owned();
        if self.is_final() {
            record.expires_at = None;
            record.hash_state = None;
            record.unannounced = true;
        }
        if self.ends_lease() {
            record.lease_until = 0;
            record.lease_token = None;
        }
        match self.clone() {
            Self::Claim {
                lease_until,
                token,
                sized,
                expected_sha256,
            } => {
                record.lease_until = lease_until;
                record.lease_token = Some(token);
                record.expires_at = None;
                if sized.is_some() {
                    record.plan = sized;
                    record.plan_measured = true;
                }
                if expected_sha256.is_some() {
                    record.expected_sha256 = expected_sha256;
                }
            }
            Self::Reopen {
                expires_at,
                unmeasure,
            } => {
                record.expires_at = Some(expires_at);
                if unmeasure {
                    record.plan = None;
                    record.plan_measured = false;
                }
            }
            Self::Declare { expected_sha256 } => record.expected_sha256 = Some(expected_sha256),
            Self::HandOver {
                saved:
                    Some(Saved {
                        etag,
                        version_id,
                        progress,
                    }),
            } => {
                record.etag = Some(etag);
                record.version_id = version_id;
                record.verified_bytes = progress.hashed;
                record.hash_state = Some(progress.state);
            }
            Self::Verified {
                sha256,
                etag,
                version_id,
                verified_at,
                bytes,
            } => {
                record.sha256 = Some(sha256);
                record.etag = Some(etag);
                record.version_id = version_id;
                record.verified_at = Some(verified_at);
                record.verified_bytes = bytes;
            }
            Self::Failing {
                sha256,
                etag,
                version_id,
                error,
            } => {
                if sha256.is_some() {
                    record.sha256 = sha256;
                }
                if etag.is_some() {
                    record.etag = etag;
                    record.version_id = version_id;
                }
                record.error = Some(error);
            }
            Self::Release | Self::HandOver { saved: None } | Self::Failed | Self::Aborted => {}
        }
    }
}
