//! The `SessionStore` on DynamoDB: one item per session (`vu_core::domain::to_item`), every
//! transition one conditional `UpdateItem` translated from the change's writes and the guard's
//! condition, which the in-memory store evaluates as they are.

pub mod capacity;
mod index;
mod item;
mod owners;
pub mod quota;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use item::{malformed, record, s, to_item};

use vu_core::domain::{ANNOUNCE, Change, Guard, Status, UploadId, UploadRecord};
use vu_core::ports::{
    OwnerLimit, OwnerLimits, Page, PageKey, PortError, Reservation, SessionStore, Upstream,
};

/// The GSI that lists an owner's uploads by creation time (template.yaml, scripts/create_table.py):
/// keys only, so only a session's creation writes to its owner's partition (`owners.rs`).
pub const OWNER_INDEX: &str = owners::OWNER_INDEX;

/// The sparse GSI of sessions in flight (`completing`/`verifying`) and unannounced verdicts by
/// lease end, its keys sharded (`index.rs`): only those items carry `in_flight`, so the sweep
/// reads what it works on and nothing else.
pub const IN_FLIGHT_INDEX: &str = "in_flight-lease_until";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoSessions {
    client: Client,
    table: String,
    /// Owners seen without the single quota item of before (`quota/legacy.rs`).
    legacy_gone: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl DynamoSessions {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            // With DYNAMODB_CONSUMED_CAPACITY=1, a client that accounts each call's capacity.
            client: capacity::client(sdk),
            table: table.into(),
            legacy_gone: std::sync::Mutex::default(),
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
        self.owner_page(owner, status, limit, after).await
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
        let update = item::update(
            &change.writes(guard.status, id, now),
            &change.condition(&guard),
        );
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
        self.stalled_sessions(now, limit).await
    }

    async fn abandoned(
        &self,
        expiring_before: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, PortError> {
        self.abandoned_sessions(expiring_before, limit).await
    }

    async fn watch_key(&self, id: UploadId, until: i64) -> Result<(), PortError> {
        self.put_watch(id, until).await
    }

    async fn watched_keys(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.due_watches(now, limit).await
    }

    async fn unwatch_key(&self, id: UploadId) -> Result<(), PortError> {
        self.delete_watch(id).await
    }

    async fn unannounced(&self, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.unannounced_sessions(limit).await
    }

    async fn announced(&self, id: UploadId) -> Result<(), PortError> {
        let cleared = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .update_expression("REMOVE #in_flight")
            // Sharded (`announce#<k>`) or written before sharding (`announce`).
            .condition_expression("begins_with(#in_flight, :announce)")
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

    async fn unreserve(
        &self,
        owner: &str,
        id: UploadId,
        limits: OwnerLimits,
    ) -> Result<(), PortError> {
        self.unreserve_quota(owner, id, limits).await
    }

    async fn extend(
        &self,
        owner: &str,
        id: UploadId,
        expires_at: i64,
        limits: OwnerLimits,
    ) -> Result<bool, PortError> {
        self.extend_quota(owner, id, expires_at, limits).await
    }
}
