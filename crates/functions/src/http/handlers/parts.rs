//! Parts: their URLs signed, and the parts S3 holds listed.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, upload_id};
use crate::http::caller::Caller;
use crate::http::json::JsonBody;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::ApiError;
use crate::http::wire;
use vu_core::domain::{Invalid, ListedPart, PartNumber, Sha256};
use vu_core::service::MAX_URLS_PER_CALL;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// 1–100 distinct part numbers in `1..=part_count`.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<PartNumber>)]
    part_numbers: Vec<u64>,
    /// Each part's SHA-256 (base64), keyed by part number; required with `part_checksums`.
    sha256: Option<BTreeMap<String, String>>,
}

impl SignRequest {
    fn parse(self) -> Result<Vec<(PartNumber, Option<Sha256>)>, Invalid> {
        if self.part_numbers.is_empty() || self.part_numbers.len() > MAX_URLS_PER_CALL {
            return Err(Invalid::new(
                "part_numbers",
                format!("must list 1 to {MAX_URLS_PER_CALL} part numbers"),
            ));
        }
        let mut digests = BTreeMap::new();
        for (k, v) in self.sha256.unwrap_or_default() {
            let field = format!("sha256.{k}");
            let n = PartNumber::parse(&k)
                .map_err(|_| Invalid::new(field.clone(), "keys are part numbers"))?;
            digests.insert(n, Sha256::parse_base64(&v).map_err(|e| e.at(field))?);
        }
        let mut parts = Vec::with_capacity(self.part_numbers.len());
        for raw in self.part_numbers {
            let n = PartNumber::new(raw).map_err(|e| e.at("part_numbers"))?;
            if parts.iter().any(|(p, _)| *p == n) {
                return Err(Invalid::new(
                    "part_numbers",
                    format!("part {n} is listed twice"),
                ));
            }
            parts.push((n, digests.remove(&n)));
        }
        if let Some(extra) = digests.keys().next() {
            return Err(Invalid::new(
                format!("sha256.{extra}"),
                "not among part_numbers",
            ));
        }
        Ok(parts)
    }
}

#[derive(Serialize, ToSchema)]
pub struct SignedParts {
    parts: Vec<wire::SignedPart>,
}

#[derive(Serialize, ToSchema)]
pub struct ListedParts {
    parts: Vec<PartView>,
}

/// Signs part URLs
#[utoipa::path(post, path = "/uploads/{upload_id}/parts", tag = "uploads", operation_id = "signParts",
    params(UploadIdParam),
    request_body(content = SignRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One URL per part", body = SignedParts),
        (status = 400, description = "Malformed body or invalid field; for a session of undeclared size (Uppy's), a part number past `UNSIZED_SESSION_MAX_BYTES` / 5 MiB (rounded up), or any while `ALLOW_UNSIZED_SESSIONS` is off"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "A body over 64 KiB, or URLs past an unsized session's reservation"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
    ))]
pub async fn sign_parts(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
    JsonBody(req): JsonBody<SignRequest>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let parts = app.sign_parts(caller.id(), id, &req.parse()?).await?;
    let parts = parts.into_iter().map(wire::SignedPart::from).collect();
    Ok(Json(SignedParts { parts }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct PartView {
    part_number: PartNumber,
    size: u64,
    etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_sha256: Option<String>,
}

impl From<ListedPart> for PartView {
    fn from(p: ListedPart) -> Self {
        Self {
            part_number: p.part_number,
            size: p.size,
            etag: p.etag,
            checksum_sha256: p.checksum_sha256,
        }
    }
}

/// Lists the parts S3 holds
///
/// All pages, for resuming.
#[utoipa::path(get, path = "/uploads/{upload_id}/parts", tag = "uploads", operation_id = "listParts",
    params(UploadIdParam),
    responses(
        (status = 200, description = "The parts S3 holds", body = ListedParts),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn list_parts(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
) -> Result<Response, ApiError> {
    let parts = app.list_parts(caller.id(), upload_id(&id)?).await?;
    let parts: Vec<PartView> = parts.into_iter().map(PartView::from).collect();
    Ok(Json(ListedParts { parts }).into_response())
}
