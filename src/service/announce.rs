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
    /// verdict is announced. Neither failure undoes the verdict: the reservation expires with the
    /// session, and the sweep announces what is left unannounced.
    /// `record` is left as stored: no longer `unannounced` once announced.
    pub(super) async fn settled(&self, record: &mut UploadRecord) {
        self.unreserve(&record.owner, record.upload_id).await;
        match self.announce(record).await {
            Ok(()) => record.unannounced = false,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not announce the verdict; the sweep will")
            }
        }
    }

    async fn announce(&self, record: &UploadRecord) -> Result<(), Error> {
        if let Some(announcer) = &self.announcer {
            announcer.announce(record).await?;
        }
        self.sessions.announced(record.upload_id).await?;
        Ok(())
    }

    /// Announces up to `limit` verdicts left unannounced; how many went out.
    pub(super) async fn announce_pending(&self, limit: u32) -> Result<usize, Error> {
        let mut sent = 0;
        for id in self.sessions.unannounced(limit).await? {
            match self.sessions.get(id).await? {
                Some(record) if record.status.is_final() && record.unannounced => {
                    tracing::warn!(upload_id = %id, "announcing a verdict left unannounced");
                    self.announce(&record).await?;
                    sent += 1;
                }
                _ => {}
            }
        }
        Ok(sent)
    }
}
