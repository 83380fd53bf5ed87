//! Uppy's part URLs, one or a batch at a time, and the parts S3 holds, for its resume.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{App, KeyQuery, query, session};
use crate::http::caller::Caller;
use crate::http::path::{PartParams, PathParams, UploadIdParam};
use crate::http::problem::Problem;
use vu_core::domain::{Invalid, PartNumber};
use vu_core::error::Error;
use vu_core::service::MAX_URLS_PER_CALL;

#[derive(Serialize, ToSchema)]
pub struct SignedUrl {
    url: String,
    /// Seconds the URL stays valid.
    expires: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedBatch {
    /// One URL per part number (as a string key).
    presigned_urls: BTreeMap<String, String>,
}

fn part_number(raw: &str, field: &str) -> Result<PartNumber, Invalid> {
    PartNumber::parse(raw.trim()).map_err(|e| e.at(field))
}

/// Uppy: signs one part
#[utoipa::path(get, path = "/s3/multipart/{upload_id}/{part_number}", tag = "companion",
    operation_id = "companionSignPart",
    params(PartParams, KeyQuery),
    responses(
        (status = 200, description = "The part's URL", body = SignedUrl),
        (status = 400, description = "Invalid id, part number or query; for a session of undeclared size, a part number past `UNSIZED_SESSION_MAX_BYTES` / 5 MiB (rounded up), or any while `ALLOW_UNSIZED_SESSIONS` is off"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "URLs past an unsized session's reservation"),
    ))]
pub async fn sign_part(
    State(app): App,
    caller: Caller,
    PathParams(PartParams {
        upload_id: id,
        part_number: n,
    }): PathParams<PartParams>,
    q: Result<Query<KeyQuery>, QueryRejection>,
) -> Result<Json<SignedUrl>, Problem> {
    let q = query(q)?;
    let record = session(&app, &caller, &id, &q.key).await?;
    let n = part_number(&n, "partNumber").map_err(Error::from)?;
    let mut signed = app.sign_parts_of(&record, &[(n, None)]).await?;
    let url = signed.pop().map(|p| p.url).unwrap_or_default();
    Ok(Json(SignedUrl {
        url,
        expires: app.url_expiry().as_secs(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// The upload's object key.
    key: String,
    /// Comma-separated part numbers, at most 100.
    #[param(pattern = "^[0-9]+(,[0-9]+)*$")]
    part_numbers: String,
}

/// Uppy: signs up to 100 parts
///
/// Older Uppy versions: `partNumbers=1,2,3`.
#[utoipa::path(get, path = "/s3/multipart/{upload_id}/batch", tag = "companion",
    operation_id = "companionSignBatch",
    params(UploadIdParam, BatchQuery),
    responses(
        (status = 200, description = "One URL per part", body = SignedBatch),
        (status = 400, description = "Invalid id, part numbers or query; for a session of undeclared size, a part number past `UNSIZED_SESSION_MAX_BYTES` / 5 MiB (rounded up), or any while `ALLOW_UNSIZED_SESSIONS` is off"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "URLs past an unsized session's reservation"),
    ))]
pub async fn sign_batch(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    q: Result<Query<BatchQuery>, QueryRejection>,
) -> Result<Json<SignedBatch>, Problem> {
    let q = query(q)?;
    let record = session(&app, &caller, &id, &q.key).await?;
    let mut parts = Vec::new();
    for raw in q.part_numbers.split(',') {
        let n = part_number(raw, "partNumbers").map_err(Error::from)?;
        if !parts.iter().any(|(p, _)| *p == n) {
            parts.push((n, None));
        }
    }
    if parts.len() > MAX_URLS_PER_CALL {
        return Err(Error::from(Invalid::new(
            "partNumbers",
            format!("at most {MAX_URLS_PER_CALL} part numbers per call"),
        ))
        .into());
    }
    let signed = app.sign_parts_of(&record, &parts).await?;
    let urls: BTreeMap<String, String> = signed
        .into_iter()
        .map(|p| (p.part_number.to_string(), p.url))
        .collect();
    Ok(Json(SignedBatch {
        presigned_urls: urls,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CompanionPart {
    part_number: PartNumber,
    size: u64,
    #[serde(rename = "ETag")]
    etag: String,
}

/// Uppy: lists the parts S3 holds
///
/// For Uppy's resume.
#[utoipa::path(get, path = "/s3/multipart/{upload_id}", tag = "companion",
    operation_id = "companionListParts",
    params(UploadIdParam, KeyQuery),
    responses(
        (status = 200, description = "The parts S3 holds", body = Vec<CompanionPart>),
        (status = 400, description = "Invalid id or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn list_parts(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    q: Result<Query<KeyQuery>, QueryRejection>,
) -> Result<Json<Vec<CompanionPart>>, Problem> {
    let q = query(q)?;
    let record = session(&app, &caller, &id, &q.key).await?;
    let parts = app.list_parts_of(&record).await?;
    Ok(Json(
        parts
            .into_iter()
            .map(|p| CompanionPart {
                part_number: p.part_number,
                size: p.size,
                etag: p.etag,
            })
            .collect(),
    ))
}
