//! A JSON body extractor whose rejections are problem documents naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::problem::{Problem, Slug};

/// Largest request body; the biggest legitimate one (100 part checksums) is ~8 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest `complete` body: 10,000 parts with their ETags (~0.6 MB) and 9,999 `part_states`
/// (~0.75 MB) fit; API Gateway itself stops at 10 MB.
pub const COMPLETE_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A cross-site form can send only form or text types: JSON routes take JSON alone.
        let declared = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().map(is_json).unwrap_or(false));
        if declared == Some(false) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    status,
                    Slug::BodyTooLarge,
                    "Request body too large",
                    format!(
                        "at most {MAX_BODY_BYTES} bytes ({COMPLETE_MAX_BODY_BYTES} on complete)"
                    ),
                )
            } else {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    Slug::MalformedBody,
                    "Unreadable request body",
                    e.body_text(),
                )
            }
        })?;
        // An empty body is an empty object, so optional-only bodies may be left out (with or
        // without a JSON content type); a body without one is refused.
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else if declared.is_none() {
            return Err(not_json());
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de)
            .map(JsonBody)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let field = if path == "." { String::new() } else { path };
                let detail = if field.is_empty() {
                    inner.to_string()
                } else {
                    format!("{field}: {inner}")
                };
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    Slug::MalformedBody,
                    "Malformed JSON body",
                    detail,
                )
                .with(json!({ "field": field }))
            })
    }
}

/// `application/json`, or a `+json` type such as `application/merge-patch+json`, with any
/// parameters (`; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Slug::UnsupportedMediaType,
        "Request body must be JSON",
        "send the body with Content-Type: application/json",
    )
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_types_are_json_and_nothing_else_is() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "text/json",
            "",
        ] {
            assert!(!is_json(no), "{no}");
        }
    }
}
