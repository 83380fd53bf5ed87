//! Reads of the sparse in-flight index (`in_flight-lease_until`), whose keys are sharded
//! (`<kind>#<k>`, `vu_core::domain::in_flight`): every read visits each shard of its kind and
//! the unsharded key that items written before sharding still carry, a bounded page each, and
//! merges them so no shard is favoured.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt as _, TryStreamExt as _};
use vu_core::domain::{ANNOUNCE, UploadId, in_flight_keys, shard};
use vu_core::ports::PortError;

use super::item::{malformed, n, s};
use super::{DynamoSessions, IN_FLIGHT_INDEX, port_error};

/// Index partitions read at once: enough to keep a sweep's ~70 small queries short, few enough
/// not to burst a table's on-demand read capacity.
const CONCURRENT_READS: usize = 8;

/// The kinds of in-flight sessions the sweep re-drives (`Status::as_str`).
const STALLED_KINDS: [&str; 2] = ["completing", "verifying"];

/// The index kind of the marker items that ask the sweep to check a session's key.
const WATCH: &str = "reconcile";

/// A marker item's key: its session's id under this prefix, never a session's (not a ULID).
const WATCH_PREFIX: &str = "reconcile:";

/// A marker left behind (its session long gone) is removed by the table's TTL this long after
/// it was due.
const WATCH_TTL_SECS: i64 = 7 * 24 * 3600;

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
                    .and_then(|v| UploadId::parse(v.strip_prefix(WATCH_PREFIX).unwrap_or(v)).ok())
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

    /// Puts the marker item that asks the sweep to check `id`'s key after `until`: keyed apart
    /// from the session (`reconcile:<id>`), on the sharded index as `reconcile#<k>`. It has no
    /// owner, status or `created_at`, so no other index or read sees it.
    pub(super) async fn put_watch(&self, id: UploadId, until: i64) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("upload_id", s(format!("{WATCH_PREFIX}{id}")))
            .item("in_flight", s(format!("{WATCH}#{:02}", shard(id))))
            .item("lease_until", n(until))
            .item("expires_at", n(until.saturating_add(WATCH_TTL_SECS)))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    pub(super) async fn due_watches(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        let mut found: Vec<_> = self
            .index_pages(in_flight_keys(WATCH), Some(now), limit)
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_unstable();
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    pub(super) async fn delete_watch(&self, id: UploadId) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(
                "upload_id",
                AttributeValue::S(format!("{WATCH_PREFIX}{id}")),
            )
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
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
