//! Reading and writing one owner's quota shards (`shard.rs` holds what a shard is): each write is
//! one conditional `UpdateItem` on one shard item, so racing writers serialize on it, and each
//! keeps `pending_bytes` the sum.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::super::item::{n, s};
use super::super::{DynamoSessions, Item, port_error};
use super::shard::{Entry, Part, Pointer, Shard, Within};
use vu_core::ports::{PortError, Upstream};

/// Times a `BatchGetItem` is sent again for the keys DynamoDB left unprocessed (throttling).
const BATCH_ATTEMPTS: usize = 5;

fn entry(e: Entry) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("b".to_owned(), n(e.bytes)),
        ("e".to_owned(), n(e.expires_at)),
    ]))
}

/// `Ok(false)` for a write whose condition did not hold.
fn held(r: Result<(), PortError>) -> Result<bool, PortError> {
    match r {
        Ok(()) => Ok(true),
        Err(PortError::PreconditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

impl DynamoSessions {
    /// The key of shard `k` of `owner`'s reservations: the shard first, so no owner's name
    /// can spell another's key (nor the single item of before, `quota#<owner>`).
    pub(super) fn shard_key(owner: &str, k: u32) -> AttributeValue {
        s(format!("quotas#{k}#{owner}"))
    }

    pub(super) async fn read_shard(&self, owner: &str, k: u32) -> Result<Shard, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        Ok(out.item.as_ref().map(Shard::parse).unwrap_or_default())
    }

    /// Shards `0..count` (at most 100: one `BatchGetItem`), strongly consistent.
    pub(super) async fn read_shards(
        &self,
        owner: &str,
        count: u32,
    ) -> Result<Vec<Shard>, PortError> {
        let keys: Vec<Item> = (0..count)
            .map(|k| Item::from([("upload_id".to_owned(), Self::shard_key(owner, k))]))
            .collect();
        let mut read: HashMap<String, Shard> = HashMap::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::unavailable(Upstream::DynamoDB, e))?,
        );
        for _ in 0..BATCH_ATTEMPTS {
            let Some(request) = pending.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(port_error)?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let Some(Ok(key)) = item.get("upload_id").map(AttributeValue::as_s) {
                    read.insert(key.clone(), Shard::parse(&item));
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        if pending.is_some() {
            return Err(PortError::unavailable(
                Upstream::DynamoDB,
                "BatchGetItem left shards unprocessed",
            ));
        }
        Ok((0..count)
            .map(|k| {
                let key = format!("quotas#{k}#{owner}");
                read.remove(&key).unwrap_or_default()
            })
            .collect())
    }

    /// Creates shard `k`'s maps where they are missing (idempotent).
    pub(super) async fn init_shard(&self, owner: &str, k: u32) -> Result<(), PortError> {
        let empty = AttributeValue::M(HashMap::new());
        self.client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .update_expression(
                "SET slots = if_not_exists(slots, :m), extra = if_not_exists(extra, :m), \
                 spill = if_not_exists(spill, :m), pending_bytes = if_not_exists(pending_bytes, :zero)",
            )
            .expression_attribute_values(":m", empty)
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    /// Adds `e` for `id` to shard `k` if it holds at most `within.room` bytes before it and, for
    /// a slot, fewer than `within.open` slots; `false` when refused (or not created yet).
    pub(super) async fn take(
        &self,
        owner: &str,
        (k, part): (u32, Part),
        id: &str,
        e: Entry,
        within: Within,
    ) -> Result<bool, PortError> {
        let Within { open, room } = within;
        let map = part.map();
        let mut condition = format!("attribute_not_exists({map}.#id) AND pending_bytes <= :room");
        if part == Part::Slot {
            condition.push_str(" AND size(slots) < :open");
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .update_expression(format!(
                "SET {map}.#id = :entry, pending_bytes = pending_bytes + :b"
            ))
            .condition_expression(condition)
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":entry", entry(e))
            .expression_attribute_values(":b", n(e.bytes))
            .expression_attribute_values(":room", n(room));
        if part == Part::Slot {
            update = update.expression_attribute_values(":open", n(open));
        }
        held(update.send().await.map(|_| ()).map_err(port_error))
    }

    /// Removes `entries` from shard `k` and their bytes, only if every one is still there (else
    /// another give-back removed them first, which is as good: `false`) and, with
    /// `expired_before`, still expired then (a reopen may have just extended one).
    pub(super) async fn drop_entries(
        &self,
        owner: &str,
        k: u32,
        entries: &[(Part, String, u64)],
        expired_before: Option<i64>,
    ) -> Result<bool, PortError> {
        if entries.is_empty() {
            return Ok(true);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k));
        let (mut removes, mut conditions, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        for (i, (part, id, b)) in entries.iter().enumerate() {
            update = update.expression_attribute_names(format!("#r{i}"), id.as_str());
            removes.push(format!("{}.#r{i}", part.map()));
            conditions.push(match expired_before {
                Some(_) => format!("{}.#r{i}.e < :now", part.map()),
                None => format!("attribute_exists({}.#r{i})", part.map()),
            });
            bytes = bytes.saturating_add(*b);
        }
        if let Some(now) = expired_before {
            update = update.expression_attribute_values(":now", n(now));
        }
        let gone = update
            .update_expression(format!(
                "SET pending_bytes = pending_bytes - :bytes REMOVE {}",
                removes.join(", ")
            ))
            .condition_expression(conditions.join(" AND "))
            .expression_attribute_values(":bytes", n(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(port_error);
        held(gone)
    }

    /// Records in `id`'s home shard `k` the other shards it may take from (before it takes).
    pub(super) async fn set_pointer(
        &self,
        owner: &str,
        k: u32,
        id: &str,
        p: &Pointer,
    ) -> Result<(), PortError> {
        let shards = p.shards.iter().map(|k| n(*k)).collect();
        let pointer = AttributeValue::M(HashMap::from([
            ("e".to_owned(), n(p.expires_at)),
            ("k".to_owned(), AttributeValue::L(shards)),
        ]));
        self.client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .update_expression("SET spill.#id = :p")
            .condition_expression("attribute_exists(spill)")
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":p", pointer)
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    pub(super) async fn drop_pointer(
        &self,
        owner: &str,
        k: u32,
        id: &str,
    ) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .update_expression("REMOVE spill.#id")
            .condition_expression("attribute_exists(spill)")
            .expression_attribute_names("#id", id)
            .send()
            .await
            .map(|_| ())
            .map_err(port_error)
            .or_else(|e| match e {
                PortError::PreconditionFailed => Ok(()),
                e => Err(e),
            })
    }

    /// Moves the expiry of `id`'s entry (`Some(part)`) or pointer (`None`) in shard `k` to
    /// `expires_at`, never back; `false` when it is not there.
    pub(super) async fn extend_in(
        &self,
        owner: &str,
        k: u32,
        part: Option<Part>,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let map = part.map_or("spill", Part::map);
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", Self::shard_key(owner, k))
            .update_expression(format!("SET {map}.#id.e = :e"))
            .condition_expression(format!("attribute_exists({map}.#id) AND {map}.#id.e < :e"))
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":e", n(expires_at))
            .send()
            .await
            .map(|_| ())
            .map_err(port_error);
        held(moved)
    }
}
