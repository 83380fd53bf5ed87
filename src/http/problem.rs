//! Every error leaves as `application/problem+json` (RFC 9457). Internal causes are logged with
//! their chain and never echoed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{Error, chain};
use crate::ports::PortError;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem document; `extra` members are merged beside the standard ones.
pub struct Problem {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub extra: Option<Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
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
            "type": format!("/problems/{}", self.kind),
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

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        match e {
            Error::Invalid(i) => Problem::new(
                S::BAD_REQUEST,
                "invalid-field",
                "Invalid request field",
                i.to_string(),
            )
            .with(json!({ "field": i.field })),
            Error::NotFound => Problem::new(
                S::NOT_FOUND,
                "not-found",
                "No such upload",
                "no upload with this id",
            ),
            Error::Conflict(why) => Problem::new(
                S::CONFLICT,
                "conflict",
                "Not allowed in the upload's state",
                why,
            ),
            e @ Error::TooLarge { .. } => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                "too-large",
                "Object too large",
                e.to_string(),
            ),
            ref e @ Error::Incomplete {
                ref first_missing, ..
            } => {
                let missing = first_missing.clone();
                Problem::new(
                    S::CONFLICT,
                    "upload-incomplete",
                    "Parts are missing",
                    e.to_string(),
                )
                .with(json!({ "missing_parts": missing }))
            }
            e @ Error::PartSize { .. } => Problem::new(
                S::CONFLICT,
                "part-size-mismatch",
                "A part has the wrong size",
                e.to_string(),
            ),
            Error::VerificationFailed(record) => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                "verification-failed",
                "Verification failed",
                record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the object did not verify".into()),
            )
            .with(json!({ "upload": record })),
            Error::Upstream(cause) => {
                tracing::error!(error = %chain(&cause), "upstream failure");
                let service = match &cause {
                    PortError::Unavailable { service, .. } => *service,
                    _ => "storage",
                };
                let status = if service == "DynamoDB" {
                    S::SERVICE_UNAVAILABLE
                } else {
                    S::BAD_GATEWAY
                };
                Problem::new(
                    status,
                    "upstream-unavailable",
                    "Storage service failed",
                    "a storage service did not answer as expected; the request can be retried",
                )
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
