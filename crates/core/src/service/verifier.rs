//! Verification outside the API request: S3's `ObjectCreated` events and the verifier's own
//! continuations (the `verifier` function), and form-POSTed objects, which no `complete` call
//! announces (S3's event, or the owner's next read, starts them).

use super::{Budget, Uploads};
use crate::domain::{
    Guard, Kind, ObjectKey, PartNumber, PartPlan, Sha256, Status, UploadId, UploadRecord,
};
use crate::error::{Action, Conflict, Error};

/// What the verifier did with an `ObjectCreated` event or a continuation.
#[derive(Debug)]
pub enum EventOutcome {
    /// The session's final record (`verified` or `failed`).
    Done(Box<UploadRecord>),
    /// The deadline came first; the record (`verifying`) holds the progress to continue from.
    Paused(Box<UploadRecord>),
    /// Fanned out by segments, or one segment's end recorded: the record (`completing`, its
    /// ends so far) waits for the rest.
    Segments(Box<UploadRecord>),
    Ignored(&'static str),
}

impl EventOutcome {
    pub(super) fn of(finished: Result<UploadRecord, Error>) -> Result<Self, Error> {
        match finished {
            Ok(r) if r.status() == Status::Verifying => Ok(Self::Paused(Box::new(r))),
            // Held, and fanned out: its segments finish it.
            Ok(r) if r.fanned().is_some() && r.lease().is_some() => Ok(Self::Segments(Box::new(r))),
            // Taken over while this run held it: the new holder records the verdict (or S3
            // refused the parts and the session is the client's again); nothing to redeliver.
            Ok(r) if matches!(r.status(), Status::Completing | Status::Pending) => Ok(
                Self::Ignored("another caller took the completion over; it records the verdict"),
            ),
            Ok(r) => Ok(Self::Done(Box::new(r))),
            Err(Error::VerificationFailed(r)) => Ok(Self::Done(r)),
            Err(e) => Err(e),
        }
    }
}

impl Uploads {
    /// The record, after starting the verification of a posted object that S3 already holds but
    /// whose `ObjectCreated:Post` event has not arrived (or never will, as on a local stack), or
    /// resuming one whose holder gave up or died: the owner's reads drive form POSTs, which no
    /// `complete` call announces.
    pub async fn get_settled(
        &self,
        owner: &str,
        id: UploadId,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let record = self.get(owner, id).await?;
        if record.kind != Kind::Post {
            return Ok(record);
        }
        let started = match record.status() {
            Status::Pending if self.require_active(&record, Action::Verify).is_ok() => {
                self.start_posted(record, None, budget).await
            }
            // Large objects are the verifier function's, whose redelivered event takes over.
            Status::Completing
                if record.lease_until() < self.clock.now()
                    && record.size().is_none_or(|s| budget.hashes(s)) =>
            {
                match self.take_over(&record, budget).await {
                    Ok(Some(result)) => result.map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            _ => return Ok(record),
        };
        match started {
            Ok(Some(r)) => Ok(r),
            Err(Error::VerificationFailed(r)) => Ok(*r),
            Ok(None) => self.get(owner, id).await,
            Err(e) => Err(e),
        }
    }

    /// Takes a pending posted session whose object has arrived, sizes it from the object and
    /// verifies it. `None`: no object yet, or another caller took it.
    pub(super) async fn start_posted(
        &self,
        record: UploadRecord,
        declared: Option<Sha256>,
        budget: Budget,
    ) -> Result<Option<UploadRecord>, Error> {
        // Too large to verify inside an API call, `finish` hands it to the verifier: the owner's
        // read starts it even if S3's event never arrives.
        let Some(info) = self.objects.head(record.key.as_str(), None).await? else {
            return Ok(None);
        };
        let Ok(plan) = PartNumber::new(1)
            .map_err(|e| e.reason)
            .and_then(|one| PartPlan::measured(&[(one, info.size)]))
        else {
            return Ok(None);
        };
        let guard = Guard::status(Status::Pending);
        match self
            .claim(record.upload_id, guard, Some(plan), declared, None)
            .await?
        {
            Some(r) => self.finish(r, None, budget).await.map(Some),
            None => Ok(None),
        }
    }

    /// Handles S3's `ObjectCreated` event for `key` (the `verifier` function): verifies the upload
    /// whose session awaits it, exactly as `complete` does inline. Other keys are ignored; a
    /// version (`version_id`, from the event) that arrives for a finished session is deleted.
    pub async fn on_object_created(
        &self,
        key: &str,
        version_id: Option<&str>,
        budget: Budget,
    ) -> Result<EventOutcome, Error> {
        let Ok(parsed) = ObjectKey::parse(key) else {
            return Ok(EventOutcome::Ignored("not an upload key"));
        };
        let id = parsed.upload_id();
        let Some(record) = self.sessions.get(id).await? else {
            return Ok(EventOutcome::Ignored("no session for this key"));
        };
        if record.key != parsed {
            return Ok(EventOutcome::Ignored("the key is not the session's"));
        }
        if let Some(outcome) = self.discard_replay(&record, version_id).await? {
            return Ok(outcome);
        }
        if record.kind == Kind::Post && record.status() == Status::Pending {
            match self.start_posted(record, None, budget).await {
                // No object (yet), or an owner's read took the session first: whatever that
                // left is handled as for any other session.
                Ok(None) => {}
                Ok(Some(r)) => return EventOutcome::of(Ok(r)),
                Err(e) => return EventOutcome::of(Err(e)),
            }
            return self.continue_verification(id, budget).await;
        }
        self.verify_session(record, budget).await
    }

    /// An object that arrived for a session already finished is a replay (a form POSTed again
    /// while its policy is valid): it goes, so what stays under the key is what the record names.
    async fn discard_replay(
        &self,
        record: &UploadRecord,
        version_id: Option<&str>,
    ) -> Result<Option<EventOutcome>, Error> {
        let key = record.key.as_str();
        let deleted = match record.status() {
            // Ended (or ending: a failed verdict being carried out) without a verified object:
            // every version under the key is unverified.
            Status::Failed | Status::Aborted if record.kind == Kind::Post => {
                self.objects.purge(key, None).await?
            }
            Status::Completing if record.error().is_some() => self.objects.purge(key, None).await?,
            // Another version than the verified one (an event without a version, as some
            // emulators send, may be one too): every version but the verified one goes, which
            // makes it current again.
            Status::Verified => match record.version_id() {
                Some(verified) if version_id != Some(verified) => {
                    self.objects.purge(key, Some(verified)).await?
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        if deleted == 0 {
            return Ok(Some(EventOutcome::Ignored(
                "the session is finished and nothing else is under its key",
            )));
        }
        tracing::warn!(
            upload_id = %record.upload_id,
            status = record.status().as_str(),
            versions = deleted,
            "deleted an object that arrived for a finished session"
        );
        Ok(Some(EventOutcome::Ignored(
            "an object that arrived for a finished session; deleted",
        )))
    }

    /// Continues a verification that paused at a deadline (the verifier's continuation event).
    pub async fn continue_verification(
        &self,
        id: UploadId,
        budget: Budget,
    ) -> Result<EventOutcome, Error> {
        match self.sessions.get(id).await? {
            Some(record) => self.verify_session(record, budget).await,
            None => Ok(EventOutcome::Ignored("no session with this id")),
        }
    }

    /// Takes a session awaiting verification (exactly one verifier wins) and verifies it.
    pub(super) async fn verify_session(
        &self,
        record: UploadRecord,
        budget: Budget,
    ) -> Result<EventOutcome, Error> {
        match record.status() {
            Status::Verifying => {
                let guard = Guard::status(Status::Verifying);
                let Some(taken) = self
                    .claim(record.upload_id, guard, None, None, None)
                    .await?
                else {
                    return Ok(EventOutcome::Ignored("another verifier took it"));
                };
                EventOutcome::of(self.finish(taken, None, budget).await)
            }
            // A holder (API or verifier) that died or gave up: its lease ran out, so this
            // delivery resumes the completion from whichever step it reached.
            Status::Completing if record.lease_until() < self.clock.now() => {
                match self.take_over(&record, budget).await? {
                    // S3 refused the parts: the session is the client's again (`pending`).
                    Some(Err(Error::Conflict(_) | Error::Parts(_))) => Ok(EventOutcome::Ignored(
                        "the completion could not finish; the session is pending again",
                    )),
                    Some(result) => EventOutcome::of(result),
                    None => Ok(EventOutcome::Ignored("another caller took it")),
                }
            }
            // A live holder finishes it or hands it over (starting the verifier itself); if it
            // dies, the sweep re-drives the session once its lease runs out. So a duplicate
            // delivery is acknowledged, never failed into the dead-letter queue.
            // Except for a form: its event may be a replay landing while the holder verifies, and
            // the holder may die before cleaning up. Failing the delivery brings it back after
            // the lease, when the session is final and the replay is deleted.
            Status::Completing if record.kind == Kind::Post => Err(Conflict::HolderBusy.into()),
            Status::Completing => Ok(EventOutcome::Ignored(
                "a live holder is completing or verifying it",
            )),
            _ => Ok(EventOutcome::Ignored(
                "the session is not awaiting verification",
            )),
        }
    }
}
