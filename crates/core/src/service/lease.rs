//! Writes under a completion's lease: each is conditional on the holder's token, so a holder
//! that was taken over writes nothing and answers the new holder's record instead (its verdict,
//! or the record still running, which `complete` waits on).

use super::{Uploads, secs};
use crate::domain::{Change, Fault, Guard, Status, UploadId, UploadRecord, timestamp_now};
use crate::error::{Error, chain};
use crate::ports::PortError;

/// What a write under the caller's lease came to.
pub(super) enum Held {
    Written(UploadRecord),
    /// Another caller took the completion over: the record as it was read right after (`None`:
    /// gone), for `lost` to answer from.
    Lost(Option<UploadRecord>),
}

impl Uploads {
    /// A write under this caller's lease; lost (another caller took the completion over), the
    /// answer that caller's work gives.
    pub(super) async fn write_held(
        &self,
        record: &UploadRecord,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, Error> {
        match self.try_write_held(record, change, now).await {
            Ok(Held::Written(written)) => Ok(written),
            Ok(Held::Lost(current)) => lost(current),
            // Whether or not it landed, the next caller may resume at once (a landed final
            // write makes this release a no-op).
            Err(e) => {
                self.release(record, &e).await;
                Err(e)
            }
        }
    }

    /// A write under this caller's lease; `Lost` when the lease is no longer this caller's.
    /// Refused or failed, the write may still have landed (the SDK retries an `UpdateItem` whose
    /// answer was lost, and the retry is refused by the condition the first attempt changed): a
    /// record that is exactly what this write made is this caller's, never a take-over.
    pub(super) async fn try_write_held(
        &self,
        record: &UploadRecord,
        change: Change,
        now: &str,
    ) -> Result<Held, Error> {
        let guard = Guard::held(record);
        let failed = match self
            .sessions
            .transition(record.upload_id, guard, change.clone(), now)
            .await
        {
            Ok(written) => return Ok(Held::Written(self.after_write(written).await)),
            Err(e) => e,
        };
        let current = match self.sessions.get(record.upload_id).await {
            Ok(current) => current,
            Err(read) if matches!(failed, PortError::PreconditionFailed) => {
                return Err(read.into());
            }
            Err(_) => return Err(failed.into()),
        };
        match current {
            Some(current) if written_by(record, &change, now, &current) => {
                tracing::warn!("a write answered with an error had landed");
                Ok(Held::Written(self.after_write(current).await))
            }
            current if matches!(failed, PortError::PreconditionFailed) => {
                tracing::warn!("lost the completion's lease to another caller");
                Ok(Held::Lost(current))
            }
            _ => Err(failed.into()),
        }
    }

    async fn after_write(&self, mut written: UploadRecord) -> UploadRecord {
        if written.status().is_final() {
            self.settled(&mut written).await;
        }
        written
    }

    /// A session that is final (or never got going) gives its owner's reservation back; whether
    /// it went. A final record whose give-back failed keeps its `unannounced` mark, and the
    /// sweep gives it back (`reservations.rs`); a session that never got a record has nothing
    /// to mark, and its reservation goes when it would have expired (or the sweep's reconcile).
    pub(super) async fn unreserve(&self, owner: &str, id: UploadId) -> bool {
        match self
            .sessions
            .unreserve(owner, id, self.owner_limits())
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(upload_id = %id, error = %chain(&e), "could not give back a reservation; the sweep will");
                false
            }
        }
    }

    /// A held write's outcome, the lease released when it failed upstream: on every exit
    /// path the next caller can resume (a write that did land makes the release a no-op).
    pub(super) async fn or_release<T>(
        &self,
        record: &UploadRecord,
        written: Result<T, Error>,
    ) -> Result<T, Error> {
        if let Err(e) = &written {
            self.release(record, e).await;
        }
        written
    }

    /// Gives up a completion after an upstream fault (`cause`): never a verdict. The fault and
    /// the attempts it has cost in a row stay on the record; nobody takes the session again
    /// before its back-off (`backoff`) ends, when the sweep (or any caller) resumes it from the
    /// step it reached. Operators alarm on the log line below, or on `attempts` in the table.
    pub(super) async fn release(
        &self,
        record: &UploadRecord,
        cause: &(dyn std::error::Error + Send + Sync + 'static),
    ) {
        let attempts = record.fault().map_or(0, |f| f.attempts).saturating_add(1);
        let retry_at = backoff(attempts).map(|wait| self.clock.now() + secs(wait));
        let fault = Fault {
            cause: public_cause(cause),
            attempts,
        };
        // ERROR, not WARN: the stack's alarm counts this line, and a LogLevel of ERROR must not
        // filter it out.
        tracing::error!(
            upload_id = %record.upload_id,
            attempts,
            retry_at = retry_at.unwrap_or_default(),
            error = %chain(cause),
            "upstream fault: not a verdict; the completion is retried after a back-off"
        );
        let release = Change::Release {
            fault: Some(fault),
            retry_at,
        };
        self.let_go(record, release).await;
    }

    /// Back to `pending` when S3 still holds the multipart upload and the client can fix its parts.
    pub(super) async fn reopen(&self, record: &UploadRecord) {
        let expires_at = self.clock.now() + secs(self.limits.session_ttl);
        // First, so the reservation never ends before the session it holds for (a reopen that
        // then fails leaves it held longer, until the session is final or the sweep's reconcile).
        self.extend_reservation(record, expires_at).await;
        let unmeasure = record.plan_measured;
        let reopen = Change::Reopen {
            expires_at,
            unmeasure,
        };
        self.let_go(record, reopen).await;
    }

    async fn let_go(&self, record: &UploadRecord, change: Change) {
        // Written under the holder's lease: a holder already taken over changes nothing.
        let to = change.status();
        let guard = Guard::held(record);
        if let Err(e) = self
            .sessions
            .transition(record.upload_id, guard, change, &timestamp_now())
            .await
        {
            // The lease still runs out on its own; log and carry on with the original error.
            tracing::warn!(error = %chain(&e), to = to.as_str(), "could not release a completion");
        }
    }
}

