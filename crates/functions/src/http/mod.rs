//! One axum `Router`, served by `lambda_http::run` in Lambda and by `axum::serve` locally.

mod budget;
mod caller;
mod companion;
mod conflict;
mod handlers;
mod json;
mod local_caller;
pub mod openapi;
mod pages;
mod path;
pub mod problem;
mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tracing::Instrument as _;

// Decided at start from the settings (`config::callers`), enforced per request (`caller`).
pub use crate::config::CallerPolicy;
pub use local_caller::with_local_callers;
use problem::{Fault, Problem, Slug};

use vu_core::service::Uploads;

pub fn router(uploads: Arc<Uploads>, callers: CallerPolicy) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route(
            "/uploads",
            post(handlers::sessions::create).get(handlers::sessions::list_uploads),
        )
        .route(
            "/uploads/{upload_id}",
            get(handlers::sessions::get_upload).delete(handlers::sessions::abort),
        )
        .route(
            "/uploads/{upload_id}/parts",
            get(handlers::parts::list_parts).post(handlers::parts::sign_parts),
        )
        .route(
            "/uploads/{upload_id}/complete",
            // Room for 10,000 parts and their SHA-256 chaining values.
            post(handlers::completion::complete)
                .layer(DefaultBodyLimit::max(json::COMPLETE_MAX_BODY_BYTES)),
        )
        .route(
            "/uploads/{upload_id}/object",
            get(handlers::download::download),
        )
        .route(
            "/uploads/{upload_id}/receipt",
            get(handlers::receipts::receipt),
        )
        .route("/.well-known/jwks.json", get(handlers::receipts::jwks))
        .route("/s3/params", get(companion::form::params))
        .route("/s3/multipart", post(companion::sessions::create))
        .route(
            "/s3/multipart/{upload_id}",
            get(companion::parts::list_parts).delete(companion::sessions::abort),
        )
        .route(
            "/s3/multipart/{upload_id}/batch",
            get(companion::parts::sign_batch),
        )
        .route(
            "/s3/multipart/{upload_id}/complete",
            post(companion::completion::complete)
                .layer(DefaultBodyLimit::max(json::COMPLETE_MAX_BODY_BYTES)),
        )
        .route(
            "/s3/multipart/{upload_id}/{part_number}",
            get(companion::parts::sign_part),
        )
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/problems/{slug}", get(pages::problem_page))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(axum::Extension(callers))
        .layer(middleware::from_fn(request_span))
        .with_state(uploads)
}

/// The upload page (`web/`) at `/` and the API reference (`web/docs.html`, Redoc rendering
/// `/openapi.json`) at `/docs`, for the local server; unknown paths still answer the API's
/// problem document.
pub fn with_page(router: Router, dir: &std::path::Path) -> Router {
    use axum::handler::HandlerWithoutStateExt as _;
    router
        .route_service(
            "/docs",
            tower_http::services::ServeFile::new(dir.join("docs.html")),
        )
        .fallback_service(
            tower_http::services::ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .call_fallback_on_method_not_allowed(true)
                .not_found_service(not_found.into_service()),
        )
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        Slug::NoRoute,
        "No such route",
        "see /openapi.json for the API",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Slug::MethodNotAllowed,
        "Method not allowed",
        "this route does not take that method",
    )
}

/// One span per request; handlers record the upload id into it once parsed, and a 5xx's cause
/// is logged here, inside it.
async fn request_span(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        upload_id = tracing::field::Empty,
    );
    async move {
        let started = Instant::now();
        let res = next.run(req).await;
        if let Some(Fault(cause)) = res.extensions().get::<Fault>() {
            tracing::error!(error = %cause, "request failed upstream or internally");
        }
        tracing::info!(
            status = res.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "handled"
        );
        res
    }
    .instrument(span)
    .await
}
