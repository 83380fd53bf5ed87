//! Verdicts told to the rest of the system. The write that makes a record final also marks it
//! `unannounced`; the announcement goes out only after that write succeeded, and the mark is
//! cleared only after the announcement did, so a verdict is announced at least once (the sweep
//! finds what an announcer that died or failed left) and never one that was not written.

use std::sync::Arc;

use super::Uploads;
use crate::domain::UploadRecord;
use crate::error::{Error, chain};
use crate::ports::Announcer;

impl Uploads {
    /// The same service, announcing every verdict through `announcer` (EventBridge).
    pub fn with_announcer(mut self, announcer: Arc<dyn Announcer>) -> Self {
        self.announcer = Some(announcer);
        self
    }

    /// What follows the write that made `record` final: the owner's reservation goes back and the
    /// verdict is announced. Neither failure undoes the verdict, and the mark (`unannounced`) is
    /// cleared only once both are done, so the sweep retries whichever failed: it gives back
    /// (idempotent) and announces (at least once) what is left marked.
    /// `record` is left as stored: no longer `unannounced` once cleared. An instance with no
    /// announcer leaves the mark for one that has (it never clears what it did not send); its
    /// sweep still retries the give-back (`give_back_left`).
    pub(super) async fn settled(&self, record: &mut UploadRecord) {
        let given_back = self.unreserve(&record.owner, record.upload_id).await;
        let Some(announcer) = &self.announcer else {
            return;
        };
        if let Err(e) = announcer.announce(record).await {
            tracing::warn!(error = %chain(&e), "could not announce the verdict; the sweep will");
            return;
        }
        if !given_back {
            return;
        }
        match self.sessions.announced(record.upload_id).await {
            Ok(()) => record.mark_announced(),
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not clear the announced mark; the sweep will")
            }
        }
    }

    /// Settles a final record left marked: its reservation back, its verdict announced, then the
    /// mark cleared (each step only after the one before it succeeded).
    async fn announce(&self, record: &UploadRecord) -> Result<(), Error> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        self.sessions
            .unreserve(&record.owner, record.upload_id, self.owner_limits())
            .await?;
        announcer.announce(record).await?;
        self.sessions.announced(record.upload_id).await?;
        Ok(())
    }

    /// Announces up to `limit` verdicts left unannounced; how many went out. Each is tried even
    /// when another fails (one EventBridge keeps refusing must not hold back the rest); the
    /// last failure is returned after all were tried.
    pub(super) async fn announce_pending(&self, limit: u32) -> Result<usize, Error> {
        if self.announcer.is_none() {
            return Ok(0);
        }
        let (mut sent, mut failed) = (0, None);
        for id in self.sessions.unannounced(limit).await? {
            let outcome = match self.sessions.get(id).await {
                Ok(Some(record)) if record.status().is_final() && record.unannounced() => {
                    tracing::warn!(upload_id = %id, "announcing a verdict left unannounced");
                    self.announce(&record).await.map(|()| sent += 1)
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                tracing::error!(upload_id = %id, error = %chain(&e), "could not announce a verdict left unannounced");
                failed = Some(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }
}