/// How long after its `attempts`-th upstream fault in a row a session waits. The first is
/// retried at once (a blip: the client's own retry resumes it); from the second on, 30 s
/// doubling, at most an hour (an upstream down for a day costs a session ~30 attempts, not
/// thousands, and failing sessions do not crowd the sweep).
pub(super) fn backoff(attempts: u32) -> Option<std::time::Duration> {
    let doublings = attempts.checked_sub(2)?.min(7);
    Some(std::time::Duration::from_secs(
        (30u64 << doublings).min(3600),
    ))
}

/// What a client may read of a fault: which upstream failed, never its internals (those are
/// logged with the upload id).
fn public_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(port) = err.downcast_ref::<PortError>() {
            return match port {
                PortError::Unavailable { service, .. } => format!("{service} request failed"),
                other => other.to_string(),
            };
        }
        cur = err.source();
    }
    "the service failed".into()
}

/// Whether `current` is exactly what `change` under the lease of `record` made of it (announced
/// or not): nobody else writes under that lease, and `now` with the token or digest the change
/// carries make the result this write's alone.
fn written_by(record: &UploadRecord, change: &Change, now: &str, current: &UploadRecord) -> bool {
    let Ok(mut expected) = change.apply(record, now) else {
        return false;
    };
    let mut current = current.clone();
    expected.mark_announced();
    current.mark_announced();
    current == expected
}

/// The answer for a completion taken over: the record as the new holder has left it so far.
/// Final, its verdict (`failed` as the error it is); still running (`completing` under the new
/// holder, `verifying`) or back to `pending`, the record itself, for the caller to wait on
/// (`complete` settles it within its budget, then answers 202) or to acknowledge (the
/// verifier). Never a conflict: a holder that outlived its lease lost a race the client did
/// not start, and retrying `complete` after a timeout is the normal case.
pub(super) fn lost(current: Option<UploadRecord>) -> Result<UploadRecord, Error> {
    match current {
        Some(r) if r.status() == Status::Failed => Err(Error::VerificationFailed(Box::new(r))),
        Some(r) => Ok(r),
        None => Err(Error::NotFound),
    }
}
