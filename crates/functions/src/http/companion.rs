//! Uppy Companion's S3 routes (`/s3/...`), so that the stock `@uppy/aws-s3` plugin configured
//! with `companionEndpoint` uploads through the same sessions, records and verification as
//! `/uploads`. The shapes are Companion's (`controllers/s3` in the Uppy repository). The upload
//! id Uppy carries is ours; the `key` it sends back is checked against the session, never used.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::handlers::claimed_parts;
use super::json::JsonBody;
use super::path::PathParams;
use super::problem::{ApiError, Problem, Slug};
use vu_core::domain::{
    ContentType, Filename, Invalid, MIN_PART_SIZE, Metadata, ObjectKey, PartNumber, Sha256, Status,
    UploadId, UploadRecord,
};
use vu_core::error::Error;
use vu_core::ports::PostForm;
use vu_core::service::{MAX_URLS_PER_CALL, UnsizedUpload, Uploads};

type App = State<Arc<Uploads>>;

/// Metadata values keep printable ASCII (but `%`, so the encoding stays reversible).
const NOT_PRINTABLE_ASCII: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// Companion's error answers are problem documents here too; Uppy only reads the status.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(v)| v).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            Slug::InvalidQuery,
            "Invalid query string",
            e.body_text(),
        )
    })
}

/// What Uppy declares about a file. `name` and `type` repeat `filename` and `type`; a
/// `sha256` entry (hex) is the digest the upload must match; a `size` entry (bytes) makes the
/// session sized; the rest is kept as metadata.
fn uppy_upload(
    filename: &str,
    content_type: Option<&str>,
    meta: impl IntoIterator<Item = (String, Value)>,
) -> Result<(UnsizedUpload, Option<u64>), Invalid> {
    let mut sha256 = None;
    let mut size = None;
    let mut kept = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in meta {
        let field = format!("metadata.{k}");
        // S3 lower-cases metadata keys: two that differ only in case would overwrite each other.
        let k = k.to_ascii_lowercase();
        if !seen.insert(k.clone()) {
            return Err(Invalid::new(
                field,
                "differs from another metadata key only in letter case",
            ));
        }
        let text = match v {
            Value::Null => continue,
            // S3 metadata is ASCII; Companion RFC 2047-encodes the rest, here it is percent-encoded.
            Value::String(s) => {
                percent_encoding::utf8_percent_encode(&s, NOT_PRINTABLE_ASCII).to_string()
            }
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(Invalid::new(field, "must be a string"));
            }
        };
        match k.as_str() {
            "name" | "type" => {}
            "sha256" => sha256 = Some(Sha256::parse_hex(&text).map_err(|e| e.at(field))?),
            "size" => {
                size = Some(text.parse::<u64>().map_err(|_| {
                    Invalid::new(field, "must be the file's size, a whole number of bytes")
                })?);
            }
            _ => {
                kept.insert(k, text);
            }
        }
    }
    let upload = UnsizedUpload {
        filename: Filename::parse(filename)?,
        content_type: match content_type.map(str::trim) {
            None | Some("") => ContentType::default(),
            Some(t) => ContentType::parse(t)?,
        },
        sha256,
        metadata: Metadata::parse(kept)?,
    };
    Ok((upload, size))
}

/// The part size `@uppy/aws-s3` cuts a file of `size` bytes into: a 10,000th of it, at least
/// 5 MiB. A sized session signs exactly those lengths.
fn uppy_part_size(size: u64) -> u64 {
    size.div_ceil(10_000).max(MIN_PART_SIZE)
}

/// The session behind `id`, if the caller owns it and `key` is its key; otherwise 404, as for
/// an unknown id, so keys cannot be probed. Read once; the use cases take it from here.
async fn session(
    app: &Uploads,
    caller: &Caller,
    id: &str,
    key: &str,
) -> Result<UploadRecord, Error> {
    let id = UploadId::parse(id)?;
    tracing::Span::current().record("upload_id", tracing::field::display(id));
    let record = app.get(caller.id(), id).await?;
    if record.key.as_str() != key {
        return Err(Error::NotFound);
    }
    Ok(record)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// The upload's object key, as `POST /s3/multipart` returned it.
    key: String,
}

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
    #[schema(value_type = std::collections::BTreeMap<String, super::openapi::MetaValueDoc>)]
    metadata: serde_json::Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CompanionCreated)]
pub struct Created {
    #[schema(value_type = String)]
    key: ObjectKey,
    #[schema(value_type = super::openapi::UploadIdDoc)]
    upload_id: UploadId,
    bucket: String,
}

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

