//! Uppy Companion's S3 routes (`/s3/...`), so that the stock `@uppy/aws-s3` plugin configured
//! with `companionEndpoint` uploads through the same sessions, records and verification as
//! `/uploads`. The shapes are Companion's (`controllers/s3` in the Uppy repository). The upload
//! id Uppy carries is ours; the `key` it sends back is checked against the session, never used.
//!
//! One module per job: `sessions` (create, abort), `form` (a form POST policy for one object),
//! `parts` (signed URLs, the parts S3 holds), `completion`; `uppy` reads what Uppy declares.

pub(super) mod completion;
pub(super) mod form;
pub(super) mod parts;
pub(super) mod sessions;
mod uppy;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::caller::Caller;
use super::problem::{Problem, Slug};
use vu_core::domain::{UploadId, UploadRecord};
use vu_core::error::Error;
use vu_core::service::Uploads;

type App = State<Arc<Uploads>>;

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
