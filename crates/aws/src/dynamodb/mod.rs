//! The `SessionStore` on DynamoDB: one item per session (`vu_core::domain::to_item`), every
//! transition one conditional `UpdateItem` translated from the change's writes and the guard's
//! condition, which the in-memory store evaluates as they are.

pub mod capacity;
mod item;
mod quota;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use item::{malformed, n, record, s, to_item};

use vu_core::domain::{ANNOUNCE, Change, Guard, Status, UploadId, UploadRecord, in_flight};
use vu_core::ports::{
    OwnerLimit, OwnerLimits, Page, PageKey, PortError, Reservation, SessionStore, Upstream,
};

/// The GSI that lists an owner's uploads by creation time (template.yaml, scripts/bootstrap.py).
pub const OWNER_INDEX: &str = "owner-created_at";

/// The sparse GSI of sessions in flight (`completing`/`verifying`) by lease end: only those items
/// carry `in_flight`, so the sweep reads what it re-drives and nothing else.
pub const IN_FLIGHT_INDEX: &str = "in_flight-lease_until";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoSessions {
    client: Client,
    table: String,
}

impl DynamoSessions {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            // With DYNAMODB_CONSUMED_CAPACITY=1, a client that accounts each call's capacity.
            client: capacity::client(sdk),
            table: table.into(),
        }
    }
}

fn port_error<E>(e: SdkError<E, aws_smithy_runtime_api::http::Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if e.code() == Some("ConditionalCheckFailedException") {
        return PortError::PreconditionFailed;
    }
    PortError::unavailable(Upstream::DynamoDB, e)
}

#[async_trait]
impl SessionStore for DynamoSessions {
    async fn create(&self, record: &UploadRecord) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(upload_id)")
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn get(&self, id: UploadId) -> Result<Option<UploadRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(port_error)?;
        out.item.as_ref().map(record).transpose()
    }

    async fn list_by_owner(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<&PageKey>,
    ) -> Result<Page, PortError> {
        let mut names = HashMap::from([("#owner".to_owned(), "owner".to_owned())]);
        let mut values = HashMap::from([(":owner".to_owned(), s(owner))]);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(OWNER_INDEX)
            .key_condition_expression("#owner = :owner")
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(st) = status {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), s(st.as_str()));
            query = query.filter_expression("#status = :status");
        }
        if let Some(k) = after {
            query = query.set_exclusive_start_key(Some(Item::from([
                ("upload_id".into(), s(k.upload_id.to_string())),
                ("owner".into(), s(owner)),
                ("created_at".into(), s(&k.created_at)),
            ])));
        }
        let out = query
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(port_error)?;
        let records = out
            .items()
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
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

    async fn transition(
        &self,
        id: UploadId,
        guard: Guard,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, PortError> {
        // No status this change cannot start from is ever written (the domain says which).
        if !change.applies_from(guard.status) {
            return Err(PortError::PreconditionFailed);
        }
        let update = item::update(&change.writes(guard.status, now), &change.condition(&guard));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .update_expression(update.expression)
            .condition_expression(update.condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(port_error)?;
        record(
            out.attributes
                .as_ref()
                .ok_or_else(|| malformed("no attributes returned"))?,
        )
    }

    async fn stalled(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        let mut ids = Vec::new();
        for status in [Status::Completing, Status::Verifying] {
            // The sweep's index key as transitions write it (`in_flight`, defined in the core);
            // both statuses have one, so nothing is skipped.
            let Some(key) = in_flight(status, false).as_ref().map(item::attribute) else {
                continue;
            };
            let mut start = None;
            loop {
                let page_limit = limit.saturating_sub(u32::try_from(ids.len()).unwrap_or(limit));
                if page_limit == 0 {
                    return Ok(ids);
                }
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(IN_FLIGHT_INDEX)
                    .key_condition_expression("#in_flight = :status AND #lease_until < :now")
                    .expression_attribute_names("#in_flight", "in_flight")
                    .expression_attribute_names("#lease_until", "lease_until")
                    .expression_attribute_values(":status", key.clone())
                    .expression_attribute_values(":now", n(now))
                    .limit(i32::try_from(page_limit).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(port_error)?;
                for item in out.items() {
                    let id = item
                        .get("upload_id")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|v| UploadId::parse(v).ok())
                        .ok_or_else(|| malformed("in-flight index upload_id"))?;
                    ids.push(id);
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(ids)
    }

    async fn unannounced(&self, limit: u32) -> Result<Vec<UploadId>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(IN_FLIGHT_INDEX)
            .key_condition_expression("#in_flight = :announce")
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":announce", s(ANNOUNCE))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(port_error)?;
        out.items()
            .iter()
            .map(|item| {
                item.get("upload_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| UploadId::parse(v).ok())
                    .ok_or_else(|| malformed("in-flight index upload_id"))
            })
            .collect()
    }

    async fn announced(&self, id: UploadId) -> Result<(), PortError> {
        let cleared = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .update_expression("REMOVE #in_flight")
            .condition_expression("#in_flight = :announce")
            .expression_attribute_names("#in_flight", "in_flight")
            .expression_attribute_values(":announce", s(ANNOUNCE))
            .send()
            .await
            .map_err(port_error);
        match cleared {
            Ok(_) | Err(PortError::PreconditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn reserve(
        &self,
        owner: &str,
        reservation: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError> {
        self.reserve_quota(owner, reservation, now, limits).await
    }

    async fn unreserve(&self, owner: &str, id: UploadId) -> Result<(), PortError> {
        self.unreserve_quota(owner, id).await
    }
}
