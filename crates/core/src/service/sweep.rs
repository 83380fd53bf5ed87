//! The sweep (the verifier function on a schedule; `make dev`'s timer): re-drives sessions
//! whose lease ran out in `completing` or `verifying` (a holder that died, a hand-over whose
//! start was lost), closes pending sessions whose multipart upload S3's lifecycle has aborted,
//! puts back what a form's key holds once its replays are over, and announces verdicts an
//! announcer left unannounced. Fair: sessions that
//! keep failing upstream cannot crowd out the rest. Bounded: one run reads and re-drives at most
//! what its `limit` says, and stops at a share of its invocation's time.

use std::time::{Duration, Instant};

use super::{Budget, Uploads, secs};
use crate::domain::{Kind, Status, UploadId, UploadRecord};
use crate::error::{Conflict, Error, chain};
use crate::ports::PortError;

/// How many stalled sessions a run reads per session it may re-drive: enough that sessions
/// backing off after upstream faults do not fill the window before healthy ones.
const READ_AHEAD: u32 = 2;

/// The share of a run's `limit` kept for sessions that keep failing upstream, however many
/// healthy ones wait: they are retried too, just never ahead of everything else.
const FAILING_SHARE: u32 = 4;

/// A run stops re-driving after this much of what is left of its invocation (the verifier's
/// timeout is 900 s): the rest is margin for the announcements and the SDK's retries.
const RUN_SHARE: u32 = 2;

/// A pending session this old has lost its multipart upload: the bucket's lifecycle aborts
/// incomplete uploads a day after they start (template.yaml, `AbortIncompleteUploadsAfterDays`),
/// and S3 applies lifecycle rules within about a day more. The sweep closes it (`aborted`, its
/// reservation given back) rather than let it hold its owner's slot until its TTL.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(2 * 24 * 3600);

/// How long after a form's policy expires the sweep checks its key: by then nothing more can be
/// posted under it and S3 has stored whatever was (a POST accepted at the last second), so
/// anything under the key beside the verified version is a leftover; a clean-up still being
/// retried by the verifier queue finds nothing left to delete, which it answers as done.
pub const RECONCILE_AFTER: Duration = Duration::from_secs(3600);

/// And never runs longer than this (a run with no deadline, as `make dev`'s sweeper), so two
/// scheduled runs (every 5 minutes) do not overlap.
const MAX_RUN: Duration = Duration::from_secs(240);

impl Uploads {
    /// Re-drives up to `limit` sessions whose lease ran out in `completing` or `verifying`:
    /// each goes to the verifier, or, with none configured, is verified here within `budget`
    /// (cut to the run's share of it). Then announces up to `limit` verdicts left unannounced.
    /// Returns the sessions re-driven.
    pub async fn sweep(&self, limit: u32, budget: Budget) -> Result<Vec<UploadId>, Error> {
        let stop = run_deadline(budget.deadline, Instant::now());
        // The two jobs are independent: a re-drive that fails (the queue is down) must not hold
        // back announcements, nor the other way round. Each tries all it found.
        let redriven = self.redrive(limit, budget.until(stop)).await;
        let closed = self.close_abandoned(limit, budget.until(stop)).await;
        let reconciled = self.reconcile_keys(limit, budget.until(stop)).await;
        if let Err(e) = &reconciled {
            tracing::error!(error = %chain(e), "the sweep could not check every form's key");
        }
        match &closed {
            Ok(0) => {}
            Ok(n) => tracing::info!(closed = n, "closed sessions whose multipart upload is gone"),
            Err(e) => {
                tracing::error!(error = %chain(e), "the sweep could not close every abandoned session")
            }
        }
        let announced = self.announce_pending(limit).await;
        let given_back = self.give_back_left(limit).await;
        match &announced {
            Ok(0) => {}
            Ok(n) => tracing::info!(announced = n, "announced verdicts left unannounced"),
            Err(e) => {
                tracing::error!(error = %chain(e), "the sweep could not announce every verdict")
            }
        }
        if let Err(e) = &given_back {
            tracing::error!(error = %chain(e), "the sweep could not give back every reservation");
        }
        let redriven = redriven?;
        closed?;
        reconciled?;
        announced?;
        given_back?;
        Ok(redriven)
    }

