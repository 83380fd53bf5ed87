//! The session record: what DynamoDB stores, in a shape that admits only valid sessions.

use super::{
    ContentType, Filename, LeaseToken, Metadata, ObjectKey, PartPlan, PartStates, Sha256, Status,
    UploadId,
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

/// Where a verification stopped: `hashed` bytes in, SHA-256's `state` (sha2's serialized form),
/// and `seal`, its hashing process's signature (`receipt::Sealed`) a resume requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub hashed: u64,
    pub state: Vec<u8>,
    pub seal: Option<[u8; 64]>,
}

/// The session as stored in DynamoDB: what every session has, and its `state`, whose variants
/// carry exactly the fields that status has. Clients see it through the contract's `Record`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub upload_id: UploadId,
    pub owner: String,
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
    /// The chaining values declared at `complete` (at most `segments::MAX_KEPT_STATES`): claims
    /// the verification checks, never trusts.
    pub part_states: PartStates,
    /// What the verdict's digest rests on; `Chained::default()` until a verdict is reached.
    pub chained: Chained,
    pub metadata: Metadata,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
    pub state: State,
}

/// An upload session's life. `pending → completing` (a caller holds the completion under a
/// lease) `→ verified | failed`; `completing → verifying` when the verifier function takes over
/// (a large object, or a verification paused at a deadline) and `verifying → completing` when it
/// does; `completing → pending` when S3 refuses the parts; `pending → aborted`.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Taking parts. Epoch seconds after which DynamoDB's TTL removes it (only a pending session
    /// ever has a TTL: none is removed under a running verification).
    Pending {
        expires_at: i64,
    },
    /// A caller holds the completion, or held it and let go (`hold`).
    Completing {
        hold: Hold,
        /// The upstream fault that stopped the last attempt, when one did: never a verdict.
        fault: Option<Fault>,
        /// The version a verification pinned, and how far it got.
        pinned: Option<Pinned>,
        /// A `failed` verdict decided but not yet carried out (the object is being deleted):
        /// whoever completes the session next carries it out.
        failing: Option<Failing>,
    },
    /// The verifier function has it; it continues from `pinned` when given. Its continuation
    /// was sent and should have started by `resume_by` (epoch seconds; 0: due now): until then
    /// the sweep does not send it again, after it re-drives it (the message was lost).
    Verifying {
        pinned: Option<Pinned>,
        resume_by: i64,
    },
    Verified(Verified),
    Failed(FailedVerdict),
    Aborted {
        announced: bool,
    },
}

/// Who may take a `completing` session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Its holder, until the lease runs out.
    Leased(Lease),
    /// Nobody: the next caller takes it at once.
    Released,
    /// Nobody, after an upstream fault: the sweep (or any caller) takes it once `until` (epoch
    /// seconds) has passed, so a failing upstream is retried with back-off, not hammered.
    BackingOff { until: i64 },
}

/// An upstream fault (S3, KMS, DynamoDB, the network) that stopped a completion: not a verdict.
/// The record keeps it for operators and clients: `cause` names the upstream and its status,
/// never internals; `attempts` counts the attempts that failed this way in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub cause: String,
    pub attempts: u32,
}

/// A completion's lease: its holder, and until when (epoch seconds) nobody else may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub until: i64,
    pub token: LeaseToken,
}

/// One version of the object: what a verification pins and a verdict names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub etag: String,
    /// `None` in a bucket without versioning.
    pub version_id: Option<String>,
}

/// How a verdict's digest was computed: over `segments` independently hashed segments (1: one
/// sequential stream; 0: nothing was hashed), and, for a mismatch found by segments, the first
/// part whose bytes do not carry the declared chain forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chained {
    pub segments: u32,
    pub mismatch_part: Option<u16>,
}

impl Chained {
    /// One stream from byte 0 (or resumed across runs, which is still one chain).
    pub const SEQUENTIAL: Self = Self {
        segments: 1,
        mismatch_part: None,
    };
}

/// The version a verification pinned, and its saved progress when it paused (or what the
/// segments of a fan-out found on it: only while `completing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub object: ObjectVersion,
    pub progress: Option<Progress>,
    pub fanned: Option<super::Fanned>,
}

/// A `failed` verdict decided by a holder that has not carried it out yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub error: String,
    /// The digest computed, when the failure is a mismatch.
    pub sha256: Option<Sha256>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sha256: Sha256,
    pub object: ObjectVersion,
    /// RFC 3339, UTC.
    pub verified_at: String,
    pub bytes: u64,
    /// The verdict went out (events, webhooks); until then the sweep announces it.
    pub announced: bool,
    /// The receipt signed when the verdict was reached, by the process that hashed the bytes
    /// (`None`: receipts were off then). Never signed later from what the table says.
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedVerdict {
    pub error: String,
    pub sha256: Option<Sha256>,
    /// The version that failed (deleted since), when there was one.
    pub object: Option<ObjectVersion>,
    pub announced: bool,
}

