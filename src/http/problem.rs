//! Every error leaves as `application/problem+json` (RFC 9457). Internal causes are logged with
//! their chain and never echoed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::view::record_json;
use crate::domain::PartsError;
use crate::error::{Error, chain};
use crate::ports::{PortError, Upstream};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Every problem `type` the API can answer with, as `/problems/<slug>`, each with the page
/// `GET /problems/<slug>` serves: what happened and what to do.
macro_rules! slugs {
    ($($variant:ident => $slug:literal, $title:literal, $what:literal, $todo:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Slug { $($variant,)+ }

        impl Slug {
            pub const ALL: &'static [Slug] = &[$(Slug::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(Slug::$variant => $slug,)+ }
            }

            /// The page's title, what happened and what to do.
            pub fn page(self) -> (&'static str, &'static str, &'static str) {
                match self { $(Slug::$variant => ($title, $what, $todo),)+ }
            }
        }
    };
}

slugs! {
    InvalidField => "invalid-field", "Invalid request field",
        "A field of the request (named by `field`) is missing, of the wrong type or out of range, or a path parameter is not a valid upload id.",
        "Correct the named field as `detail` says; the API documentation (/openapi.json) gives every field's constraints.";
    MalformedBody => "malformed-body", "Malformed JSON body",
        "The body is not JSON of the expected shape: unreadable, unknown fields, or a value of the wrong type (`field` names where).",
        "Send a JSON object with only the documented fields.";
    InvalidQuery => "invalid-query", "Invalid query string",
        "The query string could not be read: a required parameter is missing or has the wrong form.",
        "Send the documented query parameters.";
    InvalidPath => "invalid-path", "Invalid path parameter",
        "A path segment could not be decoded (bad percent-encoding, say).",
        "Send the upload id as the API returned it.";
    Unauthenticated => "unauthenticated", "Authentication required",
        "The API runs behind a JWT authorizer and the request carries no caller identity (the token's `sub` claim).",
        "Send `Authorization: Bearer <token>` with a token whose claims include `sub`.";
    NotFound => "not-found", "No such upload",
        "No upload with this id belongs to the caller (or, on Uppy's routes, the `key` is not the upload's key).",
        "Check the id (and key); uploads are visible only to the caller who created them.";
    NoRoute => "no-route", "No such route",
        "The API serves nothing at this path.",
        "See /openapi.json (or /docs under `make dev`) for the routes.";
    MethodNotAllowed => "method-not-allowed", "Method not allowed",
        "The route exists but does not take this HTTP method.",
        "Use one of the methods the route documents.";
    Conflict => "conflict", "Not allowed in the upload's state",
        "The upload's state does not allow this request: it is completed, aborted, expired, being completed by another call, or S3 refused to complete it.",
        "Read the upload (`GET /uploads/{id}`) to see its status; `detail` says what stood in the way.";
    UploadIncomplete => "upload-incomplete", "Parts are missing",
        "`complete` found parts missing; `missing_parts` lists the first ones. The session stays pending.",
        "Upload the missing parts (sign them again if their URLs expired), then complete again.";
    PartSizeMismatch => "part-size-mismatch", "A part has the wrong size",
        "A part S3 holds is not the size the session's plan gives it.",
        "Upload that part again with exactly the signed length, then complete again.";
    TooLarge => "too-large", "Object too large",
        "The declared size (or what an upload of undeclared size holds) is over the service's limit.",
        "Upload a smaller object, or declare the file's size.";
    BodyTooLarge => "body-too-large", "Request body too large",
        "The request body is over 64 KiB.",
        "Send fewer items per call (at most 100 part numbers).";
    UnsupportedMediaType => "unsupported-media-type", "Request body must be JSON",
        "A JSON route received a body without `Content-Type: application/json`.",
        "Send the body as JSON with that content type (an empty body needs none).";
    ContentTypeNotAllowed => "content-type-not-allowed", "Content type not allowed",
        "The upload declares a content type (`content_type`, or Uppy's `type`) that the service does not accept (`ALLOWED_CONTENT_TYPES`); an upload that declares none is `application/octet-stream`. Form POSTs are held to the declared type by S3 too.",
        "Upload a file of a type `allowed_content_types` lists (`type/*` stands for any subtype), declaring its type.";
    OverLimit => "over-limit", "Too many open uploads",
        "The caller's open uploads would pass its limit on open sessions or pending bytes (`detail` names which).",
        "Complete or abort some open uploads first.";
    VerificationFailed => "verification-failed", "Verification failed",
        "The object's SHA-256 is not the declared one (or the object changed while being read); the record is `failed` (in `upload`) and the object was deleted.",
        "Upload the file again, and check that the declared digest is the file's.";
    Sha256Mismatch => "sha256-mismatch", "Declared digest differs from the recorded one",
        "A `sha256` declared at `complete` differs from the digest already recorded for the upload.",
        "Compare your file with the recorded digest; the record is unchanged.";
    Internal => "internal", "Internal error",
        "The service itself failed (a bug); the cause is logged, never echoed.",
        "Retry the request; report it if it persists.";
    UpstreamUnavailable => "upstream-unavailable", "Storage service failed",
        "S3 or DynamoDB did not answer as expected (502 for S3, 503 for DynamoDB).",
        "Retry the request, with backoff.";
}

/// A problem document; `extra` members are merged beside the standard ones.
pub struct Problem {
    pub status: StatusCode,
    pub kind: Slug,
    pub title: &'static str,
    pub detail: String,
    pub extra: Option<Value>,
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
        }
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
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
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
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
        PartsError::Unmeasurable(_) => Problem::new(
            S::CONFLICT,
            Slug::Conflict,
            "Not allowed in the upload's state",
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
            Error::Conflict(why) => Problem::new(
                S::CONFLICT,
                Slug::Conflict,
                "Not allowed in the upload's state",
                why,
            ),
            ref e @ Error::ContentTypeNotAllowed { ref allowed, .. } => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                Slug::ContentTypeNotAllowed,
                "Content type not allowed",
                e.to_string(),
            )
            .with(json!({ "field": "content_type", "allowed_content_types": allowed })),
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
                record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the object did not verify".into()),
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let fault = matches!(self, Error::Upstream(_) | Error::Internal(_)).then(|| chain(&self));
        let mut res = Problem::from(self).into_response();
        if let Some(fault) = fault {
            res.extensions_mut().insert(Fault(fault));
        }
        res
    }
}