/// `{}`: Companion's answer to an abort.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// Uppy: creates a multipart session
///
/// With the file's `size` in the metadata, a sized session whose part URLs sign each part's
/// exact length (cut as Uppy cuts it); without, a session that reserves
/// `UNSIZED_SESSION_MAX_BYTES` and is measured from S3's parts at completion.
#[utoipa::path(post, path = "/s3/multipart", tag = "companion", operation_id = "companionCreate",
    request_body(content = CreateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The session", body = Created),
        (status = 400, description = "Malformed body or invalid field"),
        (status = 413, description = "The declared size over `MAX_OBJECT_BYTES`, or a body over 64 KiB"),
        (status = 415, description = "A body without `Content-Type: application/json`, or a `type` outside `ALLOWED_CONTENT_TYPES`"),
        (status = 429, description = "The caller's open uploads would pass its limits"),
    ))]
pub async fn create(
    State(app): App,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Created>, ApiError> {
    let (req, size) = uppy_upload(&body.filename, body.content_type.as_deref(), body.metadata)?;
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
        upload_id: record.upload_id,
        bucket: record.bucket,
    }))
}

fn part_number(raw: &str, field: &str) -> Result<PartNumber, Invalid> {
    PartNumber::parse(raw.trim()).map_err(|e| e.at(field))
}

/// Uppy: signs one part
#[utoipa::path(get, path = "/s3/multipart/{upload_id}/{part_number}", tag = "companion",
    operation_id = "companionSignPart",
    params(super::openapi::UploadIdParam, super::openapi::PartNumberParam, KeyQuery),
    responses(
        (status = 200, description = "The part's URL", body = SignedUrl),
        (status = 400, description = "Invalid id, part number or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "URLs past an unsized session's reservation"),
    ))]
pub async fn sign_part(
    State(app): App,
    caller: Caller,
    PathParams((id, n)): PathParams<(String, String)>,
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
    params(super::openapi::UploadIdParam, BatchQuery),
    responses(
        (status = 200, description = "One URL per part", body = SignedBatch),
        (status = 400, description = "Invalid id, part numbers or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
        (status = 413, description = "URLs past an unsized session's reservation"),
    ))]
pub async fn sign_batch(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
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
    #[schema(value_type = super::openapi::PartNumberDoc)]
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
    params(super::openapi::UploadIdParam, KeyQuery),
    responses(
        (status = 200, description = "The parts S3 holds", body = Vec<CompanionPart>),
        (status = 400, description = "Invalid id or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn list_parts(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
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

#[derive(Deserialize, ToSchema)]
#[schema(as = CompanionCompleteRequest)]
pub struct CompleteBody {
    #[serde(default)]
    parts: Option<Vec<CompletePart>>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CompanionCompletePart)]
pub struct CompletePart {
    #[serde(rename = "PartNumber")]
    #[schema(value_type = super::openapi::PartNumberDoc)]
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
    #[schema(value_type = super::openapi::UploadIdDoc)]
    upload_id: UploadId,
    #[schema(value_type = super::openapi::StatusDoc)]
    status: Status,
    #[schema(value_type = Option<super::openapi::Sha256Doc>)]
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
    params(super::openapi::UploadIdParam, KeyQuery),
    request_body(content = Option<CompleteBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Completed and verified", body = Completed),
        (status = 202, description = "Still running: `verifying` (too large to verify inline), or `completing` under another call", body = Completed),
        (status = 400, description = "Malformed body, invalid field or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "Parts missing, uneven or with a gap, or the state does not allow it"),
        (status = 413, description = "A body over 64 KiB, or an unsized session holding more than it reserved"),
        (status = 415, description = "A body without `Content-Type: application/json`"),
        (status = 422, description = "The SHA-256 did not match (`upload` holds the failed record)"),
    ))]
pub async fn complete(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
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
    let r = super::handlers::completion(&app, caller.id(), id, claimed, None).await?;
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
            upload_id: r.upload_id,
            status: record_status,
            sha256,
        }),
    ))
}

/// Uppy: aborts the upload
#[utoipa::path(delete, path = "/s3/multipart/{upload_id}", tag = "companion",
    operation_id = "companionAbort",
    params(super::openapi::UploadIdParam, KeyQuery),
    responses(
        (status = 200, description = "Aborted", body = Empty),
        (status = 400, description = "Invalid id or query"),
        (status = 404, description = "No such upload of the caller's with this key"),
        (status = 409, description = "The upload's state does not allow it"),
    ))]
pub async fn abort(
    State(app): App,
    caller: Caller,
    PathParams(id): PathParams<String>,
    q: Result<Query<KeyQuery>, QueryRejection>,
) -> Result<Json<Empty>, Problem> {
    let q = query(q)?;
    let id = session(&app, &caller, &id, &q.key).await?.upload_id;
    app.abort(caller.id(), id).await?;
    Ok(Json(Empty {}))
}

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
    params(super::openapi::ParamsQuery),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_as_uppy_cuts_them() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(uppy_part_size(1), 5 * MIB);
        assert_eq!(uppy_part_size(50_000 * MIB), 5 * MIB);
        // Past 10,000 parts of 5 MiB, a 10,000th of the file, rounded up.
        assert_eq!(uppy_part_size(100_000 * MIB + 1), 10 * MIB + 1);
    }
}
