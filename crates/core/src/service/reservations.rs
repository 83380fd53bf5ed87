//! What keeps owners' reservations from leaking: a reopened session's reservation lives as long
//! as the session, and the sweep gives back what a final record still holds when its give-back
//! failed (with an announcer, `announce_pending` does it before it clears the mark).

use super::Uploads;
use crate::domain::{Kind, UploadRecord};
use crate::error::{Error, chain};
use crate::ports::Reservation;

impl Uploads {
    /// Moves `record`'s reservation to `expires_at` (its session goes back to `pending` until
    /// then). One that is gone (it expired during a long completion and was given back) is
    /// reserved again; refused (the owner is full meanwhile) or failed, the session still
    /// reopens, and the refusal is logged: the session's completion gives back nothing then.
    pub(super) async fn extend_reservation(&self, record: &UploadRecord, expires_at: i64) {
        let (owner, id) = (&record.owner, record.upload_id);
        let held = match self
            .sessions
            .extend(owner, id, expires_at, self.owner_limits())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(upload_id = %id, error = %chain(&e), "could not extend a reopened session's reservation");
                return;
            }
        };
        if held {
            return;
        }
        let reservation = Reservation {
            id,
            bytes: self.reserved_bytes(record),
            expires_at,
        };
        match self
            .sessions
            .reserve(owner, reservation, self.clock.now(), self.owner_limits())
            .await
        {
            Ok(None) => {}
            Ok(Some(limit)) => {
                tracing::warn!(upload_id = %id, ?limit, "a reopened session's reservation had expired and its owner is full");
            }
            Err(e) => {
                tracing::warn!(upload_id = %id, error = %chain(&e), "could not reserve again for a reopened session");
            }
        }
    }

    /// What `record`'s session reserved at create: its declared size, else what a session of
    /// unknown size reserves (a form's declared size is not kept: the most it may be).
    fn reserved_bytes(&self, record: &UploadRecord) -> u64 {
        match (&record.kind, record.plan) {
            (Kind::Multipart { .. }, Some(plan)) if !record.plan_measured => plan.size(),
            _ => self.unsized_reservation(),
        }
    }

    /// The sweep's step for an instance with no announcer (which never clears a mark): gives
    /// back what up to `limit` final records left marked still hold. Idempotent: one that
    /// holds nothing any more costs a read, no write. With an announcer, `announce_pending`
    /// gives back before it announces and clears the mark. How many were looked at.
    pub(super) async fn give_back_left(&self, limit: u32) -> Result<usize, Error> {
        if self.announcer.is_some() {
            return Ok(0);
        }
        let (mut seen, mut failed) = (0, None);
        for id in self.sessions.unannounced(limit).await? {
            let outcome = match self.sessions.get(id).await {
                Ok(Some(record)) if record.status().is_final() => {
                    seen += 1;
                    self.sessions
                        .unreserve(&record.owner, id, self.owner_limits())
                        .await
                        .map_err(Error::from)
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::error!(upload_id = %id, error = %chain(&e), "could not give back a final session's reservation");
                failed = Some(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(seen),
        }
    }
}
