//! The single item each owner's reservations lived in before they were sharded
//! (`quota#<owner>`: a map of session id → `{bytes, expires_at}` and their sum
//! `pending_bytes`). Nothing adds to it any more; until it is empty its reservations still
//! count against the owner's limits (the shards get what it does not hold, and it only
//! shrinks, so a stale read errs on the safe side), and its sessions give back here. An owner
//! found with no such item (or an empty one) is remembered, so it costs one read per instance.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::super::item::{n, s};
use super::super::{DynamoSessions, Item, port_error};
use vu_core::ports::PortError;

/// Owners remembered without a single item, per instance, before the memory starts over.
const REMEMBERED: usize = 100_000;

fn key(owner: &str) -> AttributeValue {
    s(format!("quota#{owner}"))
}

fn number(v: Option<&AttributeValue>) -> u64 {
    v.and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The reservations an item holds: id → (bytes, expires_at).
fn held(item: &Item) -> HashMap<String, (u64, i64)> {
    let Some(Ok(map)) = item.get("reservations").map(AttributeValue::as_m) else {
        return HashMap::new();
    };
    map.iter()
        .filter_map(|(id, v)| {
            let r = v.as_m().ok()?;
            let expires = r.get("expires_at")?.as_n().ok()?.parse().ok()?;
            Some((id.clone(), (number(r.get("bytes")), expires)))
        })
        .collect()
}

impl DynamoSessions {
    fn legacy_gone(&self, owner: &str) -> bool {
        self.legacy_gone
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(owner)
    }

    /// The owner's single item, `None` (and remembered) when it holds nothing.
    async fn legacy(&self, owner: &str) -> Result<Option<HashMap<String, (u64, i64)>>, PortError> {
        if self.legacy_gone(owner) {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        let held = out.item.as_ref().map(held).unwrap_or_default();
        if held.is_empty() {
            let mut gone = self
                .legacy_gone
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if gone.len() >= REMEMBERED {
                gone.clear();
            }
            gone.insert(owner.to_owned());
            return Ok(None);
        }
        Ok(Some(held))
    }

    /// How many sessions and bytes the single item still holds for `owner` (expired ones
    /// given back first).
    pub(super) async fn legacy_holdings(
        &self,
        owner: &str,
        now: i64,
    ) -> Result<(u64, u64), PortError> {
        let Some(held) = self.legacy(owner).await? else {
            return Ok((0, 0));
        };
        let mut live = (0u64, 0u64);
        for (id, (bytes, at)) in &held {
            if *at < now {
                self.legacy_give_back(owner, id, *bytes).await?;
            } else {
                live = (live.0 + 1, live.1.saturating_add(*bytes));
            }
        }
        Ok(live)
    }

    /// Gives back what session `id` holds in the single item; whether it held anything.
    pub(super) async fn legacy_unreserve(&self, owner: &str, id: &str) -> Result<bool, PortError> {
        let Some(held) = self.legacy(owner).await? else {
            return Ok(false);
        };
        match held.get(id) {
            Some(&(bytes, _)) => self.legacy_give_back(owner, id, bytes).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Moves the expiry of what session `id` holds in the single item; whether it holds any.
    pub(super) async fn legacy_extend(
        &self,
        owner: &str,
        id: &str,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let Some(held) = self.legacy(owner).await? else {
            return Ok(false);
        };
        if !held.contains_key(id) {
            return Ok(false);
        }
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .update_expression("SET reservations.#id.expires_at = :at")
            .condition_expression(
                "attribute_exists(reservations.#id) AND reservations.#id.expires_at < :at",
            )
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":at", n(expires_at))
            .send()
            .await
            .map_err(port_error);
        match moved {
            Ok(_) | Err(PortError::PreconditionFailed) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Removes `id`'s entry and its bytes, only if it is still there (else another give-back
    /// removed it first, which is as good).
    async fn legacy_give_back(&self, owner: &str, id: &str, bytes: u64) -> Result<(), PortError> {
        let gone = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .update_expression("SET pending_bytes = pending_bytes - :bytes REMOVE reservations.#id")
            .condition_expression("attribute_exists(reservations.#id)")
            .expression_attribute_names("#id", id)
            .expression_attribute_values(":bytes", n(bytes))
            .send()
            .await
            .map_err(port_error);
        match gone {
            Ok(_) | Err(PortError::PreconditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
