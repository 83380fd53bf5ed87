use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::domain::{
    ContentType, Filename, Kind, Metadata, Sha256, Status, UploadId, UploadRecord,
};
use crate::ports::{Change, Guard, Page, PageKey, PortError, SessionStore};

/// The GSI that lists an owner's uploads by creation time (template.yaml, scripts/bootstrap.py).
pub const OWNER_INDEX: &str = "owner-created_at";

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
    PortError::Unavailable {
        service: "DynamoDB",
        source: Box::new(e),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn to_item(r: &UploadRecord) -> Item {
    let mut item = Item::from([
        ("upload_id".into(), s(r.upload_id.to_string())),
        ("owner".into(), s(&r.owner)),
        ("status".into(), s(r.status.as_str())),
        ("bucket".into(), s(&r.bucket)),
        ("key".into(), s(&r.key)),
        ("filename".into(), s(r.filename.as_str())),
        ("content_type".into(), s(r.content_type.as_str())),
        ("kind".into(), s(r.kind.as_str())),
        ("open_size".into(), AttributeValue::Bool(r.open_size)),
        ("size".into(), n(r.size)),
        ("part_size".into(), n(r.part_size)),
        ("part_count".into(), n(r.part_count)),
        (
            "part_checksums".into(),
            AttributeValue::Bool(r.part_checksums),
        ),
        ("s3_upload_id".into(), s(&r.s3_upload_id)),
        ("created_at".into(), s(&r.created_at)),
        ("updated_at".into(), s(&r.updated_at)),
        ("lease_until".into(), n(r.lease_until)),
        ("verified_bytes".into(), n(r.verified_bytes)),
        (
            "metadata".into(),
            AttributeValue::M(
                r.metadata
                    .as_map()
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect(),
            ),
        ),
    ]);
    let optional = [
        ("expected_sha256", r.expected_sha256.map(|d| s(d.to_hex()))),
        ("sha256", r.sha256.map(|d| s(d.to_hex()))),
        ("etag", r.etag.as_deref().map(s)),
        ("verified_at", r.verified_at.as_deref().map(s)),
        ("error", r.error.as_deref().map(s)),
        ("expires_at", r.expires_at.map(n)),
        (
            "hash_state",
            r.hash_state.as_deref().map(|b| s(B64.encode(b))),
        ),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?))),
    );
    item
}

/// An item this service did not write (or a corrupted one) is an upstream fault, not a client's.
fn malformed(what: &str) -> PortError {
    PortError::Unavailable {
        service: "DynamoDB",
        source: format!("malformed session item: {what}").into(),
    }
}

