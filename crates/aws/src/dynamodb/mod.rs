//! The `SessionStore` on DynamoDB: one item per session, every transition one conditional
//! `UpdateItem` that writes what `Change::apply` describes.

mod item;
mod quota;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use item::{from_item, malformed, n, s, to_item};

use vu_core::domain::{Change, Guard, Saved, Sha256, Status, UploadId, UploadRecord};
use vu_core::ports::{
    OwnerLimit, OwnerLimits, Page, PageKey, PortError, Reservation, SessionStore, Upstream,
};

/// The GSI that lists an owner's uploads by creation time (template.yaml, scripts/bootstrap.py).
pub const OWNER_INDEX: &str = "owner-created_at";

/// The sparse GSI of sessions in flight (`completing`/`verifying`) by lease end: only those items
/// carry `in_flight`, so the sweep reads what it re-drives and nothing else.
pub const IN_FLIGHT_INDEX: &str = "in_flight-lease_until";

/// `in_flight` of a final record whose verdict is not yet announced: the same sparse index
/// lists them for the sweep.
pub(crate) const ANNOUNCE: &str = "announce";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoSessions {
    client: Client,
    table: String,
}

impl DynamoSessions {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
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
        out.item.as_ref().map(from_item).transpose()
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
            .map(from_item)
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
        let mut update = Update::default();
        update.set("status", s(change.status().as_str()));
        update.set("updated_at", s(now));
        if change.is_final() {
            update.remove("expires_at");
            update.remove("hash_state");
        }
        match change.status() {
            st @ (Status::Completing | Status::Verifying) => {
                update.set("in_flight", s(st.as_str()))
            }
            _ if change.is_final() => update.set("in_flight", s(ANNOUNCE)),
            _ => update.remove("in_flight"),
        }
        if change.ends_lease() {
            update.set("lease_until", n(0));
            update.remove("lease_token");
        }
        write_change(&mut update, change);
        // `status`, `size`, `key` and `error` are DynamoDB reserved words: every attribute goes
        // through a placeholder.
        update
            .values
            .insert(":from".into(), s(guard.status.as_str()));
        let mut condition = "#status = :from".to_owned();
        if let Some(by) = guard.lease_expired_by {
            condition.push_str(" AND #lease_until < :lease_now");
            update
                .names
                .insert("#lease_until".into(), "lease_until".into());
            update.values.insert(":lease_now".into(), n(by));
        }
        if let Some(token) = guard.holder {
            condition.push_str(" AND #lease_token = :holder");
            update
                .names
                .insert("#lease_token".into(), "lease_token".into());
            update.values.insert(":holder".into(), s(token.to_string()));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .update_expression(update.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(port_error)?;
        from_item(
            out.attributes
                .as_ref()
                .ok_or_else(|| malformed("no attributes returned"))?,
        )
    }

    async fn stalled(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        let mut ids = Vec::new();
        for status in [Status::Completing, Status::Verifying] {
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
                    .expression_attribute_values(":status", s(status.as_str()))
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

/// An `UpdateItem` expression built attribute by attribute.
#[derive(Default)]
struct Update {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn set(&mut self, attr: &str, value: AttributeValue) {
        self.sets.push(format!("#{attr} = :{attr}"));
        self.names.insert(format!("#{attr}"), attr.to_owned());
        self.values.insert(format!(":{attr}"), value);
    }

    fn set_some(&mut self, attr: &str, value: Option<AttributeValue>) {
        if let Some(v) = value {
            self.set(attr, v);
        }
    }

    fn remove(&mut self, attr: &str) {
        self.removes.push(format!("#{attr}"));
        self.names.insert(format!("#{attr}"), attr.to_owned());
    }

    fn expression(&self) -> String {
        let mut out = format!("SET {}", self.sets.join(", "));
        if !self.removes.is_empty() {
            out.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        out
    }
}

/// The version that goes with an ETag: none (an unversioned bucket) removes a stale one.
fn set_version(update: &mut Update, version_id: Option<String>) {
    match version_id {
        Some(v) => update.set("version_id", s(v)),
        None => update.remove("version_id"),
    }
}

/// What `Change::apply` writes, as DynamoDB attributes.
fn write_change(update: &mut Update, change: Change) {
    let hex = |d: Sha256| s(d.to_hex());
    match change {
        Change::Claim {
            lease_until,
            token,
            sized,
            expected_sha256,
        } => {
            update.set("lease_until", n(lease_until));
            update.set("lease_token", s(token.to_string()));
            update.remove("expires_at");
            if let Some(plan) = sized {
                update.set("size", n(plan.size()));
                update.set("part_size", n(plan.part_size()));
                update.set("part_count", n(plan.part_count()));
                update.set("open_size", AttributeValue::Bool(false));
                update.set("plan_measured", AttributeValue::Bool(true));
            }
            update.set_some("expected_sha256", expected_sha256.map(hex));
        }
        Change::Reopen {
            expires_at,
            unmeasure,
        } => {
            update.set("expires_at", n(expires_at));
            if unmeasure {
                for attr in ["size", "part_size", "part_count"] {
                    update.set(attr, n(0));
                }
                update.set("open_size", AttributeValue::Bool(true));
                update.set("plan_measured", AttributeValue::Bool(false));
            }
        }
        Change::Declare { expected_sha256 } => update.set("expected_sha256", hex(expected_sha256)),
        Change::HandOver {
            saved:
                Some(Saved {
                    etag,
                    version_id,
                    progress,
                }),
        } => {
            update.set("etag", s(etag));
            set_version(update, version_id);
            update.set("verified_bytes", n(progress.hashed));
            update.set("hash_state", s(B64.encode(progress.state)));
        }
        Change::Verified {
            sha256,
            etag,
            version_id,
            verified_at,
            bytes,
        } => {
            update.set("sha256", hex(sha256));
            update.set("etag", s(etag));
            set_version(update, version_id);
            update.set("verified_at", s(verified_at));
            update.set("verified_bytes", n(bytes));
        }
        Change::Failing {
            sha256,
            etag,
            version_id,
            error,
        } => {
            update.set_some("sha256", sha256.map(hex));
            if let Some(etag) = etag {
                update.set("etag", s(etag));
                set_version(update, version_id);
            }
            update.set("error", s(error));
        }
        Change::Release | Change::HandOver { saved: None } | Change::Failed | Change::Aborted => {}
    }
}
