//! The download of exactly the verified version.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::{App, upload_id};
use crate::http::caller::Caller;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::ApiError;
use vu_core::domain::{ContentType, Filename, Sha256};

#[derive(Serialize, ToSchema)]
pub struct DownloadResponse {
    /// A pre-signed GET of exactly the verified version.
    url: String,
    expires_at: String,
    version_id: Option<String>,
    sha256: Sha256,
    size: u64,
    #[schema(value_type = String)]
    content_type: ContentType,
    #[schema(value_type = String)]
    filename: Filename,
}

/// Downloads the verified version
///
/// A pre-signed GET of exactly the version that was verified.
#[utoipa::path(get, path = "/uploads/{upload_id}/object", tag = "uploads", operation_id = "downloadUpload",
    params(UploadIdParam),
    responses(
        (status = 200, description = "A download of the verified version", body = DownloadResponse),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload is not `verified`"),
    ))]
pub async fn download(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
) -> Result<Response, ApiError> {
    let d = app.download(caller.id(), upload_id(&id)?).await?;
    Ok(Json(DownloadResponse {
        url: d.url,
        expires_at: d.expires_at,
        version_id: d.version_id,
        sha256: d.sha256,
        size: d.size,
        content_type: d.content_type,
        filename: d.filename,
    })
    .into_response())
}
