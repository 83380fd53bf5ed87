//! Input an attacker (or a confused client) sends: answered with a 4xx problem document, never a
//! 5xx, and never taken for something else.

use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::*;

/// `body` sent with `content_type` (none: no header).
async fn send(
    client: &Client,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut req = Request::builder().method("POST").uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let res = client
        .app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        ct,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn json_routes_take_json_alone() {
    let client = Client::new().await;
    let body = json!({"filename": "a.txt", "size": 3}).to_string();
    // What a cross-site form can send: form and text types. And a body with no type at all.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, content_type, problem) = send(&client, "/uploads", ct, &body).await;
        assert_eq!(status, 415, "{ct:?}: {problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["type"], "/problems/unsupported-media-type");
    }
    let (status, _, created) = send(
        &client,
        "/uploads",
        Some("application/json; charset=utf-8"),
        &body,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // An empty body needs no type: `complete` with nothing to declare.
    let id = created["upload_id"].as_str().unwrap();
    let (status, _, problem) = send(&client, &format!("/uploads/{id}/complete"), None, "").await;
    assert_ne!(status, 415, "{problem}");
    // Uppy's Companion routes too.
    let uppy = json!({"filename": "a.txt", "type": "text/plain", "metadata": {}}).to_string();
    let (status, _, _) = send(&client, "/s3/multipart", Some("text/plain"), &uppy).await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn filenames_that_hide_what_they_are_are_refused_never_a_5xx() {
    let client = Client::new().await;
    for name in [
        "invoice\u{202E}fdp.exe",
        "a\u{200B}.txt",
        "a\u{FFFE}.txt",
        "a\u{FDD0}.bin",
    ] {
        let created = client.create(json!({"filename": name, "size": 3})).await;
        assert_eq!(created.status, 400, "{name:?}: {}", created.body);
        assert_eq!(created.content_type, "application/problem+json");
        assert_eq!(created.body["field"], "filename", "{}", created.body);
        let form = client
            .uppy_params(&format!("filename={}&type=text%2Fplain", enc(name)))
            .await;
        assert_eq!(form.status, 400, "{name:?}: {}", form.body);
    }
    // One spelling per name: the decomposed é is stored composed.
    let created = client
        .create(json!({"filename": "caf\u{65}\u{301}.txt", "size": 3}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        created.body["key"]
            .as_str()
            .unwrap()
            .ends_with("/caf\u{e9}.txt"),
        "{}",
        created.body
    );
}

#[tokio::test]
async fn uppy_metadata_keys_are_matched_whatever_their_case() {
    let client = Client::new().await;
    let wrong = sha256_hex(b"not the file");
    let file = data(2000, 90);
    let p = client
        .uppy_params(&format!(
            "filename=a.txt&type=text%2Fplain&metadata%5BSHA256%5D={wrong}"
        ))
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let fields = p.body["fields"].as_object().unwrap();
    assert_eq!(
        send_form(p.body["url"].as_str().unwrap(), fields, "a.txt", file).await,
        201
    );
    let id = fields["key"].as_str().unwrap().split('/').nth(1).unwrap();
    let record = client.record(id).await.body;
    assert_eq!(
        record["status"], "failed",
        "`SHA256` is the digest: {record}"
    );

    let clash = client
        .uppy_params(
            "filename=a.txt&type=text%2Fplain&metadata%5BProject%5D=a&metadata%5Bproject%5D=b",
        )
        .await;
    assert_eq!(clash.status, 400, "{}", clash.body);
    assert_eq!(clash.content_type, "application/problem+json");
}

#[tokio::test]
async fn uppy_sessions_are_sized_by_their_size_metadata_and_bounded_without_it() {
    let client = Client::new().await;
    let size = 12_000_000u64;
    let c = client
        .uppy_create(json!({"filename": "s.bin", "type": "application/octet-stream", "metadata": {"size": size}}))
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let (id, key) = (
        c.body["uploadId"].as_str().unwrap(),
        c.body["key"].as_str().unwrap(),
    );
    // Cut as Uppy cuts it (5 MiB parts): each URL signs the part's exact length.
    let last = client.uppy_sign(id, key, 3).await;
    assert_eq!(last.status, 200, "{}", last.body);
    let url = last.body["url"].as_str().unwrap();
    assert!(url.contains("content-length"), "{url}");
    let beyond = client.uppy_sign(id, key, 4).await;
    assert_eq!(beyond.status, 400, "{}", beyond.body);
    let record = client.record(id).await.body;
    assert_eq!(record["size"], size, "{record}");

    let bad = client
        .uppy_create(json!({"filename": "s.bin", "metadata": {"size": "twelve"}}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["field"], "metadata.size", "{}", bad.body);
    // A form declaring more than a session may hold is refused before anything is signed.
    let huge = client
        .uppy_params("filename=a.bin&type=text%2Fplain&metadata%5Bsize%5D=999999999999999")
        .await;
    assert_eq!(huge.status, 413, "{}", huge.body);
}
