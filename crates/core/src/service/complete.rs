//! `complete`: check the parts S3 holds and claim the session (a lease), then `finish` it. A
//! caller that finds the session already moving (or loses it to a take-over while it runs) waits
//! for its result within `COMPLETION_WAIT_SECONDS` of its start, then answers the record still
//! running (202); it takes over a completion whose lease ran out. Never a 409 for a race.

use std::time::Duration;

use super::{Budget, Uploads};
use crate::domain::{
    Change, ClaimedPart, Guard, Kind, PartStates, Sha256, Status, UploadId, UploadRecord,
    check_parts, measure, timestamp_now,
};
use crate::error::{Action, Conflict, Error};
use crate::ports::PortError;
use crate::segments::MAX_KEPT_STATES;

impl Uploads {
    /// Completes the multipart upload, verifies the object's SHA-256 and records the result.
    /// Idempotent: a finished upload answers its recorded result again.
    /// `declared` is the whole object's SHA-256 when the client learnt it only while sending
    /// the parts (a browser hashing as it reads); it is never ignored: it must agree with one
    /// declared at creation, and with the digest of an upload already verified.
    pub async fn complete(
        &self,
        owner: &str,
        id: UploadId,
        claimed: Option<&[ClaimedPart]>,
        declared: Option<Sha256>,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let states = PartStates::default();
        self.complete_chained(owner, id, claimed, declared, &states, budget)
            .await
    }

    /// `complete` with the SHA-256 chaining values the client declared (`part_states`): the
    /// verification hashes the segments between them in parallel and checks every link. States
    /// that cannot belong to the session's parts are refused (`Invalid`) before anything
    /// changes; the session's first claim keeps them (at most `MAX_KEPT_STATES`).
    pub async fn complete_chained(
        &self,
        owner: &str,
        id: UploadId,
        claimed: Option<&[ClaimedPart]>,
        declared: Option<Sha256>,
        states: &PartStates,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        // One budget for waiting on other callers, from this request's start: whatever this
        // caller did first (hashing, until it lost its lease), it answers within it.
        let answer = match self
            .complete_once(owner, id, claimed, declared, states, budget)
            .await
        {
            // Taken over while this caller ran it (its lease ran out under load, or a write of
            // its own was refused): the new holder's answer, waited for like any racing caller's.
            Ok(r) if taken_over(&r) => {
                self.settle(owner, r, claimed, declared, states, budget)
                    .await
            }
            other => other,
        };
        // Whoever ran the verification (a racing caller may have, without this digest), the
        // answer holds the digest this caller declared to the result.
        match (answer, declared) {
            (Ok(r), Some(declared)) if r.status() == Status::Verified => match r.sha256() {
                Some(recorded) if recorded != declared => {
                    Err(Error::DigestMismatch { declared, recorded })
                }
                _ => Ok(r),
            },
            (Ok(r), Some(declared))
                if matches!(r.status(), Status::Completing | Status::Verifying)
                    && r.expected_sha256 != Some(declared) =>
            {
                Err(running_without(&r))
            }
            (answer, _) => answer,
        }
    }

    async fn complete_once(
        &self,
        owner: &str,
        id: UploadId,
        claimed: Option<&[ClaimedPart]>,
        declared: Option<Sha256>,
        states: &PartStates,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let record = self.get(owner, id).await?;
        if let (Some(declared), Some(recorded)) = (declared, record.sha256())
            && matches!(record.status(), Status::Verified | Status::Failed)
            && declared != recorded
        {
            return Err(Error::DigestMismatch { declared, recorded });
        }
        let newly_declared = newly_declared(&record, declared)?;
        if record.status() != Status::Pending {
            if newly_declared.is_some()
                && matches!(record.status(), Status::Completing | Status::Verifying)
            {
                return Err(running_without(&record));
            }
            return self
                .settle(owner, record, claimed, declared, states, budget)
                .await;
        }
        self.require_active(&record, Action::Complete)?;
        let Kind::Multipart { s3_upload_id, .. } = &record.kind else {
            return self.complete_posted(record, newly_declared, budget).await;
        };
        let listed = match self
            .objects
            .list_parts(record.key.as_str(), s3_upload_id)
            .await
        {
            Err(PortError::NotFound) => {
                // Gone because a racing caller completed it in S3: that caller's result.
                let now = self.get(owner, id).await?;
                if now.status() == Status::Pending {
                    return Err(self.close_gone(&now).await);
                }
                return self
                    .settle(owner, now, claimed, declared, states, budget)
                    .await;
            }
            other => other?,
        };
        let (plan, sized) = match record.plan {
            Some(plan) => (plan, None),
            None => {
                let plan = measure(&listed)?;
                // An unsized session may hold what it reserved, and no more.
                if plan.size() > self.unsized_reservation() {
                    return Err(Error::TooLarge {
                        size: plan.size(),
                        max: self.unsized_reservation(),
                    });
                }
                (plan, Some(plan))
            }
        };
        let parts = check_parts(&plan, &listed, claimed)?;
        let guard = Guard::status(Status::Pending);
        // Malformed for these parts: refused before anything changes.
        states.fit(&plan)?;
        let kept = Some(states.thinned(MAX_KEPT_STATES));
        match self.claim(id, guard, sized, newly_declared, kept).await? {
            Some(record) => self.finish(record, Some(parts), budget).await,
            // Someone else moved it first (another `complete`, or a `DELETE`).
            None => {
                let record = self.get(owner, id).await?;
                self.settle(owner, record, claimed, declared, states, budget)
                    .await
            }
        }
    }

