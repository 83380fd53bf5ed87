//! The JSON shapes of records, as clients see them: the stored record stays free of serde.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{
    ContentType, Filename, Metadata, ObjectKey, Sha256, Status, UploadId, UploadRecord, rfc3339,
};

/// `GET /uploads/{id}`, list entries, `complete`'s answer and a failed verification's `upload`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Record)]
pub struct RecordView<'a> {
    #[schema(value_type = super::openapi::UploadIdDoc)]
    upload_id: UploadId,
    owner: &'a str,
    #[schema(value_type = super::openapi::StatusDoc)]
    status: Status,
    bucket: &'a str,
    #[schema(value_type = String)]
    key: &'a ObjectKey,
    #[schema(value_type = String)]
    filename: &'a Filename,
    #[schema(value_type = String)]
    content_type: &'a ContentType,
    /// `multipart` or `post` (a browser form POST).
    #[schema(value_type = String)]
    kind: &'static str,
    /// The client declared no size (Uppy): `size`, `part_size` and `part_count` are 0 until
    /// completion measures them.
    open_size: bool,
    size: u64,
    part_size: u64,
    part_count: u64,
    part_checksums: bool,
    #[schema(value_type = Option<super::openapi::Sha256Doc>)]
    expected_sha256: Option<Sha256>,
    #[schema(value_type = Option<super::openapi::Sha256Doc>)]
    sha256: Option<Sha256>,
    etag: Option<&'a str>,
    /// The S3 version the verification pinned: the exact bytes a `verified` record names.
    version_id: Option<&'a str>,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    metadata: &'a Metadata,
    created_at: &'a str,
    updated_at: &'a str,
    verified_at: Option<&'a str>,
    error: Option<&'a str>,
    expires_at: Option<String>,
    verified_bytes: u64,
}

impl<'a> From<&'a UploadRecord> for RecordView<'a> {
    fn from(r: &'a UploadRecord) -> Self {
        let (size, part_size, part_count) = r
            .plan
            .map_or((0, 0, 0), |p| (p.size(), p.part_size(), p.part_count()));
        Self {
            upload_id: r.upload_id,
            owner: &r.owner,
            status: r.status,
            bucket: &r.bucket,
            key: &r.key,
            filename: &r.filename,
            content_type: &r.content_type,
            kind: r.kind.as_str(),
            open_size: r.plan.is_none(),
            size,
            part_size,
            part_count,
            part_checksums: r.kind.part_checksums(),
            expected_sha256: r.expected_sha256,
            sha256: r.sha256,
            etag: r.etag.as_deref(),
            version_id: r.version_id.as_deref(),
            metadata: &r.metadata,
            created_at: &r.created_at,
            updated_at: &r.updated_at,
            verified_at: r.verified_at.as_deref(),
            error: r.error.as_deref(),
            expires_at: r.expires_at.map(rfc3339),
            verified_bytes: r.verified_bytes,
        }
    }
}

/// A record as JSON, for bodies built with `json!`.
pub fn record_json(r: &UploadRecord) -> serde_json::Value {
    serde_json::to_value(RecordView::from(r)).unwrap_or_default()
}
