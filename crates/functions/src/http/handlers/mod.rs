//! Thin handlers: parse the edge's JSON into domain values, call the use case, shape the answer.
//! One module per route group: `sessions` (create, list, read, abort), `parts` (sign, list),
//! `completion`, `download`, `receipts` (and the published keys); liveness here.

pub(super) mod completion;
pub(super) mod download;
pub(super) mod parts;
pub(super) mod receipts;
pub(super) mod sessions;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use vu_contract::Record;
use vu_core::domain::{UploadId, UploadRecord};
use vu_core::error::Error;
use vu_core::service::Uploads;

type App = State<Arc<Uploads>>;

fn upload_id(raw: &str) -> Result<UploadId, Error> {
    let id = UploadId::parse(raw)?;
    tracing::Span::current().record("upload_id", tracing::field::display(id));
    Ok(id)
}

fn record(r: &UploadRecord) -> Json<Record> {
    Json(Record::from(r))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// Liveness
#[utoipa::path(get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "The API is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}