impl State {
    pub fn status(&self) -> Status {
        match self {
            Self::Pending { .. } => Status::Pending,
            Self::Completing { .. } => Status::Completing,
            Self::Verifying { .. } => Status::Verifying,
            Self::Verified(_) => Status::Verified,
            Self::Failed(_) => Status::Failed,
            Self::Aborted { .. } => Status::Aborted,
        }
    }
}

impl UploadRecord {
    pub fn status(&self) -> Status {
        self.state.status()
    }

    pub fn size(&self) -> Option<u64> {
        self.plan.map(|p| p.size())
    }

    /// The holder's lease, while one is held.
    pub fn lease(&self) -> Option<Lease> {
        match &self.state {
            State::Completing {
                hold: Hold::Leased(lease),
                ..
            } => Some(*lease),
            _ => None,
        }
    }

    /// The upstream fault that stopped the last attempt of a session still completing.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.state {
            State::Completing { fault, .. } => fault.as_ref(),
            _ => None,
        }
    }

    pub fn lease_token(&self) -> Option<LeaseToken> {
        self.lease().map(|l| l.token)
    }

    /// Epoch seconds before which nobody may take the completion over: the holder's lease, or
    /// the back-off after a fault; 0 when anybody may.
    pub fn lease_until(&self) -> i64 {
        match &self.state {
            State::Completing { hold, .. } => match hold {
                Hold::Leased(lease) => lease.until,
                Hold::BackingOff { until } => *until,
                Hold::Released => 0,
            },
            State::Verifying { resume_by, .. } => *resume_by,
            _ => 0,
        }
    }

    pub fn expires_at(&self) -> Option<i64> {
        match self.state {
            State::Pending { expires_at } => Some(expires_at),
            _ => None,
        }
    }

    /// The version a verification pinned or a verdict names.
    pub fn object(&self) -> Option<&ObjectVersion> {
        match &self.state {
            State::Completing { pinned, .. } | State::Verifying { pinned, .. } => {
                pinned.as_ref().map(|p| &p.object)
            }
            State::Verified(v) => Some(&v.object),
            State::Failed(f) => f.object.as_ref(),
            State::Pending { .. } | State::Aborted { .. } => None,
        }
    }

    pub fn etag(&self) -> Option<&str> {
        self.object().map(|o| o.etag.as_str())
    }

    pub fn version_id(&self) -> Option<&str> {
        self.object().and_then(|o| o.version_id.as_deref())
    }

    /// The digest verified, or computed for a failed (or failing) verdict.
    pub fn sha256(&self) -> Option<Sha256> {
        match &self.state {
            State::Verified(v) => Some(v.sha256),
            State::Failed(f) => f.sha256,
            State::Completing {
                failing: Some(f), ..
            } => f.sha256,
            _ => None,
        }
    }

    /// Why a verification failed, or a failed verdict decided and not yet carried out.
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            State::Failed(f) => Some(&f.error),
            State::Completing {
                failing: Some(f), ..
            } => Some(&f.error),
            _ => None,
        }
    }

    /// The `failed` verdict a holder decided and did not carry out.
    pub fn failing(&self) -> Option<&Failing> {
        match &self.state {
            State::Completing { failing, .. } => failing.as_ref(),
            _ => None,
        }
    }

    /// The receipt signed with the verdict, when one was.
    pub fn receipt(&self) -> Option<&str> {
        match &self.state {
            State::Verified(v) => v.receipt.as_deref(),
            _ => None,
        }
    }

    pub fn verified_at(&self) -> Option<&str> {
        match &self.state {
            State::Verified(v) => Some(&v.verified_at),
            _ => None,
        }
    }

    /// Bytes hashed so far (the whole object once verified): progress for clients polling.
    pub fn verified_bytes(&self) -> u64 {
        match &self.state {
            State::Verified(v) => v.bytes,
            _ => match self.fanned() {
                Some(f) => f.hashed,
                None => self.saved_progress().map_or(0, |p| p.hashed),
            },
        }
    }

    /// What the item's `verified_bytes` holds: a verdict's byte count, or a paused run's
    /// progress (a fan-out keeps its own with its ends).
    pub fn stored_bytes(&self) -> u64 {
        match &self.state {
            State::Verified(v) => v.bytes,
            _ => self.saved_progress().map_or(0, |p| p.hashed),
        }
    }

    /// Where a paused verification continues from.
    pub fn saved_progress(&self) -> Option<&Progress> {
        match &self.state {
            State::Completing { pinned, .. } | State::Verifying { pinned, .. } => {
                pinned.as_ref().and_then(|p| p.progress.as_ref())
            }
            _ => None,
        }
    }

    /// The record once its verdict went out (what `SessionStore::announced` stores).
    pub fn mark_announced(&mut self) {
        if let State::Verified(Verified { announced, .. })
        | State::Failed(FailedVerdict { announced, .. })
        | State::Aborted { announced } = &mut self.state
        {
            *announced = true;
        }
    }

    /// A final record whose verdict may not have been announced yet (events, webhooks): set by
    /// the write that made it final, cleared once the announcement went out.
    pub fn unannounced(&self) -> bool {
        match &self.state {
            State::Verified(Verified { announced, .. })
            | State::Failed(FailedVerdict { announced, .. })
            | State::Aborted { announced } => !announced,
            _ => false,
        }
    }
}
