//! The stored record as the contract's `Record`: what clients, events and webhooks see.

use vu_contract::Record;

use crate::domain::{Kind, UploadRecord, rfc3339};

impl From<&UploadRecord> for Record {
    fn from(r: &UploadRecord) -> Self {
        let (size, part_size, part_count) = r
            .plan
            .map_or((0, 0, 0), |p| (p.size(), p.part_size(), p.part_count()));
        Self {
            upload_id: r.upload_id.to_string(),
            owner: r.owner.clone(),
            status: r.status(),
            bucket: r.bucket.clone(),
            key: r.key.as_str().to_owned(),
            filename: r.filename.as_str().to_owned(),
            content_type: r.content_type.as_str().to_owned(),
            kind: match r.kind {
                Kind::Multipart { .. } => vu_contract::Kind::Multipart,
                Kind::Post => vu_contract::Kind::Post,
            },
            open_size: r.plan.is_none(),
            size,
            part_size,
            part_count,
            part_checksums: r.kind.part_checksums(),
            expected_sha256: r.expected_sha256,
            sha256: r.sha256(),
            etag: r.etag().map(str::to_owned),
            version_id: r.version_id().map(str::to_owned),
            metadata: r.metadata.as_map().clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            verified_at: r.verified_at().map(str::to_owned),
            error: r.error().map(str::to_owned),
            expires_at: r.expires_at().map(rfc3339),
            verified_bytes: r.verified_bytes(),
            last_error: r.fault().map(|f| f.cause.clone()),
            attempts: r.fault().map_or(0, |f| f.attempts),
            segments: r.chained.segments,
            mismatch_part: r.chained.mismatch_part,
        }
    }
}

/// A record as JSON, for bodies built with `json!`.
pub fn record_json(r: &UploadRecord) -> serde_json::Value {
    serde_json::to_value(Record::from(r)).unwrap_or_default()
}
