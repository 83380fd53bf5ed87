//! Each owner's reservations, in one item of the sessions table (`quota#<owner>`): a map of
//! session id → `{bytes, expires_at}` and their sum `pending_bytes`. Every change is one
//! conditional `UpdateItem`, so concurrent creates can never pass a limit together.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{n, s};
use super::{DynamoSessions, Item, port_error};
use vu_core::domain::UploadId;
use vu_core::ports::{OwnerLimit, OwnerLimits, PortError, Reservation};

/// Conditional writes one reservation tries: each retry follows a give-back (of another
/// session's, or of expired ones) that landed between a refused write and the read after it.
const RESERVE_ATTEMPTS: usize = 5;

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
    async fn quota(&self, owner: &str) -> Result<Item, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        Ok(out.item.unwrap_or_default())
    }

    pub(super) async fn reserve_quota(
        &self,
        owner: &str,
        r: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError> {
        let Some(room) = limits.pending_bytes.checked_sub(r.bytes) else {
            return Ok(Some(OwnerLimit::PendingBytes(limits.pending_bytes)));
        };
        // The map must exist before an entry can be set in it.
        self.client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .update_expression(
                "SET reservations = if_not_exists(reservations, :empty), pending_bytes = if_not_exists(pending_bytes, :zero)",
            )
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(port_error)?;
        let id = r.id.to_string();
        // What a refused write leaves to decide comes from a later read: a give-back may have
        // landed between the two. So the refusal is named by the limit the read shows broken
        // (as the in-memory store names it: open sessions first), and when the read shows
        // neither (room was made since) or shows expired reservations (given back here), the
        // write is tried again.
        for _ in 0..RESERVE_ATTEMPTS {
            let entry = AttributeValue::M(HashMap::from([
                ("bytes".to_owned(), n(r.bytes)),
                ("expires_at".to_owned(), n(r.expires_at)),
            ]));
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("upload_id", key(owner))
                .update_expression("SET reservations.#id = :entry, pending_bytes = pending_bytes + :bytes")
                .condition_expression(
                    "attribute_not_exists(reservations.#id) AND size(reservations) < :open AND pending_bytes <= :room",
                )
                .expression_attribute_names("#id", &id)
                .expression_attribute_values(":entry", entry)
                .expression_attribute_values(":bytes", n(r.bytes))
                .expression_attribute_values(":open", n(limits.open_sessions))
                .expression_attribute_values(":room", n(room))
                .send()
                .await
                .map_err(port_error);
            match added {
                Ok(_) => return Ok(None),
                Err(PortError::PreconditionFailed) => {}
                Err(e) => return Err(e),
            }
            let item = self.quota(owner).await?;
            let held = held(&item);
            if held.contains_key(&id) {
                return Ok(None);
            }
            let expired: Vec<_> = held.iter().filter(|(_, (_, at))| *at < now).collect();
            if !expired.is_empty() {
                self.give_back(owner, &expired).await?;
                continue;
            }
            if held.len() as u64 >= limits.open_sessions {
                return Ok(Some(OwnerLimit::OpenSessions(limits.open_sessions)));
            }
            if number(item.get("pending_bytes")) > room {
                return Ok(Some(OwnerLimit::PendingBytes(limits.pending_bytes)));
            }
        }
        // Refused every time, with room made again before every read: as full as it gets.
        Ok(Some(OwnerLimit::OpenSessions(limits.open_sessions)))
    }

    pub(super) async fn unreserve_quota(&self, owner: &str, id: UploadId) -> Result<(), PortError> {
        let id = id.to_string();
        let item = self.quota(owner).await?;
        match held(&item).get(&id) {
            Some(&entry) => self.give_back(owner, &[(&id, &entry)]).await,
            None => Ok(()),
        }
    }

    pub(super) async fn extend_quota(
        &self,
        owner: &str,
        id: UploadId,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", key(owner))
            .update_expression("SET reservations.#id.expires_at = :at")
            .condition_expression(
                "attribute_exists(reservations.#id) AND reservations.#id.expires_at < :at",
            )
            .expression_attribute_names("#id", id.to_string())
            .expression_attribute_values(":at", n(expires_at))
            .send()
            .await
            .map_err(port_error);
        match moved {
            Ok(_) => Ok(true),
            Err(PortError::PreconditionFailed) => {
                Ok(held(&self.quota(owner).await?).contains_key(&id.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Removes `entries` and their bytes, only if every one is still there (else someone else
    /// gave them back first, which is as good).
    async fn give_back(
        &self,
        owner: &str,
        entries: &[(&String, &(u64, i64))],
    ) -> Result<(), PortError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", key(owner));
        let mut removes = Vec::new();
        let mut conditions = Vec::new();
        let mut bytes = 0u64;
        for (i, (id, (b, _))) in entries.iter().enumerate() {
            update = update.expression_attribute_names(format!("#r{i}"), id.as_str());
            removes.push(format!("reservations.#r{i}"));
            conditions.push(format!("attribute_exists(reservations.#r{i})"));
            bytes = bytes.saturating_add(*b);
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
            .map_err(port_error);
        match gone {
            Ok(_) | Err(PortError::PreconditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
