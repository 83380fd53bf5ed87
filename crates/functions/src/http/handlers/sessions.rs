//! An upload's session: created, listed, read, aborted.

use crate::http::budget::RequestBudget;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{App, record, upload_id};
use crate::http::caller::Caller;
use crate::http::json::JsonBody;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::{ApiError, Problem, Slug};
use crate::http::wire;
use vu_contract::Record;
use vu_core::domain::{
    ContentType, Filename, Invalid, Metadata, ObjectKey, Sha256, Status, UploadId,
};
use vu_core::error::Error;
use vu_core::ports::PageKey;
use vu_core::service::{NewUpload, Uploads};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// 1–255 bytes of UTF-8, no control or format characters; only the last path component is
    /// kept.
    #[schema(min_length = 1, max_length = 255)]
    filename: String,
    /// The object's size in bytes (at most `MAX_OBJECT_BYTES`, else 413).
    size: u64,
    /// A MIME type; `application/octet-stream` when left out. Outside `ALLOWED_CONTENT_TYPES`
    /// (when set): 415.
    #[schema(
        max_length = 255,
        pattern = "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+"
    )]
    content_type: Option<String>,
    /// Hex SHA-256 of the whole file, checked at completion.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: Option<String>,
    /// Bytes per part (the last is shorter); grown in whole MiB so no upload needs more than
    /// 10,000 parts.
    #[schema(minimum = 5_242_880, maximum = 5_368_709_120_u64)]
    part_size: Option<u64>,
    /// Kept on the record and as S3 `x-amz-meta-*`: at most 32 entries, keys `[a-z0-9-_]`,
    /// printable-ASCII values, 2 KiB in all.
    metadata: Option<BTreeMap<String, String>>,
    /// Sign each part's SHA-256 into its URL (then `create` returns no URLs).
    part_checksums: Option<bool>,
}

impl CreateRequest {
    fn parse(self) -> Result<NewUpload, Invalid> {
        Ok(NewUpload {
            filename: Filename::parse(&self.filename)?,
            size: self.size,
            content_type: self
                .content_type
                .as_deref()
                .map(ContentType::parse)
                .transpose()?
                .unwrap_or_default(),
            sha256: self.sha256.as_deref().map(Sha256::parse_hex).transpose()?,
            part_size: self.part_size,
            metadata: Metadata::parse(self.metadata.unwrap_or_default())?,
            part_checksums: self.part_checksums.unwrap_or(false),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreateResponse {
    upload_id: wire::UploadId,
    bucket: String,
    #[schema(value_type = String)]
    key: ObjectKey,
    status: Status,
    part_size: u64,
    part_count: u64,
    part_checksums: bool,
    expires_at: Option<String>,
    /// URLs for the first 100 parts (none with `part_checksums`).
    parts: Vec<wire::SignedPart>,
}

/// Creates an upload
///
/// Creates the multipart upload and its session, with the first 100 parts' URLs.
#[utoipa::path(post, path = "/uploads", tag = "uploads", operation_id = "createUpload",
    request_body(content = CreateRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, with the first parts' URLs", body = CreateResponse),
        (status = 400, description = "Malformed body or invalid field"),
        (status = 413, description = "`size` over `MAX_OBJECT_BYTES`, or a body over 64 KiB"),
        (status = 415, description = "A body without `Content-Type: application/json`, or a `content_type` outside `ALLOWED_CONTENT_TYPES`"),
        (status = 429, description = "The caller's open uploads would pass its limits"),
    ))]
pub async fn create(
    State(app): App,
    caller: Caller,
    JsonBody(req): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let created = app.create(caller.id(), req.parse()?).await?;
    let r = created.record;
    tracing::Span::current().record("upload_id", tracing::field::display(r.upload_id));
    let (part_size, part_count) = r.plan.map_or((0, 0), |p| (p.part_size(), p.part_count()));
    let (status, expires_at) = (r.status(), r.expires_at());
    let body = CreateResponse {
        upload_id: wire::UploadId(r.upload_id),
        bucket: r.bucket,
        key: r.key,
        status,
        part_size,
        part_count,
        part_checksums: r.kind.part_checksums(),
        expires_at: expires_at.map(vu_core::domain::rfc3339),
        parts: created
            .parts
            .into_iter()
            .map(wire::SignedPart::from)
            .collect(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only uploads in this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Uploads per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1024)]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListResponse {
    uploads: Vec<Record>,
    /// Present when there are more: pass it as `cursor`.
    next_cursor: Option<String>,
}

/// The opaque cursor: the page key as base64url JSON. The owner is never in it: it is the
/// caller's, so a cursor cannot reach another owner's uploads.
fn encode_cursor(k: &PageKey) -> String {
    let json = serde_json::json!({ "id": k.upload_id.to_string(), "at": k.created_at });
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode_cursor(s: &str) -> Result<PageKey, Invalid> {
    let bad = || Invalid::new("cursor", "not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let id = v["id"].as_str().ok_or_else(bad)?;
    let at = v["at"].as_str().filter(|a| a.len() <= 40).ok_or_else(bad)?;
    Ok(PageKey {
        upload_id: UploadId::parse(id).map_err(|_| bad())?,
        created_at: at.to_owned(),
    })
}

/// Lists the caller's uploads
///
/// Newest first, a page at a time.
#[utoipa::path(get, path = "/uploads", tag = "uploads", operation_id = "listUploads",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's uploads", body = ListResponse),
        (status = 400, description = "Invalid query string or parameter"),
    ))]
pub async fn list_uploads(
    State(app): App,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            Slug::InvalidQuery,
            "Invalid query string",
            e.body_text(),
        )
    })?;
    Ok(list_page(&app, &caller, q).await?)
}

async fn list_page(app: &Uploads, caller: &Caller, q: ListQuery) -> Result<Response, Error> {
    let status = q
        .status
        .as_deref()
        .map(|s| Status::parse(s).ok_or_else(|| Invalid::new("status", "not an upload status")))
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => 20,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| Invalid::new("limit", "must be a whole number from 1 to 100"))?,
    };
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = app.list(caller.id(), status, limit, after).await?;
    Ok(Json(ListResponse {
        uploads: page.records.iter().map(Record::from).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    })
    .into_response())
}

/// Reads an upload's record
///
/// A form POST whose object arrived is verified by this read.
#[utoipa::path(get, path = "/uploads/{upload_id}", tag = "uploads", operation_id = "getUpload",
    params(UploadIdParam),
    responses(
        (status = 200, description = "The record", body = Record),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "A form POST whose arrived object this read began to verify was refused by S3 or taken over; read again"),
    ))]
pub async fn get_upload(
    State(app): App,
    caller: Caller,
    RequestBudget(budget): RequestBudget,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
) -> Result<Response, ApiError> {
    let r = app
        .get_settled(caller.id(), upload_id(&id)?, budget)
        .await?;
    Ok(record(&r).into_response())
}

/// Aborts an upload
#[utoipa::path(delete, path = "/uploads/{upload_id}", tag = "uploads", operation_id = "abortUpload",
    params(UploadIdParam),
    responses(
        (status = 204, description = "Aborted"),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn abort(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
) -> Result<StatusCode, ApiError> {
    app.abort(caller.id(), upload_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
