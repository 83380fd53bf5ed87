//! Receipts: a verified upload's signed statement, and the public keys anyone checks it with.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use vu_contract::receipt::{Claims, JWKS_PATH, Jwks};

use super::{App, upload_id};
use crate::http::caller::Caller;
use crate::http::path::{PathParams, UploadIdParam};
use crate::http::problem::{ApiError, Problem, Slug};

#[derive(Serialize, ToSchema)]
pub struct ReceiptResponse {
    /// The receipt: a compact JWS (RFC 7515) signed with ES256, `typ` `vu-receipt+jwt`, its
    /// `kid` a key of `GET /.well-known/jwks.json`. Save it; it checks offline.
    receipt: String,
    /// What it states, decoded (the JWS payload), for reading.
    claims: Claims,
    /// Where its key is published.
    keys: &'static str,
}

/// Gets a verified upload's receipt
///
/// A signed statement of what the service verified (upload, owner, bucket, key, version, size,
/// SHA-256, ETag, when), checkable offline against the published keys. Only a `verified` upload
/// has one (`409` otherwise, with `Retry-After` while it is in flight).
#[utoipa::path(get, path = "/uploads/{upload_id}/receipt", tag = "uploads", operation_id = "getReceipt",
    params(UploadIdParam),
    responses(
        (status = 200, description = "The upload's receipt", body = ReceiptResponse),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's (`not-found`), a verified upload with no receipt (`no-receipt`: verified while the service issued none), or this service issues no receipts (`no-route`)"),
        (status = 409, description = "The upload is not `verified`"),
    ))]
pub async fn receipt(
    State(app): App,
    caller: Caller,
    PathParams(UploadIdParam { upload_id: id }): PathParams<UploadIdParam>,
) -> Result<Response, ApiError> {
    let Some(receipt) = app.receipt(caller.id(), upload_id(&id)?).await? else {
        return Ok(match app.receipts() {
            Some(_) => no_receipt(),
            None => no_receipts(),
        }
        .into_response());
    };
    let Some(claims) = decode_claims(&receipt) else {
        return Err(
            vu_core::error::Error::Internal("a receipt that does not decode".into()).into(),
        );
    };
    Ok(Json(ReceiptResponse {
        receipt,
        claims,
        keys: JWKS_PATH,
    })
    .into_response())
}

fn no_receipt() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        Slug::NoReceipt,
        "No receipt for this upload",
        "no receipt was signed with this upload's verdict (it was verified before the service signed receipts with its verdicts); none is signed afterwards from the table",
    )
}

fn no_receipts() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        Slug::NoRoute,
        "No such route",
        "this service issues no receipts (RECEIPT_KEY_ID is unset)",
    )
}

/// The payload of a receipt this service signed with the verdict.
fn decode_claims(receipt: &str) -> Option<Claims> {
    use base64::Engine as _;
    let payload = receipt.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// The keys receipts are checked with
///
/// A JSON Web Key Set (RFC 7517): the key signing now first, then keys retired by a rotation,
/// whose receipts stay valid. Needs no token. Empty when the service issues no receipts.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "service", operation_id = "jwks",
    responses(
        (status = 200, description = "The public keys of receipts", body = Jwks),
        (status = 502, description = "KMS failed; retry"),
    ))]
pub async fn jwks(State(app): App) -> Result<Response, ApiError> {
    let keys = app.jwks().await?;
    // Keys change only with a deploy (a rotation); verifiers may cache them for a while.
    Ok(([(header::CACHE_CONTROL, "public, max-age=300")], Json(keys)).into_response())
}
