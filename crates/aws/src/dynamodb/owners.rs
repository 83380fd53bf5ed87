//! An owner's uploads, newest first, through the `owner-keys` GSI.
//!
//! The index projects keys only. With every attribute projected (as the older `owner-created_at`
//! index did), each of an upload's four or five state changes was also a write to its owner's
//! index partition: one owner creating 500 uploads/s needed ~2,500 WCU/s on one partition key,
//! past DynamoDB's 1,000. Keys never change after the create, so now the create is the only write
//! there (500 WCU/s at 500 creates/s, docs/scale.md), and a page is one Query for the keys plus
//! one strongly consistent BatchGetItem for the records (a status filter applies to those).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::item::{malformed, record, s};
use super::{DynamoSessions, Item, port_error};
use vu_core::domain::{Status, UploadId, UploadRecord};
use vu_core::ports::{Page, PageKey, PortError};

pub const OWNER_INDEX: &str = "owner-keys";

/// BatchGetItem rounds for the keys DynamoDB left unprocessed (throttling) before giving up.
const BATCH_ROUNDS: usize = 5;

/// BatchGetItem takes at most 100 keys; a page is at most 100 (the API's `limit`).
const BATCH_MAX: usize = 100;

impl DynamoSessions {
    pub(super) async fn owner_page(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<&PageKey>,
    ) -> Result<Page, PortError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OWNER_INDEX)
            .key_condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.min(BATCH_MAX as u32)).unwrap_or(1));
        if let Some(k) = after {
            query = query.set_exclusive_start_key(Some(Item::from([
                ("upload_id".into(), s(k.upload_id.to_string())),
                ("owner".into(), s(owner)),
                ("created_at".into(), s(&k.created_at)),
            ])));
        }
        let out = query.send().await.map_err(port_error)?;
        let ids = out
            .items()
            .iter()
            .map(|k| {
                k.get("upload_id")
                    .cloned()
                    .ok_or_else(|| malformed("index key upload_id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut records = self.records(&ids).await?;
        // The index's order (newest first) is the page's; BatchGetItem answers in any order. A key
        // whose item went (TTL) since the index was read is left out; so is another owner's
        // (never: the key is the owner's), and one not in `status`.
        let order: HashMap<_, _> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((id.as_s().ok()?.clone(), i)))
            .collect();
        records.retain(|r| r.owner == owner && status.is_none_or(|st| r.status() == st));
        records.sort_by_key(|r| {
            order
                .get(&r.upload_id.to_string())
                .copied()
                .unwrap_or(usize::MAX)
        });
        let next = match out.last_evaluated_key() {
            Some(k) => Some(PageKey {
                upload_id: k
                    .get("upload_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| UploadId::parse(v).ok())
                    .ok_or_else(|| malformed("page key upload_id"))?,
                created_at: k
                    .get("created_at")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| malformed("page key created_at"))?,
            }),
            None => None,
        };
        Ok(Page { records, next })
    }

    /// The records of `ids` (upload id values), strongly consistent; absent ones are skipped.
    async fn records(&self, ids: &[AttributeValue]) -> Result<Vec<UploadRecord>, PortError> {
        let mut pending: Vec<Item> = ids
            .iter()
            .map(|id| Item::from([("upload_id".to_owned(), id.clone())]))
            .collect();
        let mut records = Vec::with_capacity(pending.len());
        for _ in 0..BATCH_ROUNDS {
            if pending.is_empty() {
                return Ok(records);
            }
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::unavailable(vu_core::ports::Upstream::DynamoDB, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(port_error)?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                records.push(record(item)?);
            }
            if let Some(left) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                pending = left.keys().to_vec();
            }
        }
        if pending.is_empty() {
            return Ok(records);
        }
        Err(PortError::unavailable(
            vu_core::ports::Upstream::DynamoDB,
            format!(
                "{} records left unprocessed after {BATCH_ROUNDS} rounds",
                pending.len()
            ),
        ))
    }
}
