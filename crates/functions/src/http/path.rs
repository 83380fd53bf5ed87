//! Path parameters whose rejections (bad percent-encoding, say) are problem documents too, and
//! the routes' parameters as the OpenAPI document lists them. Each is read as text: the handler
//! parses it, so an invalid one is a problem naming its field.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

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

/// `{upload_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UploadIdParam {
    /// The upload id (`upload_id`, Uppy's `uploadId`).
    #[param(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub upload_id: String,
}

/// `{upload_id}/{part_number}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PartParams {
    /// The upload id (`upload_id`, Uppy's `uploadId`).
    #[param(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub upload_id: String,
    /// The part number, 1–10,000.
    #[param(value_type = u16, minimum = 1, maximum = 10_000)]
    pub part_number: String,
}

/// `{slug}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SlugParam {
    /// A problem type's last segment.
    pub slug: String,
}
