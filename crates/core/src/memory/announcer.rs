//! EventBridge's bus: what was announced, in order.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Call, Faults, lock};
use crate::domain::{Status, UploadId, UploadRecord};
use crate::ports::{Announcer, PortError};

#[derive(Default)]
pub struct MemoryAnnouncer {
    sent: Mutex<Vec<UploadRecord>>,
    pub faults: Faults,
}

impl MemoryAnnouncer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every announcement of `id`, as the status it announced.
    pub fn of(&self, id: UploadId) -> Vec<Status> {
        lock(&self.sent)
            .iter()
            .filter(|r| r.upload_id == id)
            .map(|r| r.status())
            .collect()
    }

    /// The records announced, in order.
    pub fn sent(&self) -> Vec<UploadRecord> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Announcer for MemoryAnnouncer {
    async fn announce(&self, record: &UploadRecord) -> Result<(), PortError> {
        self.faults.enter(Call::Announce).await?;
        lock(&self.sent).push(record.clone());
        Ok(())
    }
}
