//! Completion: the multipart upload completed and its object verified.

use crate::http::budget::RequestBudget;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{App, record, upload_id};
use crate::http::caller::Caller;
use crate::http::json::JsonBody;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::ApiError;
use vu_contract::{PartStates, Record};
use vu_core::domain::{ClaimedPart, Invalid, PartNumber, Sha256, Status, UploadId, UploadRecord};
use vu_core::error::Error;
use vu_core::service::{Budget, Uploads};

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Every part exactly once with the ETag S3 holds; left out, S3's `ListParts` gives them.
    parts: Option<Vec<ClaimedPartBody>>,
    /// Hex SHA-256 of the whole object, for clients that hash while uploading.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: Option<String>,
    /// SHA-256 chaining values: part number `n` (`1 ≤ n < part_count`) → the 64-hex state after
    /// the first `n` parts. Any subset; the object is then verified in segments, in parallel,
    /// each link checked (a wrong state never changes the verdict). Needs a part size that is a
    /// multiple of 64 bytes.
    #[schema(value_type = Option<vu_contract::PartStates>)]
    part_states: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimedPartBody {
    #[schema(value_type = PartNumber)]
    part_number: u64,
    etag: String,
}

/// The parts a client lists at completion, as (number, ETag).
pub(crate) fn claimed_parts(
    parts: impl IntoIterator<Item = (u64, String)>,
) -> Result<Vec<ClaimedPart>, Invalid> {
    parts
        .into_iter()
        .map(|(n, etag)| {
            Ok(ClaimedPart {
                part_number: PartNumber::new(n).map_err(|e| e.at("parts"))?,
                etag,
            })
        })
        .collect()
}

/// Completes and verifies an upload
///
/// Completes the multipart upload, streams the object through SHA-256, compares it with the
/// declared digest and records the result; on a mismatch the object is deleted.
#[utoipa::path(post, path = "/uploads/{upload_id}/complete", tag = "uploads", operation_id = "completeUpload",
    params(UploadIdParam),
    request_body(content = Option<CompleteRequest>, content_type = "application/json",
        description = "Optional: an empty body takes the parts from S3"),
    responses(
        (status = 200, description = "Verified (or the result recorded earlier)", body = Record),
        (status = 202, description = "Still running: `verifying` (too large to verify inline), or `completing` under another call that did not finish within `COMPLETION_WAIT_SECONDS`; poll the record", body = Record),
        (status = 400, description = "Malformed body, invalid field (`part_states` not 64-hex states of parts 1 to part_count − 1, or a part size not a multiple of 64), or a digest that disagrees with the one given at creation"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "Parts missing or of the wrong size, or the state does not allow it"),
        (status = 413, description = "A body over 2 MiB, or an unsized session holding more than it reserved"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
        (status = 422, description = "The SHA-256 did not match (`upload` holds the failed record), or a declared digest differs from the recorded one"),
    ))]
pub async fn complete(
    State(app): App,
    caller: Caller,
    RequestBudget(budget): RequestBudget,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let claimed = req
        .parts
        .map(|parts| claimed_parts(parts.into_iter().map(|p| (p.part_number, p.etag))))
        .transpose()?;
    let declared = req.sha256.as_deref().map(Sha256::parse_hex).transpose()?;
    let states = req
        .part_states
        .as_ref()
        .map(PartStates::parse)
        .transpose()?
        .unwrap_or_default();
    let record = completion(&app, caller.id(), id, claimed, declared, states, budget).await?;
    // Still running (`verifying`: the verifier function finishes the job; `completing`: another
    // call holds it and did not finish while this one waited): poll GET /uploads/{id}.
    let status = if matches!(record.status(), Status::Verifying | Status::Completing) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, self::record(&record)).into_response())
}

/// Runs a completion to its end even if the client hangs up: in Lambda the function runs on
/// whatever API Gateway does; the local server would drop the request's future mid-way and leave
/// the session `completing` until its lease ran out.
pub(crate) async fn completion(
    app: &Arc<Uploads>,
    owner: &str,
    id: UploadId,
    claimed: Option<Vec<ClaimedPart>>,
    declared: Option<Sha256>,
    states: PartStates,
    budget: Budget,
) -> Result<UploadRecord, Error> {
    let (app, owner) = (app.clone(), owner.to_owned());
    tokio::spawn(async move {
        app.complete_chained(&owner, id, claimed.as_deref(), declared, &states, budget)
            .await
    })
    .await
    .map_err(|e| Error::Internal(Box::new(e)))?
}