    /// A form POST session: verifies the object if it has arrived; keeps a newly declared digest
    /// either way, so the verification that the object's arrival starts compares with it.
    async fn complete_posted(
        &self,
        record: UploadRecord,
        declared: Option<Sha256>,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let id = record.upload_id;
        if let Some(expected_sha256) = declared {
            let guard = Guard::status(Status::Pending);
            let declare = Change::Declare { expected_sha256 };
            match self
                .sessions
                .transition(id, guard, declare, &timestamp_now())
                .await
            {
                Ok(_) => {}
                // Moved on meanwhile: its verification runs without the digest; say so.
                Err(PortError::PreconditionFailed) => {
                    let status = self.get(&record.owner, id).await?.status();
                    return Err(Conflict::DeclaredTooLate { status }.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        match self.start_posted(record, declared, budget).await? {
            Some(r) => Ok(r),
            None => Err(Conflict::NotArrived.into()),
        }
    }

    /// Answers for a record another caller has moved on: its result when final, after waiting
    /// (until the budget's `wait_until`) while another completion runs, or by taking over a completion whose lease
    /// ran out. Out of time, the record as it stands (`completing`: 202, poll it): another caller
    /// holding the completion is the normal case of a retry, never a conflict.
    async fn settle(
        &self,
        owner: &str,
        mut record: UploadRecord,
        claimed: Option<&[ClaimedPart]>,
        declared: Option<Sha256>,
        states: &PartStates,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        loop {
            match record.status() {
                Status::Verified => return Ok(record),
                Status::Failed => return Err(Error::VerificationFailed(Box::new(record))),
                Status::Aborted => {
                    let status = Status::Aborted;
                    return Err(Conflict::WrongState {
                        action: Action::Complete,
                        status,
                    }
                    .into());
                }
                Status::Pending => {
                    let id = record.upload_id;
                    return Box::pin(
                        self.complete_once(owner, id, claimed, declared, states, budget),
                    )
                    .await;
                }
                // A take-over is work (completing in S3, hashing): one whose budget is spent
                // on waiting leaves it to the next call, or to the sweep, rather than starting
                // what it would have to hand over at once.
                Status::Completing if record.lease_until() < self.clock.now() => {
                    if !budget.can_start_work() {
                        return Ok(record);
                    }
                    if let Some(result) = self.take_over(&record, budget).await? {
                        return result;
                    }
                }
                // Large objects: the verifier function is on it; clients poll the record.
                Status::Verifying => return Ok(record),
                Status::Completing => {
                    let left = budget.wait_left();
                    if left.is_zero() {
                        return Ok(record);
                    }
                    tokio::time::sleep(left.min(Duration::from_millis(200))).await;
                }
            }
            record = self.get(owner, record.upload_id).await?;
        }
    }

    /// Resumes a completion whose holder died or gave up, from whichever step it reached.
    /// `None` when another caller won it.
    pub(super) async fn take_over(
        &self,
        record: &UploadRecord,
        budget: Budget,
    ) -> Result<Option<Result<UploadRecord, Error>>, Error> {
        let guard = self.expired_lease();
        let Some(record) = self
            .claim(record.upload_id, guard, None, None, None)
            .await?
        else {
            return Ok(None);
        };
        // A failure the dead holder decided is carried out, whatever S3 still holds: never
        // dropped by reopening the session.
        if record.error().is_some() {
            return Ok(Some(self.finish(record, None, budget).await));
        }
        // The multipart upload may still be open (the holder died before completing it) or
        // already completed into the object; a posted object has no multipart upload.
        let listed = match &record.kind {
            Kind::Multipart { s3_upload_id, .. } => {
                self.objects
                    .list_parts(record.key.as_str(), s3_upload_id)
                    .await
            }
            Kind::Post => Err(PortError::NotFound),
        };
        let parts = match listed {
            Ok(listed) => match check_parts(&self.planned(&record).await?, &listed, None) {
                Ok(parts) => Some(parts),
                Err(e) => {
                    self.reopen(&record).await;
                    return Ok(Some(Err(e.into())));
                }
            },
            Err(PortError::NotFound) => None,
            Err(e) => {
                self.release(&record, &e).await;
                return Err(e.into());
            }
        };
        Ok(Some(self.finish(record, parts, budget).await))
    }
}

/// What a completion this caller ran answers when another caller took it over meanwhile (the
/// record as that caller left it: `finish` itself answers only final or handed-over records), or
/// what `settle` answered out of time (settled again, it answers at once). `settle` turns it
/// into that caller's answer.
fn taken_over(record: &UploadRecord) -> bool {
    matches!(
        record.status(),
        Status::Pending | Status::Completing | Status::Aborted
    )
}

fn running_without(record: &UploadRecord) -> Error {
    Conflict::DeclaredTooLate {
        status: record.status(),
    }
    .into()
}

/// A digest declared at completion: new when none was declared at creation, refused when it
/// differs from that one.
fn newly_declared(
    record: &UploadRecord,
    declared: Option<Sha256>,
) -> Result<Option<Sha256>, Error> {
    match (record.expected_sha256, declared) {
        (Some(before), Some(now)) if before != now => Err(crate::domain::Invalid::new(
            "sha256",
            format!("differs from the SHA-256 declared when the upload was created ({before})"),
        )
        .into()),
        (None, Some(now)) => Ok(Some(now)),
        _ => Ok(None),
    }
}
