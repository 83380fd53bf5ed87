//! Every error leaves as `application/problem+json` (RFC 9457). Internal causes are logged with
//! their chain and never echoed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use vu_core::domain::PartsError;
use vu_core::error::{Error, chain};
use vu_core::ports::{PortError, Upstream};
use vu_core::view::record_json;

pub const CONTENT_TYPE: &str = "application/problem+json";

pub use vu_contract::problem::ProblemType as Slug;

/// A problem document; `extra` members are merged beside the standard ones.
pub struct Problem {
    pub status: StatusCode,
    pub kind: Slug,
    pub title: &'static str,
    pub detail: String,
    pub extra: Option<Value>,
    /// Seconds after which the same request may succeed: the `Retry-After` header and the
    /// `retry_after` member.
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: Slug,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds members beside the standard ones (merged with any added before).
    pub fn with(mut self, extra: Value) -> Self {
        match (&mut self.extra, extra) {
            (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
            (_, extra) => self.extra = Some(extra),
        }
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("/problems/{}", self.kind.as_str()),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.extra, &mut body) {
            map.extend(extra);
        }
        if let (Some(seconds), Value::Object(map)) = (self.retry_after, &mut body) {
            map.insert("retry_after".into(), seconds.into());
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

/// The cause of a 5xx, carried on the response for the request span to log (`http::request_span`).
#[derive(Debug, Clone)]
pub struct Fault(pub String);

fn parts_problem(e: PartsError) -> Problem {
    use StatusCode as S;
    let detail = e.to_string();
    match e {
        PartsError::Incomplete { first_missing, .. } => Problem::new(
            S::CONFLICT,
            Slug::UploadIncomplete,
            "Parts are missing",
            detail,
        )
        .with(json!({ "missing_parts": first_missing })),
        PartsError::PartSize { .. } => Problem::new(
            S::CONFLICT,
            Slug::PartSizeMismatch,
            "A part has the wrong size",
            detail,
        ),
        PartsError::Claimed(i) => Error::Invalid(i).into(),
        // The parts S3 holds form no plan (uneven sizes, a gap): a part to send again.
        PartsError::Unmeasurable(_) => Problem::new(
            S::CONFLICT,
            Slug::PartSizeMismatch,
            "A part has the wrong size",
            detail,
        ),
    }
}

fn upstream_problem(cause: &PortError) -> Problem {
    // DynamoDB holds the sessions: without it nothing can be answered (503); any other upstream
    // failing is a bad gateway.
    let status = match cause {
        PortError::Unavailable {
            service: Upstream::DynamoDB,
            ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    Problem::new(
        status,
        Slug::UpstreamUnavailable,
        "Storage service failed",
        "a storage service did not answer as expected; the request can be retried",
    )
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        match e {
            Error::Invalid(i) => Problem::new(
                S::BAD_REQUEST,
                Slug::InvalidField,
                "Invalid request field",
                i.to_string(),
            )
            .with(json!({ "field": i.field })),
            Error::NotFound => Problem::new(
                S::NOT_FOUND,
                Slug::NotFound,
                "No such upload",
                "no upload with this id",
            ),
            Error::Conflict(c) => super::conflict::problem(c),
            ref e @ Error::ContentTypeNotAllowed { ref allowed, .. } => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                Slug::ContentTypeNotAllowed,
                "Content type not allowed",
                e.to_string(),
            )
            .with(json!({ "field": "content_type", "allowed_content_types": allowed })),
            // 400, not 411 Length Required: 411 is about the request's own `Content-Length`
            // header, which this request has; what is missing is a field of its body.
            e @ Error::SizeRequired => Problem::new(
                S::BAD_REQUEST,
                Slug::SizeRequired,
                "The file's size is required",
                e.to_string(),
            )
            .with(json!({ "field": "metadata.size" })),
            e @ Error::OverLimit(_) => Problem::new(
                S::TOO_MANY_REQUESTS,
                Slug::OverLimit,
                "Too many open uploads",
                e.to_string(),
            ),
            e @ Error::TooLarge { .. } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                Slug::TooLarge,
                "Object too large",
                e.to_string(),
            ),
            Error::Parts(e) => parts_problem(e),
            e @ Error::DigestMismatch { .. } => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                Slug::Sha256Mismatch,
                "Declared digest differs from the recorded one",
                e.to_string(),
            ),
            Error::VerificationFailed(record) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                Slug::VerificationFailed,
                "Verification failed",
                record.error().unwrap_or("the object did not verify"),
            )
            .with(json!({ "upload": record_json(&record) })),
            Error::Upstream(cause) => upstream_problem(&cause),
            Error::Internal(_) => Problem::new(
                S::INTERNAL_SERVER_ERROR,
                Slug::Internal,
                "Internal error",
                "the service failed; the request can be retried",
            ),
        }
    }
}

/// A use case's error as the API answers it: a problem document, its cause logged (never shown)
/// when the fault is the service's or an upstream's.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Self(e) = self;
        let fault = matches!(e, Error::Upstream(_) | Error::Internal(_)).then(|| chain(&e));
        let mut res = Problem::from(e).into_response();
        if let Some(fault) = fault {
            res.extensions_mut().insert(Fault(fault));
        }
        res
    }
}
