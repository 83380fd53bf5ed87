//! Reads of the sparse in-flight index (`in_flight-lease_until`), whose keys are sharded
//! (`<kind>#<k>`, `vu_core::domain::in_flight`): every read visits each shard of its kind and
//! the unsharded key that items written before sharding still carry, a bounded page each, and
//! merges them so no shard is favoured.

use futures::{StreamExt as _, TryStreamExt as _};
use vu_core::domain::{ANNOUNCE, UploadId, in_flight_keys};
use vu_core::ports::PortError;

use super::item::{malformed, n, s};
use super::{DynamoSessions, IN_FLIGHT_INDEX, port_error};

/// Index partitions read at once: enough to keep a sweep's ~70 small queries short, few enough
/// not to burst a table's on-demand read capacity.
const CONCURRENT_READS: usize = 8;

/// The kinds of in-flight sessions the sweep re-drives (`Status::as_str`).
const STALLED_KINDS: [&str; 2] = ["completing", "verifying"];

impl DynamoSessions {
    /// Up to `limit` entries `(lease_until, id)` of the index key `key` whose lease ran out
    /// before `before` (any lease: `None`), oldest first: one page of at most `limit` keys.
    async fn index_page(
        &self,
        key: String,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, UploadId)>, PortError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(IN_FLIGHT_INDEX)
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":key", s(key))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        query = match before {
            Some(now) => query
                .key_condition_expression("#in_flight = :key AND #lease_until < :now")
                .expression_attribute_names("#lease_until", "lease_until")
                .expression_attribute_values(":now", n(now)),
            None => query.key_condition_expression("#in_flight = :key"),
        };
        let out = query.send().await.map_err(port_error)?;
        out.items()
            .iter()
            .map(|item| {
                let id = item
                    .get("upload_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| UploadId::parse(v).ok())
                    .ok_or_else(|| malformed("in-flight index upload_id"))?;
                let until = item
                    .get("lease_until")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| malformed("in-flight index lease_until"))?;
                Ok((until, id))
            })
            .collect()
    }

    /// One page from each of `keys`, read `CONCURRENT_READS` at a time, in the keys' order.
    async fn index_pages(
        &self,
        keys: Vec<String>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Vec<(i64, UploadId)>>, PortError> {
        futures::stream::iter(keys)
            .map(|key| self.index_page(key, before, limit))
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await
    }

    /// The sessions in flight whose lease ran out longest ago, over every shard of both kinds:
    /// each shard's oldest `limit`, merged by lease end, so the result is the table's oldest
    /// `limit` (a session re-driven gets a later lease, so the sweep works through them in turn).
    pub(super) async fn stalled_sessions(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        let keys = STALLED_KINDS.into_iter().flat_map(in_flight_keys).collect();
        let mut found: Vec<_> = self
            .index_pages(keys, Some(now), limit)
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_unstable();
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Pending sessions expiring before `before`, soonest first, over every shard: their
    /// index `lease_until` is their expiry. Items written before pending sessions were indexed
    /// are not found (they expire by their TTL, their reservations with them).
    pub(super) async fn abandoned_sessions(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        let mut found: Vec<_> = self
            .index_pages(in_flight_keys("pending"), Some(before), limit)
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_unstable();
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Up to `limit` verdicts not yet announced, taken from the shards in turn (one from each,
    /// then a second from each, …) so a shard with a backlog cannot crowd out the others.
    pub(super) async fn unannounced_sessions(
        &self,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        let pages = self
            .index_pages(in_flight_keys(ANNOUNCE), None, limit)
            .await?;
        Ok(round_robin(
            pages,
            usize::try_from(limit).unwrap_or(usize::MAX),
        ))
    }
}

/// Up to `limit` ids, taking one from each page in turn.
fn round_robin(pages: Vec<Vec<(i64, UploadId)>>, limit: usize) -> Vec<UploadId> {
    let mut pages: Vec<_> = pages.into_iter().map(Vec::into_iter).collect();
    let mut ids = Vec::new();
    while ids.len() < limit {
        let before = ids.len();
        for page in &mut pages {
            if ids.len() == limit {
                break;
            }
            if let Some((_, id)) = page.next() {
                ids.push(id);
            }
        }
        if ids.len() == before {
            break;
        }
    }
    ids
}
