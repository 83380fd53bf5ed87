//! Thin handlers: parse the edge's JSON into domain values, call the use case, shape the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::json::JsonBody;
use super::path::PathParams;
use super::problem::{ApiError, Problem, Slug};
use vu_contract::Record;
use vu_core::domain::{
    ClaimedPart, ContentType, Filename, Invalid, ListedPart, Metadata, ObjectKey, PartNumber,
    Sha256, Status, UploadId, UploadRecord,
};
use vu_core::error::Error;
use vu_core::ports::{PageKey, SignedPart};
use vu_core::service::{Budget, MAX_URLS_PER_CALL, NewUpload, Uploads};

type App = State<Arc<Uploads>>;

fn upload_id(raw: &str) -> Result<UploadId, Error> {
    let id = UploadId::parse(raw)?;
    tracing::Span::current().record("upload_id", tracing::field::display(id));
    Ok(id)
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "The API is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

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
    #[schema(value_type = super::openapi::UploadIdDoc)]
    upload_id: UploadId,
    bucket: String,
    #[schema(value_type = String)]
    key: ObjectKey,
    #[schema(value_type = super::openapi::StatusDoc)]
    status: Status,
    part_size: u64,
    part_count: u64,
    part_checksums: bool,
    expires_at: Option<String>,
    /// URLs for the first 100 parts (none with `part_checksums`).
    #[schema(value_type = Vec<super::openapi::SignedPartDoc>)]
    parts: Vec<SignedPart>,
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
        upload_id: r.upload_id,
        bucket: r.bucket,
        key: r.key,
        status,
        part_size,
        part_count,
        part_checksums: r.kind.part_checksums(),
        expires_at: expires_at.map(vu_core::domain::rfc3339),
        parts: created.parts,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only uploads in this status.
    #[param(value_type = Option<super::openapi::StatusDoc>)]
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

fn record(r: &UploadRecord) -> Json<Record> {
    Json(Record::from(r))
}

/// Reads an upload's record
///
/// A form POST whose object arrived is verified by this read.
#[utoipa::path(get, path = "/uploads/{upload_id}", tag = "uploads", operation_id = "getUpload",
    params(super::openapi::UploadIdParam),
    responses(
        (status = 200, description = "The record", body = Record),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "A form POST whose arrived object this read began to verify was refused by S3 or taken over; read again"),
    ))]
pub async fn get_upload(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let r = app
        .get_settled(caller.id(), upload_id(&id)?, Budget::request(app.limits()))
        .await?;
    Ok(record(&r).into_response())
}

/// Aborts an upload
#[utoipa::path(delete, path = "/uploads/{upload_id}", tag = "uploads", operation_id = "abortUpload",
    params(super::openapi::UploadIdParam),
    responses(
        (status = 204, description = "Aborted"),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn abort(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    app.abort(caller.id(), upload_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// 1–100 distinct part numbers in `1..=part_count`.
    #[schema(min_items = 1, max_items = 100, value_type = Vec<super::openapi::PartNumberDoc>)]
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
    #[schema(value_type = Vec<super::openapi::SignedPartDoc>)]
    parts: Vec<SignedPart>,
}

#[derive(Serialize, ToSchema)]
pub struct ListedParts {
    parts: Vec<PartView>,
}

/// Signs part URLs
#[utoipa::path(post, path = "/uploads/{upload_id}/parts", tag = "uploads", operation_id = "signParts",
    params(super::openapi::UploadIdParam),
    request_body(content = SignRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One URL per part", body = SignedParts),
        (status = 400, description = "Malformed body or invalid field"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "A body over 64 KiB, or URLs past an unsized session's reservation"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
    ))]
pub async fn sign_parts(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
    JsonBody(req): JsonBody<SignRequest>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let parts = app.sign_parts(caller.id(), id, &req.parse()?).await?;
    Ok(Json(SignedParts { parts }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct PartView {
    #[schema(value_type = super::openapi::PartNumberDoc)]
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
    params(super::openapi::UploadIdParam),
    responses(
        (status = 200, description = "The parts S3 holds", body = ListedParts),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn list_parts(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let parts = app.list_parts(caller.id(), upload_id(&id)?).await?;
    let parts: Vec<PartView> = parts.into_iter().map(PartView::from).collect();
    Ok(Json(ListedParts { parts }).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Every part exactly once with the ETag S3 holds; left out, S3's `ListParts` gives them.
    parts: Option<Vec<ClaimedPartBody>>,
    /// Hex SHA-256 of the whole object, for clients that hash while uploading.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimedPartBody {
    #[schema(value_type = super::openapi::PartNumberDoc)]
    part_number: u64,
    etag: String,
}

/// The parts a client lists at completion, as (number, ETag).
pub(super) fn claimed_parts(
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
    params(super::openapi::UploadIdParam),
    request_body(content = Option<CompleteRequest>, content_type = "application/json",
        description = "Optional: an empty body takes the parts from S3"),
    responses(
        (status = 200, description = "Verified (or the result recorded earlier)", body = Record),
        (status = 202, description = "Still running: `verifying` (too large to verify inline), or `completing` under another call that did not finish within `COMPLETION_WAIT_SECONDS`; poll the record", body = Record),
        (status = 400, description = "Malformed body, invalid field, or a digest that disagrees with the one given at creation"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "Parts missing or of the wrong size, or the state does not allow it"),
        (status = 413, description = "A body over 64 KiB, or an unsized session holding more than it reserved"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
        (status = 422, description = "The SHA-256 did not match (`upload` holds the failed record), or a declared digest differs from the recorded one"),
    ))]
pub async fn complete(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let claimed = req
        .parts
        .map(|parts| claimed_parts(parts.into_iter().map(|p| (p.part_number, p.etag))))
        .transpose()?;
    let declared = req.sha256.as_deref().map(Sha256::parse_hex).transpose()?;
    let record = completion(&app, caller.id(), id, claimed, declared).await?;
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
pub(super) async fn completion(
    app: &Arc<Uploads>,
    owner: &str,
    id: UploadId,
    claimed: Option<Vec<ClaimedPart>>,
    declared: Option<Sha256>,
) -> Result<UploadRecord, Error> {
    let (app, owner) = (app.clone(), owner.to_owned());
    // The request's budget starts now, whatever the spawned task waits for.
    let budget = Budget::request(app.limits());
    tokio::spawn(async move {
        app.complete(&owner, id, claimed.as_deref(), declared, budget)
            .await
    })
    .await
    .map_err(|e| Error::Internal(Box::new(e)))?
}

#[derive(Serialize, ToSchema)]
pub struct DownloadResponse {
    /// A pre-signed GET of exactly the verified version.
    url: String,
    expires_at: String,
    version_id: Option<String>,
    #[schema(value_type = super::openapi::Sha256Doc)]
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
    params(super::openapi::UploadIdParam),
    responses(
        (status = 200, description = "A download of the verified version", body = DownloadResponse),
        (status = 400, description = "Not an upload id"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "The upload is not `verified`"),
    ))]
pub async fn download(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
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