    /// Checks up to `limit` keys whose forms' replays are over: a replay whose clean-up was lost
    /// (dead-lettered) leaves another version current over the verified one, or bytes under the
    /// key of a session that failed or was aborted. Every version but the verified one goes
    /// (which makes it current again), or every version when none was verified; then the key's
    /// watch is cleared. A session not final yet is looked at again later.
    async fn reconcile_keys(&self, limit: u32, budget: Budget) -> Result<usize, Error> {
        let now = self.clock.now();
        let (mut checked, mut failed) = (0, None);
        for id in self.sessions.watched_keys(now, limit).await? {
            if !budget.can_start_work() {
                break;
            }
            let outcome = async {
                let Some(record) = self.sessions.get(id).await? else {
                    return Ok::<_, Error>(true);
                };
                let keep = match record.status() {
                    // Without a version id (a bucket without versioning) the key holds one
                    // object, the verified one: nothing to purge.
                    Status::Verified if record.version_id().is_none() => return Ok(true),
                    Status::Verified => record.version_id(),
                    Status::Failed | Status::Aborted => None,
                    _ => {
                        let later = now + secs(RECONCILE_AFTER);
                        self.sessions.watch_key(id, later).await?;
                        return Ok(false);
                    }
                };
                let deleted = self.objects.purge(record.key.as_str(), keep).await?;
                if deleted > 0 {
                    tracing::warn!(upload_id = %id, versions = deleted, "deleted versions a lost clean-up left under a form's key");
                }
                Ok(true)
            }
            .await;
            match outcome {
                Ok(true) => match self.sessions.unwatch_key(id).await {
                    Ok(()) => checked += 1,
                    Err(e) => failed = Some(e.into()),
                },
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(upload_id = %id, error = %chain(&e), "could not check a form's key");
                    failed = Some(e);
                    // Behind the others: a key that keeps failing does not hold them back.
                    let later = now + secs(RECONCILE_AFTER);
                    if let Err(e) = self.sessions.watch_key(id, later).await {
                        tracing::warn!(upload_id = %id, error = %chain(&e), "could not put a form's key back in line");
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(checked),
        }
    }

    /// Closes up to `limit` pending sessions older than `ABANDONED_AFTER` (by their expiry:
    /// created or reopened `session_ttl` before it), until the run's deadline. How many it
    /// closed; the last failure after every one was tried.
    async fn close_abandoned(&self, limit: u32, budget: Budget) -> Result<usize, Error> {
        let before = self.clock.now() + secs(self.limits.session_ttl) - secs(ABANDONED_AFTER);
        let (mut closed, mut failed) = (0, None);
        for id in self.sessions.abandoned(before, limit).await? {
            if !budget.can_start_work() {
                break;
            }
            let outcome = match self.sessions.get(id).await {
                Ok(Some(r)) if r.expires_at().is_some_and(|at| at < before) => {
                    self.close_abandoned_one(r, budget).await
                }
                Ok(_) => Ok(false),
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(true) => closed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(upload_id = %id, error = %chain(&e), "could not close an abandoned session");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(closed),
        }
    }

    /// One abandoned session: aborted as its owner's `DELETE` would (the multipart upload
    /// aborted in S3 if it is still there, the reservation given back, the verdict announced);
    /// but a form whose object did arrive (its event lost, its owner never back) is verified.
    async fn close_abandoned_one(
        &self,
        record: UploadRecord,
        budget: Budget,
    ) -> Result<bool, Error> {
        if record.kind == Kind::Post
            && self
                .objects
                .head(record.key.as_str(), None)
                .await?
                .is_some()
        {
            return match self.start_posted(record, None, budget).await {
                Ok(_) | Err(Error::VerificationFailed(_)) => Ok(false),
                Err(e) => Err(e),
            };
        }
        // Age alone never closes a live upload: the lifecycle's abort age and the session TTL are
        // settings (and may differ between instances), so a multipart session is closed only when
        // S3 says its upload is gone (`NoSuchUpload`) or the session itself has expired; a form
        // (nothing under its key, checked above) only once the session has expired.
        let expired = record.expires_at().is_some_and(|at| at <= self.clock.now());
        if !expired {
            let Kind::Multipart { s3_upload_id, .. } = &record.kind else {
                return Ok(false);
            };
            match self
                .objects
                .list_parts(record.key.as_str(), s3_upload_id)
                .await
            {
                Err(PortError::NotFound) => {}
                Ok(_) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(upload_id = %record.upload_id, expired, "closing a pending session whose multipart upload is gone or whose time is up");
        match self.abort(&record.owner, record.upload_id).await {
            Ok(()) => Ok(true),
            // Completed or aborted by its owner meanwhile.
            Err(Error::Conflict(Conflict::WrongState { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Re-drives the stalled sessions `fair_order` picks, until the run's deadline; the last
    /// failure is returned after every one was tried.
    async fn redrive(&self, limit: u32, budget: Budget) -> Result<Vec<UploadId>, Error> {
        let now = self.clock.now();
        let ids = self
            .sessions
            .stalled(now, limit.saturating_mul(READ_AHEAD))
            .await?;
        let (mut healthy, mut failing, mut failed) = (Vec::new(), Vec::new(), None);
        for id in ids {
            if !budget.can_start_work() {
                break;
            }
            match self.sessions.get(id).await {
                // Still stalled (not taken meanwhile): sorted by whether it keeps failing.
                Ok(Some(r)) if r.status().is_in_flight() && r.lease_until() < now => {
                    if r.fault().is_some() {
                        failing.push(r);
                    } else {
                        healthy.push(r);
                    }
                }
                Ok(_) => {}
                Err(e) => failed = Some(e.into()),
            }
        }
        let mut redriven = Vec::new();
        let picked = fair_order(
            healthy,
            failing,
            usize::try_from(limit).unwrap_or(usize::MAX),
        );
        let total = picked.len();
        for record in picked {
            if !budget.can_start_work() {
                tracing::warn!(
                    left = total - redriven.len(),
                    "the sweep ran out of its share of time; the next run takes the rest"
                );
                break;
            }
            let id = record.upload_id;
            tracing::warn!(upload_id = %id, "re-driving a session whose lease ran out");
            let outcome = match &self.verifier {
                Some(verifier) => verifier.schedule(id).await.map_err(Error::from),
                None => self.verify_session(record, budget).await.map(|_| ()),
            };
            match outcome {
                Ok(()) => redriven.push(id),
                Err(e) => {
                    tracing::error!(upload_id = %id, error = %chain(&e), "could not re-drive a session");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(redriven),
        }
    }
}

/// Up to `limit` sessions, healthy ones first (each list is oldest lease end first), except a
/// quarter of the run kept for sessions that keep failing: so 200 sessions failing the same
/// way never starve the rest, and are not starved themselves. A session re-driven gets a later
/// lease (its claim, its back-off, its hand-over), so the next run reaches the ones behind it.
fn fair_order(
    healthy: Vec<UploadRecord>,
    failing: Vec<UploadRecord>,
    limit: usize,
) -> Vec<UploadRecord> {
    let kept = failing.len().min(limit / FAILING_SHARE as usize);
    let healthy_taken = healthy.len().min(limit - kept);
    let failing_taken = failing.len().min(limit - healthy_taken);
    healthy
        .into_iter()
        .take(healthy_taken)
        .chain(failing.into_iter().take(failing_taken))
        .collect()
}

/// When a run that started at `now` stops re-driving: a share of what its invocation has left,
/// at most `MAX_RUN`.
fn run_deadline(deadline: Option<Instant>, now: Instant) -> Instant {
    let left = deadline.map_or(MAX_RUN, |d| d.saturating_duration_since(now) / RUN_SHARE);
    now + left.min(MAX_RUN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_takes_half_of_what_is_left_and_at_most_four_minutes() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(run_deadline(Some(now + s(900)), now), now + s(240));
        assert_eq!(run_deadline(Some(now + s(300)), now), now + s(150));
        assert_eq!(run_deadline(Some(now), now), now);
        assert_eq!(run_deadline(None, now), now + s(240));
    }
}