fn from_item(item: &Item) -> Result<UploadRecord, PortError> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
    let req = |k: &str| text(k).ok_or_else(|| malformed(k));
    let num = |k: &str| -> Result<Option<i64>, PortError> {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .map(|v| v.parse::<i64>().map_err(|_| malformed(k)))
            .transpose()
    };
    let unsigned = |k: &str| -> Result<u64, PortError> {
        num(k)?
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| malformed(k))
    };
    let digest = |k: &str| -> Result<Option<Sha256>, PortError> {
        text(k)
            .map(|h| Sha256::parse_hex(k, h).map_err(|_| malformed(k)))
            .transpose()
    };
    let metadata: BTreeMap<String, String> = item
        .get("metadata")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                .collect()
        })
        .unwrap_or_default();
    Ok(UploadRecord {
        upload_id: UploadId::parse(req("upload_id")?).map_err(|_| malformed("upload_id"))?,
        owner: req("owner")?.to_owned(),
        status: Status::parse(req("status")?).ok_or_else(|| malformed("status"))?,
        bucket: req("bucket")?.to_owned(),
        key: req("key")?.to_owned(),
        filename: Filename::parse(req("filename")?).map_err(|_| malformed("filename"))?,
        content_type: ContentType::parse(req("content_type")?)
            .map_err(|_| malformed("content_type"))?,
        // Items written before sessions had kinds are multipart, sized at creation.
        kind: text("kind")
            .map(|k| Kind::parse(k).ok_or_else(|| malformed("kind")))
            .transpose()?
            .unwrap_or(Kind::Multipart),
        open_size: item
            .get("open_size")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        size: unsigned("size")?,
        part_size: unsigned("part_size")?,
        part_count: unsigned("part_count")?,
        part_checksums: item
            .get("part_checksums")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        s3_upload_id: req("s3_upload_id")?.to_owned(),
        expected_sha256: digest("expected_sha256")?,
        sha256: digest("sha256")?,
        etag: text("etag").map(str::to_owned),
        metadata: Metadata::parse(metadata).map_err(|_| malformed("metadata"))?,
        created_at: req("created_at")?.to_owned(),
        updated_at: req("updated_at")?.to_owned(),
        verified_at: text("verified_at").map(str::to_owned),
        error: text("error").map(str::to_owned),
        expires_at: num("expires_at")?,
        lease_until: num("lease_until")?.unwrap_or(0),
        verified_bytes: num("verified_bytes")?
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0),
        hash_state: text("hash_state")
            .map(|b| B64.decode(b).map_err(|_| malformed("hash_state")))
            .transpose()?,
    })
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
        to: Status,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, PortError> {
        // Every attribute goes through a placeholder: `status`, `size`, `key` and `error` are
        // DynamoDB reserved words.
        let mut sets = vec!["#status = :to", "#updated_at = :now"];
        let mut names = HashMap::from([
            ("#status".to_owned(), "status".to_owned()),
            ("#updated_at".to_owned(), "updated_at".to_owned()),
        ]);
        let mut values = HashMap::from([
            (":to".to_owned(), s(to.as_str())),
            (":now".to_owned(), s(now)),
            (":from".to_owned(), s(guard.status.as_str())),
        ]);
        let optional = [
            ("sha256", change.sha256.map(|d| s(d.to_hex()))),
            (
                "expected_sha256",
                change.expected_sha256.map(|d| s(d.to_hex())),
            ),
            ("etag", change.etag.map(s)),
            ("error", change.error.map(s)),
            ("verified_at", change.verified_at.map(s)),
            ("lease_until", change.lease_until.map(n)),
            (
                "verified_bytes",
                change.progress.as_ref().map(|(b, _)| n(b)),
            ),
            (
                "hash_state",
                change
                    .progress
                    .as_ref()
                    .and_then(|(_, st)| st.as_deref())
                    .map(|st| s(B64.encode(st))),
            ),
        ];
        for (attr, value) in optional {
            if let Some(v) = value {
                sets.push(match attr {
                    "sha256" => "#sha256 = :sha256",
                    "expected_sha256" => "#expected_sha256 = :expected_sha256",
                    "etag" => "#etag = :etag",
                    "error" => "#error = :error",
                    "verified_at" => "#verified_at = :verified_at",
                    "verified_bytes" => "#verified_bytes = :verified_bytes",
                    "hash_state" => "#hash_state = :hash_state",
                    _ => "#lease_until = :lease_until",
                });
                names.insert(format!("#{attr}"), attr.to_owned());
                values.insert(format!(":{attr}"), v);
            }
        }
        if let Some(plan) = change.sized {
            sets.push("#size = :size, #part_size = :part_size, #part_count = :part_count, #open_size = :open_size");
            for (attr, v) in [
                ("size", n(plan.size())),
                ("part_size", n(plan.part_size())),
                ("part_count", n(plan.part_count())),
                ("open_size", AttributeValue::Bool(false)),
            ] {
                names.insert(format!("#{attr}"), attr.to_owned());
                values.insert(format!(":{attr}"), v);
            }
        }
        let mut update = format!("SET {}", sets.join(", "));
        if change.clear_expiry {
            update.push_str(" REMOVE #expires_at, #hash_state");
            names.insert("#expires_at".into(), "expires_at".into());
            names.insert("#hash_state".into(), "hash_state".into());
        }
        let mut condition = "#status = :from".to_owned();
        if let Some(by) = guard.lease_expired_by {
            condition.push_str(" AND #lease_until < :lease_now");
            names.insert("#lease_until".into(), "lease_until".into());
            values.insert(":lease_now".into(), n(by));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("upload_id", s(id.to_string()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
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
}
