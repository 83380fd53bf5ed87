//! DynamoDB's sessions table: each transition evaluates the guard's condition and applies the
//! change's writes on the record's stored item, the same definitions the DynamoDB adapter
//! translates into its conditional `UpdateItem`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Call, Faults, lock};
use crate::domain::{Change, Guard, Status, UploadId, UploadRecord, from_item, to_item};
use crate::ports::{
    OwnerLimit, OwnerLimits, Page, PageKey, PortError, Reservation, SessionStore, Upstream,
};

/// DynamoDB's sessions table.
#[derive(Default)]
pub struct MemorySessions {
    records: Mutex<HashMap<UploadId, UploadRecord>>,
    /// Each owner's reservations (the quota item DynamoDB holds per owner).
    quotas: Mutex<HashMap<String, HashMap<UploadId, Reservation>>>,
    /// Keys the sweep checks, and from when (DynamoDB's marker items).
    watched: Mutex<HashMap<UploadId, i64>>,
    pub faults: Faults,
}

impl MemorySessions {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `owner`'s reservations: how many, and their bytes.
    pub fn reserved(&self, owner: &str) -> (usize, u64) {
        lock(&self.quotas)
            .get(owner)
            .map_or((0, 0), |r| (r.len(), r.values().map(|r| r.bytes).sum()))
    }

    /// The stored record, read without going through the port (no fault, no yield).
    pub fn peek(&self, id: UploadId) -> Option<UploadRecord> {
        lock(&self.records).get(&id).cloned()
    }

    /// Overwrites a record, as a test setting up a state (a dead holder's lease, say) would.
    pub fn put(&self, record: UploadRecord) {
        lock(&self.records).insert(record.upload_id, record);
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(&self, record: &UploadRecord) -> Result<(), PortError> {
        self.faults.enter(Call::CreateSession).await?;
        let mut records = lock(&self.records);
        if records.contains_key(&record.upload_id) {
            return Err(PortError::PreconditionFailed);
        }
        records.insert(record.upload_id, record.clone());
        Ok(())
    }

    async fn get(&self, id: UploadId) -> Result<Option<UploadRecord>, PortError> {
        self.faults.enter(Call::GetSession).await?;
        Ok(self.peek(id))
    }

    async fn list_by_owner(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<&PageKey>,
    ) -> Result<Page, PortError> {
        self.faults.enter(Call::ListSessions).await?;
        let mut mine: Vec<UploadRecord> = lock(&self.records)
            .values()
            .filter(|r| r.owner == owner)
            .cloned()
            .collect();
        // Newest first, as the owner index reads backwards by (created_at, upload_id).
        mine.sort_by(|a, b| (&b.created_at, b.upload_id).cmp(&(&a.created_at, a.upload_id)));
        if let Some(k) = after {
            mine.retain(|r| (&r.created_at, r.upload_id) < (&k.created_at, k.upload_id));
        }
        let read: Vec<UploadRecord> = mine.iter().take(limit as usize).cloned().collect();
        let next = (mine.len() > read.len())
            .then(|| read.last())
            .flatten()
            .map(|r| PageKey {
                upload_id: r.upload_id,
                created_at: r.created_at.clone(),
            });
        let records = read
            .into_iter()
            .filter(|r| status.is_none_or(|s| r.status() == s))
            .collect();
        Ok(Page { records, next })
    }

    async fn transition(
        &self,
        id: UploadId,
        guard: Guard,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, PortError> {
        self.faults.enter(Call::Transition(change.status())).await?;
        if !change.applies_from(guard.status) {
            return Err(PortError::PreconditionFailed);
        }
        let mut records = lock(&self.records);
        // DynamoDB's condition on a missing item fails as a condition, not as "not found".
        let record = records.get_mut(&id).ok_or(PortError::PreconditionFailed)?;
        let mut item = to_item(record);
        if !change.condition(&guard).iter().all(|c| c.holds(&item)) {
            return Err(PortError::PreconditionFailed);
        }
        for write in change.writes(guard.status, id, now) {
            write.apply(&mut item);
        }
        // What DynamoDB would return (ALL_NEW) and what its adapter would then fail to read.
        *record = from_item(&item).map_err(|e| PortError::unavailable(Upstream::DynamoDB, e))?;
        Ok(record.clone())
    }

    async fn stalled(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.faults.enter(Call::Stalled).await?;
        // Oldest lease end first, as the DynamoDB adapter merges the index's shards.
        let mut stalled: Vec<_> = lock(&self.records)
            .values()
            .filter(|r| matches!(r.status(), Status::Completing | Status::Verifying))
            .filter(|r| r.lease_until() < now)
            .map(|r| (r.lease_until(), r.upload_id))
            .collect();
        stalled.sort_unstable();
        stalled.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(stalled.into_iter().map(|(_, id)| id).collect())
    }

    async fn abandoned(
        &self,
        expiring_before: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        self.faults.enter(Call::Abandoned).await?;
        let mut found: Vec<_> = lock(&self.records)
            .values()
            .filter_map(|r| Some((r.expires_at()?, r.upload_id)))
            .filter(|(at, _)| *at < expiring_before)
            .collect();
        found.sort_unstable();
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    async fn watch_key(&self, id: UploadId, until: i64) -> Result<(), PortError> {
        self.faults.enter(Call::WatchKey).await?;
        lock(&self.watched).insert(id, until);
        Ok(())
    }

    async fn watched_keys(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.faults.enter(Call::WatchKey).await?;
        let mut due: Vec<_> = lock(&self.watched)
            .iter()
            .filter(|(_, until)| **until < now)
            .map(|(id, until)| (*until, *id))
            .collect();
        due.sort_unstable();
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    async fn unwatch_key(&self, id: UploadId) -> Result<(), PortError> {
        self.faults.enter(Call::WatchKey).await?;
        lock(&self.watched).remove(&id);
        Ok(())
    }

    async fn unannounced(&self, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.faults.enter(Call::Unannounced).await?;
        let mut ids: Vec<_> = lock(&self.records)
            .values()
            .filter(|r| r.unannounced())
            .map(|r| r.upload_id)
            .collect();
        ids.sort();
        ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(ids)
    }

    async fn announced(&self, id: UploadId) -> Result<(), PortError> {
        self.faults.enter(Call::Announced).await?;
        if let Some(r) = lock(&self.records).get_mut(&id) {
            r.mark_announced();
        }
        Ok(())
    }

    async fn reserve(
        &self,
        owner: &str,
        reservation: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError> {
        self.faults.enter(Call::Reserve).await?;
        let mut quotas = lock(&self.quotas);
        let held = quotas.entry(owner.to_owned()).or_default();
        held.retain(|_, r| r.expires_at >= now);
        if held.contains_key(&reservation.id) {
            return Ok(None);
        }
        if held.len() as u64 >= limits.open_sessions {
            return Ok(Some(OwnerLimit::OpenSessions(limits.open_sessions)));
        }
        let bytes: u64 = held.values().map(|r| r.bytes).sum();
        if bytes.saturating_add(reservation.bytes) > limits.pending_bytes {
            return Ok(Some(OwnerLimit::PendingBytes(limits.pending_bytes)));
        }
        held.insert(reservation.id, reservation);
        Ok(None)
    }

    async fn unreserve(&self, owner: &str, id: UploadId) -> Result<(), PortError> {
        self.faults.enter(Call::Unreserve).await?;
        if let Some(held) = lock(&self.quotas).get_mut(owner) {
            held.remove(&id);
        }
        Ok(())
    }
}
