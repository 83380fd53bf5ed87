//! The world's errors are never the file's fault: S3 reached through an HTTP proxy that answers
//! chosen requests itself (a HEAD refused with 403, as a KMS key policy without a grant, an IAM
//! change or a skewed clock would), with the real Router, SDK clients and emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::helpers::*;
use vu_aws::{DynamoSessions, S3Objects};
use vu_core::ports::ObjectStore as _;
use vu_core::service::Uploads;

/// How many HEADs of upload keys the proxy refuses with 403 before it forwards them again.
struct Refusals {
    upstream: String,
    heads: AtomicUsize,
    http: reqwest::Client,
    /// The S3 adapter whose requests go through the proxy.
    s3: Arc<S3Objects>,
}

async fn forward(State(r): State<Arc<Refusals>>, req: Request) -> Response {
    let refuse = req.method() == Method::HEAD
        && req.uri().path().contains("/uploads/")
        && r.heads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if refuse {
        // What S3 answers a HEAD it refuses: 403, no body.
        return StatusCode::FORBIDDEN.into_response();
    }
    let url = format!("{}{}", r.upstream, req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers() {
        if k != "host" {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
    }
    let body = to_bytes(req.into_body(), usize::MAX).await.unwrap();
    let res = r
        .http
        .request(method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for (k, v) in res.headers() {
        out.append(
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let bytes = res.bytes().await.unwrap();
    (status, out, Body::from(bytes)).into_response()
}

/// The API whose S3 client (and pre-signed URLs) go through a refusing proxy; DynamoDB direct.
async fn behind_refusals() -> (Arc<Refusals>, Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let sdk = aws_config::from_env().load().await;
    let s3_sdk = aws_config::from_env().endpoint_url(&proxy).load().await;
    let s3 = Arc::new(S3Objects::new(&s3_sdk, bucket(), Duration::from_secs(5)).unwrap());
    let refusals = Arc::new(Refusals {
        upstream: endpoint().trim_end_matches('/').to_owned(),
        heads: AtomicUsize::new(0),
        http: reqwest::Client::new(),
        s3: s3.clone(),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(refusals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let uploads = Uploads::new(
        s3,
        Arc::new(DynamoSessions::new(&sdk, table())),
        test_limits(),
        small_ranges(),
    );
    (refusals, Client::over(Arc::new(uploads)))
}

#[tokio::test]
async fn a_head_refused_with_403_after_completion_destroys_nothing_and_verifies_later() {
    let (refusals, client) = behind_refusals().await;
    let part = 5 * MIB;
    let file = data(part + 4321, 91);
    let c = client
        .create(json!({"filename": "refused.bin", "size": file.len(), "part_size": part, "sha256": sha256_hex(&file)}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, part).await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let key = c.body["key"].as_str().unwrap().to_owned();

    // S3 completes the upload, then refuses the HEAD that pins the object.
    refusals.heads.store(1, Ordering::SeqCst);
    let refused = client.complete(&id).await;
    assert_eq!(
        refused.status, 502,
        "an upstream fault, not a verdict: {}",
        refused.body
    );
    assert_eq!(refused.body["type"], "/problems/upstream-unavailable");
    let record = client.record(&id).await.body;
    assert_eq!(record["status"], "completing", "{record}");
    assert_eq!(record["last_error"], "S3 request failed");
    assert_eq!(record["attempts"], 1);
    // The object is still there, every version of it.
    let s3 = s3_client().await;
    let versions = s3
        .list_object_versions()
        .bucket(bucket())
        .prefix(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1, "nothing deleted");

    // S3 answers again: the next attempt verifies the same object.
    let verified = client.complete_settled(&id).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "verified");
    assert_eq!(verified.body["sha256"], sha256_hex(&file));
    assert_eq!(verified.body["last_error"], serde_json::Value::Null);
    assert_eq!(verified.body["attempts"], 0);
}

#[tokio::test]
async fn a_head_refused_for_a_key_the_bucket_does_not_list_is_an_absence() {
    // What S3 answers a caller it will not tell whether a key exists: 403. The listing says.
    let (refusals, _client) = behind_refusals().await;
    let s3 = refusals.s3.clone();
    refusals.heads.store(2, Ordering::SeqCst);
    let missing = format!("uploads/{}/nothing.bin", ulid::Ulid::new());
    assert_eq!(s3.head(&missing, None).await.unwrap(), None);
    let other_version = s3.head(&missing, Some("v-that-never-was")).await.unwrap();
    assert_eq!(other_version, None);
}
