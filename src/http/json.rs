//! A JSON body extractor whose rejections are problem documents naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::problem::Problem;

/// Largest request body; the biggest legitimate one (100 part checksums) is ~8 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    status,
                    "body-too-large",
                    "Request body too large",
                    format!("at most {MAX_BODY_BYTES} bytes"),
                )
            } else {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-body",
                    "Unreadable request body",
                    e.body_text(),
                )
            }
        })?;
        // An empty body is an empty object, so optional-only bodies may be left out.
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
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
                    "malformed-body",
                    "Malformed JSON body",
                    detail,
                )
                .with(json!({ "field": field }))
            })
    }
}
