//! Uppy's single-request path: a form POST policy for one object.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::uppy::uppy_upload;
use super::{App, query};
use crate::http::caller::Caller;
use crate::http::problem::Problem;
use vu_core::domain::Invalid;
use vu_core::error::Error;
use vu_core::ports::PostForm;

#[derive(Serialize, ToSchema)]
#[schema(as = CompanionParams)]
pub struct Params {
    #[schema(value_type = String, pattern = "^POST$")]
    method: &'static str,
    url: String,
    fields: BTreeMap<String, String>,
    expires: u64,
}

/// Uppy: a form POST policy for one object
///
/// Uppy's single-request path, limited by `content-length-range` to the service's object limit.
/// Verified when S3 reports the object, or when its record is next read.
#[utoipa::path(get, path = "/s3/params", tag = "companion", operation_id = "companionParams",
    params(
        ("filename" = String, Query, description = "The file's name (1–255 bytes).",
            min_length = 1, max_length = 255),
        ("type" = Option<String>, Query, description = "The file's MIME type.", max_length = 255),
        ("metadata" = Option<BTreeMap<String, String>>, Query,
            description = "`metadata[k]=v`: as for `POST /s3/multipart` (`size`, `sha256`, kept entries).",
            style = DeepObject, explode),
    ),
    responses(
        (status = 200, description = "A form POST policy for one object", body = Params),
        (status = 400, description = "No filename, or an invalid one or invalid metadata"),
        (status = 413, description = "A declared size over what one form may carry"),
        (status = 415, description = "A `type` outside `ALLOWED_CONTENT_TYPES`"),
        (status = 429, description = "The caller's open uploads would pass its limits"),
    ))]
pub async fn params(
    State(app): App,
    caller: Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Params>, Problem> {
    let pairs = query(q)?;
    let mut filename = None;
    let mut content_type = None;
    let mut meta = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "filename" => filename = Some(v),
            "type" => content_type = Some(v),
            _ => {
                if let Some(name) = k
                    .strip_prefix("metadata[")
                    .and_then(|r| r.strip_suffix(']'))
                {
                    meta.push((name.to_owned(), Value::String(v)));
                }
            }
        }
    }
    let filename = filename
        .ok_or_else(|| Error::from(Invalid::new("filename", "the query must name the file")))?;
    let (req, size) = uppy_upload(&filename, content_type.as_deref(), meta).map_err(Error::from)?;
    let (record, PostForm { url, fields }) = app.create_post(caller.id(), req, size).await?;
    tracing::Span::current().record("upload_id", tracing::field::display(record.upload_id));
    Ok(Json(Params {
        method: "POST",
        url,
        fields,
        expires: app.post_form_expiry().as_secs(),
    }))
}
