//! Uppy's completion: as `POST /uploads/{id}/complete`, in Companion's shapes.

use crate::http::budget::RequestBudget;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, KeyQuery, query, session};
use crate::http::caller::Caller;
use crate::http::handlers::completion::{claimed_parts, completion};
use crate::http::json::JsonBody;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::Problem;
use crate::http::wire;
use vu_core::domain::{ObjectKey, PartNumber, Sha256, Status, UploadRecord};
use vu_core::error::Error;

#[derive(Deserialize, ToSchema)]
#[schema(as = CompanionCompleteRequest)]
pub struct CompleteBody {
    #[serde(default)]
    parts: Option<Vec<CompletePart>>,
    /// As `POST /uploads/{id}/complete`'s `part_states`, for an Uppy whose
    /// `completeMultipartUpload` sends them (stock Uppy does not: one sequential stream).
    #[serde(default)]
    #[schema(value_type = Option<vu_contract::PartStates>)]
    part_states: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CompanionCompletePart)]
pub struct CompletePart {
    #[serde(rename = "PartNumber")]
    #[schema(value_type = PartNumber)]
    part_number: u64,
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CompanionCompleted)]
pub struct Completed {
    location: String,
    #[schema(value_type = String)]
    key: ObjectKey,
    bucket: String,
    upload_id: wire::UploadId,
    status: Status,
    sha256: Option<Sha256>,
}

fn location(r: &UploadRecord) -> String {
    format!("s3://{}/{}", r.bucket, r.key)
}

/// Uppy: completes and verifies the upload
///
/// As `POST /uploads/{id}/complete`; a digest mismatch answers 422, so Uppy reports the file
/// failed.
#[utoipa::path(post, path = "/s3/multipart/{upload_id}/complete", tag = "companion",
    operation_id = "companionComplete",
    params(UploadIdParam, KeyQuery),
    request_body(content = Option<CompleteBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Completed and verified", body = Completed),
        (status = 202, description = "Still running: `verifying` (too large to verify inline), or `completing` under another call", body = Completed),
        (status = 400, description = "Malformed body, invalid field or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "Parts missing, uneven or with a gap, or the state does not allow it"),
        (status = 413, description = "A body over 2 MiB, or an unsized session holding more than it reserved"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
        (status = 422, description = "The SHA-256 did not match (`upload` holds the failed record)"),
    ))]
pub async fn complete(
    State(app): App,
    caller: Caller,
    RequestBudget(budget): RequestBudget,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    q: Result<Query<KeyQuery>, QueryRejection>,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Result<(StatusCode, Json<Completed>), Problem> {
    let q = query(q)?;
    let id = session(&app, &caller, &id, &q.key).await?.upload_id;
    let claimed = body
        .parts
        .map(|parts| claimed_parts(parts.into_iter().map(|p| (p.part_number, p.etag))))
        .transpose()
        .map_err(Error::from)?;
    let states = body
        .part_states
        .as_ref()
        .map(vu_contract::PartStates::parse)
        .transpose()
        .map_err(Error::from)?
        .unwrap_or_default();
    let r = completion(&app, caller.id(), id, claimed, None, states, budget).await?;
    let status = if matches!(r.status(), Status::Verifying | Status::Completing) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let (record_status, sha256) = (r.status(), r.sha256());
    Ok((
        status,
        Json(Completed {
            location: location(&r),
            key: r.key,
            bucket: r.bucket,
            upload_id: wire::UploadId(r.upload_id),
            status: record_status,
            sha256,
        }),
    ))
}
