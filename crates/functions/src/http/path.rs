//! Path parameters whose rejections (bad percent-encoding, say) are problem documents too.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::{Problem, Slug};

pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(e) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                Slug::InvalidPath,
                "Invalid path parameter",
                e.body_text(),
            )),
        }
    }
}
