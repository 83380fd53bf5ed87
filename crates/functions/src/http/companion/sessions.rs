//! Uppy's multipart session: created, aborted.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::uppy::{MetaValue, uppy_part_size, uppy_upload};
use super::{App, KeyQuery, query, session};
use crate::http::caller::Caller;
use crate::http::json::JsonBody;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::{ApiError, Problem};
use crate::http::wire;
use vu_core::domain::ObjectKey;

#[derive(Deserialize, ToSchema)]
#[schema(as = CompanionCreateRequest)]
pub struct CreateBody {
    #[schema(min_length = 1, max_length = 255)]
    filename: String,
    /// The file's MIME type.
    #[serde(rename = "type")]
    #[schema(max_length = 255)]
    content_type: Option<String>,
    /// Uppy's metadata: `size` (bytes) sizes the session, `sha256` (hex) is the digest to match,
    /// `name` and `type` are ignored, the rest is kept (keys matched whatever their case).
    #[serde(default)]
    metadata: BTreeMap<String, MetaValue>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CompanionCreated)]
pub struct Created {
    #[schema(value_type = String)]
    key: ObjectKey,
    upload_id: wire::UploadId,
    bucket: String,
}

/// `{}`: Companion's answer to an abort.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// Uppy: creates a multipart session
///
/// With the file's `size` in the metadata, a sized session whose part URLs sign each part's
/// exact length (cut as Uppy cuts it). Without it, `400` `/problems/size-required`, nothing
/// created. Only with `ALLOW_UNSIZED_SESSIONS=true`, a session that reserves
/// `UNSIZED_SESSION_MAX_BYTES`, is signed part numbers up to that divided by 5 MiB (rounded up)
/// and is measured from S3's parts at completion.
#[utoipa::path(post, path = "/s3/multipart", tag = "companion", operation_id = "companionCreate",
    request_body(content = CreateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The session", body = Created),
        (status = 400, description = "Malformed body or invalid field; no `size` metadata while `ALLOW_UNSIZED_SESSIONS` is off (`/problems/size-required`)"),
        (status = 413, description = "The declared size over `MAX_OBJECT_BYTES`, or a body over 64 KiB"),
        (status = 415, description = "A body without `Content-Type: application/json`, or a `type` outside `ALLOWED_CONTENT_TYPES`"),
        (status = 429, description = "The caller's open uploads would pass its limits"),
    ))]
pub async fn create(
    State(app): App,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Created>, ApiError> {
    let meta = body.metadata.into_iter().map(|(k, MetaValue(v))| (k, v));
    let (req, size) = uppy_upload(&body.filename, body.content_type.as_deref(), meta)?;
    let record = match size {
        Some(size) => {
            app.create_planned(caller.id(), req, size, uppy_part_size(size))
                .await?
        }
        None => app.create_unsized(caller.id(), req).await?,
    };
    tracing::Span::current().record("upload_id", tracing::field::display(record.upload_id));
    Ok(Json(Created {
        key: record.key,
        upload_id: wire::UploadId(record.upload_id),
        bucket: record.bucket,
    }))
}

/// Uppy: aborts the upload
#[utoipa::path(delete, path = "/s3/multipart/{upload_id}", tag = "companion",
    operation_id = "companionAbort",
    params(UploadIdParam, KeyQuery),
    responses(
        (status = 200, description = "Aborted", body = Empty),
        (status = 400, description = "Invalid id or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn abort(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    q: Result<Query<KeyQuery>, QueryRejection>,
) -> Result<Json<Empty>, Problem> {
    let q = query(q)?;
    let id = session(&app, &caller, &id, &q.key).await?.upload_id;
    app.abort(caller.id(), id).await?;
    Ok(Json(Empty {}))
}
