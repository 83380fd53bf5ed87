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

use super::caller::Caller;
use super::json::JsonBody;
use super::path::PathParams;
use super::problem::Problem;
use super::view::RecordView;
use crate::domain::{
    ClaimedPart, ContentType, Filename, Invalid, ListedPart, Metadata, ObjectKey, PartNumber,
    Sha256, Status, UploadId, UploadRecord,
};
use crate::error::Error;
use crate::ports::{PageKey, SignedPart};
use crate::service::{MAX_URLS_PER_CALL, NewUpload, Uploads};

type App = State<Arc<Uploads>>;

fn upload_id(raw: &str) -> Result<UploadId, Error> {
    let id = UploadId::parse(raw)?;
    tracing::Span::current().record("upload_id", tracing::field::display(id));
    Ok(id)
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    filename: String,
    size: u64,
    content_type: Option<String>,
    sha256: Option<String>,
    part_size: Option<u64>,
    metadata: Option<BTreeMap<String, String>>,
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

#[derive(Serialize)]
struct CreateResponse {
    upload_id: UploadId,
    bucket: String,
    key: ObjectKey,
    status: Status,
    part_size: u64,
    part_count: u64,
    part_checksums: bool,
    expires_at: Option<String>,
    parts: Vec<SignedPart>,
}

pub async fn create(
    State(app): App,
    caller: Caller,
    JsonBody(req): JsonBody<CreateRequest>,
) -> Result<Response, Error> {
    let created = app.create(caller.id(), req.parse()?).await?;
    let r = created.record;
    tracing::Span::current().record("upload_id", tracing::field::display(r.upload_id));
    let (part_size, part_count) = r.plan.map_or((0, 0), |p| (p.part_size(), p.part_count()));
    let body = CreateResponse {
        upload_id: r.upload_id,
        bucket: r.bucket,
        key: r.key,
        status: r.status,
        part_size,
        part_count,
        part_checksums: r.kind.part_checksums(),
        expires_at: r.expires_at.map(crate::domain::rfc3339),
        parts: created.parts,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListResponse<'a> {
    uploads: Vec<RecordView<'a>>,
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

pub async fn list_uploads(
    State(app): App,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = query.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
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
        uploads: page.records.iter().map(RecordView::from).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    })
    .into_response())
}

fn record(r: &UploadRecord) -> Json<RecordView<'_>> {
    Json(RecordView::from(r))
}

pub async fn get_upload(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Error> {
    let r = app.get_settled(caller.id(), upload_id(&id)?).await?;
    Ok(record(&r).into_response())
}

pub async fn abort(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, Error> {
    app.abort(caller.id(), upload_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    part_numbers: Vec<u64>,
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

#[derive(Serialize)]
struct PartsResponse<T> {
    parts: Vec<T>,
}

pub async fn sign_parts(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
    JsonBody(req): JsonBody<SignRequest>,
) -> Result<Response, Error> {
    let id = upload_id(&id)?;
    let parts = app.sign_parts(caller.id(), id, &req.parse()?).await?;
    Ok(Json(PartsResponse { parts }).into_response())
}

#[derive(Serialize)]
struct PartView {
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

pub async fn list_parts(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Error> {
    let parts = app.list_parts(caller.id(), upload_id(&id)?).await?;
    let parts: Vec<PartView> = parts.into_iter().map(PartView::from).collect();
    Ok(Json(PartsResponse { parts }).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    parts: Option<Vec<ClaimedPartBody>>,
    /// Hex SHA-256 of the whole object, for clients that hash while uploading.
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimedPartBody {
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

pub async fn complete(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Response, Error> {
    let id = upload_id(&id)?;
    let claimed = req
        .parts
        .map(|parts| claimed_parts(parts.into_iter().map(|p| (p.part_number, p.etag))))
        .transpose()?;
    let declared = req.sha256.as_deref().map(Sha256::parse_hex).transpose()?;
    let record = completion(&app, caller.id(), id, claimed, declared).await?;
    // `verifying`: the verifier function finishes the job; poll GET /uploads/{id}.
    let status = if record.status == Status::Verifying {
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
    tokio::spawn(async move { app.complete(&owner, id, claimed.as_deref(), declared).await })
        .await
        .map_err(|e| Error::Internal(Box::new(e)))?
}

#[derive(Serialize)]
struct DownloadResponse {
    url: String,
    expires_at: String,
    version_id: Option<String>,
    sha256: Sha256,
    size: u64,
    content_type: ContentType,
    filename: Filename,
}

/// `GET /uploads/{id}/object`: a pre-signed GET of exactly the verified version.
pub async fn download(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Error> {
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
