//! The upload use cases, one file per job: `create` (sessions), `parts` (signing and listing),
//! `complete` (check parts → claim, or wait for / take over another caller's claim), `finish`
//! (complete in S3 → verify → record the verdict), `lease` (writes under the holder's lease),
//! `verifier` (S3 events, continuations, posted objects), `sweep` (re-drives and late announcements, fair and bounded), `download`, `receipt`, `abort`. Every state change is a conditional write
//! (`domain::Change` under a `domain::Guard`), so concurrent callers (two `complete`s, a
//! `complete` racing a `DELETE`) cannot both act or overwrite each other.

mod abort;
mod announce;
mod budget;
mod chained;
mod complete;
mod complete_s3;
mod create;
mod download;
mod fanout;
mod fanout_end;
mod fanout_seal;
mod finish;
mod lease;
mod parts;
mod receipt;
mod reservations;
mod sweep;
mod verifier;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use budget::Budget;
pub use create::{Created, NewUpload, UnsizedUpload};
pub use download::Download;
pub use fanout::MAX_SEGMENT_BYTES;
pub use parts::MAX_URLS_PER_CALL;
pub use sweep::{ABANDONED_AFTER, RECONCILE_AFTER};
pub use verifier::EventOutcome;

use crate::domain::{
    Change, Guard, LeaseToken, PartPlan, PartStates, Sha256, Status, UploadId, UploadRecord,
    timestamp_now,
};
use crate::error::{Action, Conflict, Error};
use crate::ports::{Announcer, Continuation, ObjectStore, Page, PageKey, PortError, SessionStore};
use crate::settings::{Limits, VerifyConfig};

pub struct Uploads {
    objects: Arc<dyn ObjectStore>,
    sessions: Arc<dyn SessionStore>,
    limits: Limits,
    verify: VerifyConfig,
    clock: Clock,
    /// Started on every hand-over to the verifier (`None`: S3's event alone starts it).
    verifier: Option<Arc<dyn Continuation>>,
    /// Told every verdict (`None`: verdicts are only recorded).
    announcer: Option<Arc<dyn Announcer>>,
    /// Signs verified records' receipts (`None`: this service issues none).
    receipts: Option<Arc<crate::receipt::Receipts>>,
}

/// Epoch seconds for leases and TTLs; tests move it forward to expire a lease.
#[derive(Clone, Default)]
pub struct Clock {
    skew: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        real.saturating_add(self.skew.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves this clock (and every `Uploads` sharing it) `by` into the future.
    pub fn advance(&self, by: Duration) {
        self.skew
            .fetch_add(secs(by), std::sync::atomic::Ordering::Relaxed);
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Uploads {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        sessions: Arc<dyn SessionStore>,
        limits: Limits,
        verify: VerifyConfig,
    ) -> Self {
        Self {
            objects,
            sessions,
            limits,
            verify,
            clock: Clock::default(),
            verifier: None,
            announcer: None,
            receipts: None,
        }
    }

    /// The same service, starting `verifier` itself whenever it hands a session over, rather
    /// than waiting for S3's event (which a local stack never sends, and which a taken-over
    /// completion never gets again).
    pub fn with_verifier(mut self, verifier: Arc<dyn Continuation>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The same service on `clock` (tests share one to expire leases).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The limits it enforces (entry points build a request's `Budget` from them).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How long signed part URLs stay valid.
    pub fn url_expiry(&self) -> Duration {
        self.limits.url_expiry
    }

    /// How long a signed form POST policy stays valid.
    pub fn post_form_expiry(&self) -> Duration {
        self.limits.post_form_expiry
    }

    /// The caller's uploads, newest first. `status` filters after DynamoDB reads `limit` items,
    /// so a page may hold fewer than `limit` and still have a next page.
    pub async fn list(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<PageKey>,
    ) -> Result<Page, Error> {
        Ok(self
            .sessions
            .list_by_owner(owner, status, limit, after.as_ref())
            .await?)
    }

    /// The record, if `owner` owns it; anyone else's id answers exactly like an unknown one.
    pub async fn get(&self, owner: &str, id: UploadId) -> Result<UploadRecord, Error> {
        match self.sessions.get(id).await? {
            Some(r) if r.owner == owner => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    /// A session still taking parts: `pending` and not expired.
    fn require_active(&self, record: &UploadRecord, action: Action) -> Result<(), Error> {
        if record.status() != Status::Pending {
            let status = record.status();
            return Err(Conflict::WrongState { action, status }.into());
        }
        if record.expires_at().is_some_and(|t| t <= self.clock.now()) {
            return Err(Conflict::Expired { action }.into());
        }
        Ok(())
    }

    /// Takes the completion of `id` under a fresh lease if `guard` holds; `None` when another
    /// caller moved the record first.
    async fn claim(
        &self,
        id: UploadId,
        guard: Guard,
        sized: Option<PartPlan>,
        expected_sha256: Option<Sha256>,
        part_states: Option<PartStates>,
    ) -> Result<Option<UploadRecord>, Error> {
        let token = LeaseToken::generate();
        let claim = Change::Claim {
            lease_until: self.clock.now() + secs(self.limits.completion_lease),
            token,
            sized,
            expected_sha256,
            part_states,
        };
        let refused = match self
            .sessions
            .transition(id, guard, claim, &timestamp_now())
            .await
        {
            Ok(record) => return Ok(Some(record)),
            Err(e) => e,
        };
        // A claim answered with an error may have landed (the SDK retries an `UpdateItem` whose
        // answer was lost, and the retry's condition no longer holds): the lease is this
        // caller's if the record holds its token, which nobody else has.
        match self.sessions.get(id).await {
            Ok(Some(record)) if record.lease_token() == Some(token) => {
                tracing::warn!("a claim answered with an error had landed; it is ours");
                Ok(Some(record))
            }
            _ if matches!(refused, PortError::PreconditionFailed) => Ok(None),
            _ => Err(refused.into()),
        }
    }

    /// A claim on a `completing` record whose holder's lease ran out by now.
    fn expired_lease(&self) -> Guard {
        Guard {
            status: Status::Completing,
            lease_expired_by: Some(self.clock.now()),
            holder: None,
        }
    }
}

#[cfg(test)]
mod tests;
