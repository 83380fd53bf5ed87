//! The record's state changes. Each is one conditional write in a `SessionStore`, defined once
//! on the stored item: what it writes (`Change::writes`) under which condition
//! (`Guard::condition`). The in-memory store evaluates both on the item (`apply` is derived from
//! them) and the DynamoDB adapter translates both, so the two agree by construction.

use super::item::{self, Cond, Item, Malformed, attr, from_item, to_item};
use super::{
    Chained, Fanned, Fault, LeaseToken, PartPlan, PartStates, Progress, Sha256, Status, UploadId,
    UploadRecord,
};

/// Which record state a conditional write requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub status: Status,
    /// Also require the completion lease to have run out by this epoch second (of a session
    /// in flight: a pending one holds no lease, and its item's `lease_until` is its expiry).
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
            holder: record.lease_token(),
        }
    }

    /// The condition on the stored item, every clause required.
    pub fn condition(&self) -> Vec<Cond> {
        let mut clauses = vec![Cond::Eq(attr::STATUS, item::status(self.status))];
        if let Some(by) = self.lease_expired_by {
            clauses.push(Cond::Lt(attr::LEASE_UNTIL, item::number(by)));
        }
        if let Some(t) = self.holder {
            clauses.push(Cond::Eq(attr::LEASE_TOKEN, item::token(t)));
        }
        clauses
    }

    pub fn holds_on(&self, item: &Item) -> bool {
        self.condition().iter().all(|c| c.holds(item))
    }

    pub fn holds(&self, record: &UploadRecord) -> bool {
        self.holds_on(&to_item(record))
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
        /// The chaining values the client declared at completion (a take-over keeps the
        /// claim's: `None`).
        part_states: Option<PartStates>,
    },
    /// Still `completing`, lease released: after an upstream fault, the next caller resumes.
    /// Still `completing`, nobody holding it: after an upstream fault (`fault`, kept on the
    /// record with its attempts counted) nobody takes it before `retry_at` (epoch seconds).
    Release {
        fault: Option<Fault>,
        retry_at: Option<i64>,
    },
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
    /// `saved` (and only on the object whose ETag it pins) when given. Its continuation should
    /// have started by `resume_by` (epoch seconds): the sweep leaves it alone until then.
    HandOver {
        saved: Option<Saved>,
        resume_by: i64,
    },
    /// Still `completing`, lease extended to `lease_until`: the holder fans the verification
    /// out (one segment per queue message) on the version pinned here, with no end found yet
    /// (any found on another object go, as does a sequential run's saved state).
    FanOut {
        etag: String,
        version_id: Option<String>,
        lease_until: i64,
    },
    /// Still `completing`: a segment's end recorded. `after` is the whole fan-out after it (its
    /// ends, and the bytes of their segments: progress), written only over exactly `before` on
    /// the object `etag` pinned, so workers finishing together never lose each other's ends;
    /// the lease runs on to `lease_until` (the fan-out is alive). The pinned version is written
    /// again as it is: ends never stand without the object they are about.
    SegmentDone {
        etag: String,
        version_id: Option<String>,
        before: Fanned,
        after: Fanned,
        lease_until: i64,
    },
    Verified {
        sha256: Sha256,
        etag: String,
        version_id: Option<String>,
        verified_at: String,
        bytes: u64,
        chained: Chained,
        /// Signed from these very fields before the write (`None`: receipts are off).
        receipt: Option<String>,
    },
    /// Still `completing`, lease kept: the verdict `failed` is decided and recorded before the
    /// object is deleted, so a holder that dies in between leaves it for the next to finish.
    Failing {
        sha256: Option<Sha256>,
        etag: Option<String>,
        version_id: Option<String>,
        error: String,
        chained: Chained,
    },
    /// `failed`, after `Failing` and the object's deletion: the verdict `Failing` decided.
    Failed {
        error: String,
        sha256: Option<Sha256>,
    },
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
            Self::Claim { .. }
            | Self::Release { .. }
            | Self::Failing { .. }
            | Self::FanOut { .. }
            | Self::SegmentDone { .. } => Status::Completing,
            Self::Reopen { .. } | Self::Declare { .. } => Status::Pending,
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

    /// Whether the write ends the holder's lease (lease 0, no token).
    pub fn ends_lease(&self) -> bool {
        matches!(
            self,
            Self::Release { .. }
                | Self::Reopen { .. }
                | Self::HandOver { .. }
                | Self::Verified { .. }
                | Self::Failed { .. }
        )
    }

    /// What the stored item must hold besides the guard, whatever the caller: a decided
    /// failure (`error` on a `completing` item) is only carried out (`Failed`) or kept (`Claim`,
    /// `Release`), never dropped by a hand-over or a reopening, overturned by `Verified`, or
    /// decided again (a second `Failing` would keep the first one's digest under its error).
    pub fn requires(&self) -> Vec<Cond> {
        match self {
            Self::HandOver { .. }
            | Self::Reopen { .. }
            | Self::Verified { .. }
            | Self::Failing { .. }
            | Self::FanOut { .. } => vec![Cond::Absent(attr::ERROR)],
            // On the fan-out's pinned object, over exactly the ends read (another worker's
            // write in between makes this one re-read and merge).
            Self::SegmentDone { etag, before, .. } => vec![
                Cond::Absent(attr::ERROR),
                Cond::Eq(attr::ETAG, item::text(etag)),
                Cond::Eq(attr::SEGMENT_ENDS, item::fanned(before)),
            ],
            Self::Claim { .. }
            | Self::Release { .. }
            | Self::Declare { .. }
            | Self::Failed { .. }
            | Self::Aborted => Vec::new(),
        }
    }

    /// The whole condition of this change under `guard`: the guard's and `requires`.
    pub fn condition(&self, guard: &Guard) -> Vec<Cond> {
        let mut clauses = guard.condition();
        clauses.extend(self.requires());
        clauses
    }

    /// The statuses this change can be written from. Any other guard is refused by every store
    /// (a bug in the caller, never a write): so no write can make a record its state cannot
    /// describe (a `pending` one without its TTL, say).
    pub fn applies_from(&self, from: Status) -> bool {
        use Status as S;
        match self {
            Self::Claim { .. } => matches!(from, S::Pending | S::Completing | S::Verifying),
            Self::Declare { .. } | Self::Aborted => from == S::Pending,
            Self::Release { .. }
            | Self::Reopen { .. }
            | Self::HandOver { .. }
            | Self::Verified { .. }
            | Self::Failing { .. }
            | Self::FanOut { .. }
            | Self::SegmentDone { .. }
            | Self::Failed { .. } => from == S::Completing,
        }
    }

    /// The record as the write leaves it: `writes` applied to the record's item, read back.
    pub fn apply(&self, record: &UploadRecord, now: &str) -> Result<UploadRecord, Malformed> {
        let mut item = to_item(record);
        for write in self.writes(record.status(), record.upload_id, now) {
            write.apply(&mut item);
        }
        from_item(&item)
    }
}

mod writes;

#[cfg(test)]
mod exhaustive;
#[cfg(test)]
mod tests;
