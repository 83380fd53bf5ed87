//! The session record as a DynamoDB item, both ways. The item keeps one flat shape for every
//! kind of session (an unsized one stores zeros and `open_size`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::Item;
use vu_core::domain::{
    ContentType, Filename, Kind, LeaseToken, Metadata, ObjectKey, PartPlan, Sha256, Status,
    UploadId, UploadRecord,
};
use vu_core::ports::{PortError, Upstream};

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn to_item(r: &UploadRecord) -> Item {
    // The item keeps one flat shape for every kind: an unsized session stores zeros.
    let (s3_upload_id, part_checksums) = match &r.kind {
        Kind::Multipart {
            s3_upload_id,
            part_checksums,
        } => (s3_upload_id.as_str(), *part_checksums),
        Kind::Post => ("", false),
    };
    let (size, part_size, part_count) = r
        .plan
        .map_or((0, 0, 0), |p| (p.size(), p.part_size(), p.part_count()));
    let mut item = Item::from([
        ("upload_id".into(), s(r.upload_id.to_string())),
        ("owner".into(), s(&r.owner)),
        ("status".into(), s(r.status.as_str())),
        ("bucket".into(), s(&r.bucket)),
        ("key".into(), s(r.key.as_str())),
        ("filename".into(), s(r.filename.as_str())),
        ("content_type".into(), s(r.content_type.as_str())),
        ("kind".into(), s(r.kind.as_str())),
        ("open_size".into(), AttributeValue::Bool(r.plan.is_none())),
        (
            "plan_measured".into(),
            AttributeValue::Bool(r.plan_measured),
        ),
        ("size".into(), n(size)),
        ("part_size".into(), n(part_size)),
        ("part_count".into(), n(part_count)),
        (
            "part_checksums".into(),
            AttributeValue::Bool(part_checksums),
        ),
        ("s3_upload_id".into(), s(s3_upload_id)),
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
        ("version_id", r.version_id.as_deref().map(s)),
        ("verified_at", r.verified_at.as_deref().map(s)),
        ("error", r.error.as_deref().map(s)),
        ("expires_at", r.expires_at.map(n)),
        ("lease_token", r.lease_token.map(|t| s(t.to_string()))),
        ("in_flight", r.unannounced.then(|| s(super::ANNOUNCE))),
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
pub(super) fn malformed(what: &str) -> PortError {
    PortError::unavailable(
        Upstream::DynamoDB,
        format!("malformed session item: {what}"),
    )
}

/// Reads an item's attributes; anything missing or of the wrong type is `malformed`.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn text(&self, k: &str) -> Option<&str> {
        self.0
            .get(k)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    fn req(&self, k: &str) -> Result<&str, PortError> {
        self.text(k).ok_or_else(|| malformed(k))
    }

    fn num(&self, k: &str) -> Result<Option<i64>, PortError> {
        self.0
            .get(k)
            .and_then(|v| v.as_n().ok())
            .map(|v| v.parse::<i64>().map_err(|_| malformed(k)))
            .transpose()
    }

    fn unsigned(&self, k: &str) -> Result<u64, PortError> {
        self.num(k)?
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| malformed(k))
    }

    fn flag(&self, k: &str) -> Result<bool, PortError> {
        self.0
            .get(k)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .ok_or_else(|| malformed(k))
    }

    fn digest(&self, k: &str) -> Result<Option<Sha256>, PortError> {
        self.text(k)
            .map(|h| Sha256::parse_hex(h).map_err(|_| malformed(k)))
            .transpose()
    }

    fn owned(&self, k: &str) -> Option<String> {
        self.text(k).map(str::to_owned)
    }

    fn metadata(&self) -> Result<Metadata, PortError> {
        let map: BTreeMap<String, String> = self
            .0
            .get("metadata")
            .and_then(|v| v.as_m().ok())
            .ok_or_else(|| malformed("metadata"))?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_s().map_err(|_| malformed("metadata"))?.clone(),
                ))
            })
            .collect::<Result<_, PortError>>()?;
        Metadata::parse(map).map_err(|_| malformed("metadata"))
    }

    fn kind(&self) -> Result<Kind, PortError> {
        match self.req("kind")? {
            "multipart" => Ok(Kind::Multipart {
                s3_upload_id: self.req("s3_upload_id")?.to_owned(),
                part_checksums: self.flag("part_checksums")?,
            }),
            "post" => Ok(Kind::Post),
            _ => Err(malformed("kind")),
        }
    }

    fn plan(&self) -> Result<Option<PartPlan>, PortError> {
        if self.flag("open_size")? {
            return Ok(None);
        }
        PartPlan::stored(self.unsigned("size")?, self.unsigned("part_size")?)
            .map(Some)
            .map_err(|_| malformed("size"))
    }
}

pub(super) fn from_item(item: &Item) -> Result<UploadRecord, PortError> {
    let r = Reader(item);
    Ok(UploadRecord {
        upload_id: UploadId::parse(r.req("upload_id")?).map_err(|_| malformed("upload_id"))?,
        owner: r.req("owner")?.to_owned(),
        status: Status::parse(r.req("status")?).ok_or_else(|| malformed("status"))?,
        bucket: r.req("bucket")?.to_owned(),
        key: ObjectKey::parse(r.req("key")?).map_err(|_| malformed("key"))?,
        filename: Filename::parse(r.req("filename")?).map_err(|_| malformed("filename"))?,
        content_type: ContentType::parse(r.req("content_type")?)
            .map_err(|_| malformed("content_type"))?,
        kind: r.kind()?,
        plan: r.plan()?,
        // Written since measured plans are forgotten on reopening; earlier items kept theirs.
        plan_measured: r.flag("plan_measured").unwrap_or(false),
        expected_sha256: r.digest("expected_sha256")?,
        sha256: r.digest("sha256")?,
        etag: r.owned("etag"),
        version_id: r.owned("version_id"),
        metadata: r.metadata()?,
        created_at: r.req("created_at")?.to_owned(),
        updated_at: r.req("updated_at")?.to_owned(),
        verified_at: r.owned("verified_at"),
        error: r.owned("error"),
        expires_at: r.num("expires_at")?,
        lease_until: r
            .num("lease_until")?
            .ok_or_else(|| malformed("lease_until"))?,
        lease_token: r
            .text("lease_token")
            .map(|t| LeaseToken::parse(t).map_err(|_| malformed("lease_token")))
            .transpose()?,
        verified_bytes: r.unsigned("verified_bytes")?,
        hash_state: r
            .text("hash_state")
            .map(|b| B64.decode(b).map_err(|_| malformed("hash_state")))
            .transpose()?,
        unannounced: r.text("in_flight") == Some(super::ANNOUNCE),
    })
}
