//! Every event in `events/` goes through `lambda_http`'s / `aws_lambda_events`' deserializers and
//! the real handlers against the emulator, so an event that stops matching the code fails CI.
//! Also: each upload belongs to the authorizer's `sub`, and nobody else can see or touch it.

use std::path::Path;

use crate::helpers::*;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vu_functions::http::CallerPolicy;

const PLACEHOLDER: &str = "01JF0000000000000000000000";
const ROUTES: [&str; 7] = [
    "create-upload",
    "list-uploads",
    "sign-parts",
    "list-parts",
    "get-upload",
    "complete-upload",
    "abort-upload",
];

fn event(dir: &str, name: &str) -> Value {
    let path = Path::new(crate::helpers::REPO)
        .join(dir)
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn with_id(event: &Value, id: &str) -> Value {
    serde_json::from_str(&event.to_string().replace(PLACEHOLDER, id)).unwrap()
}

fn with_sub(mut event: Value, sub: Option<&str>) -> Value {
    let ctx = &mut event["requestContext"]["authorizer"];
    let claims = if ctx.get("jwt").is_some() {
        &mut ctx["jwt"]["claims"]
    } else {
        &mut ctx["claims"]
    };
    match sub {
        Some(s) => claims["sub"] = json!(s),
        None => {
            claims.as_object_mut().unwrap().remove("sub");
        }
    }
    event
}

/// Runs an API Gateway event through the router exactly as `lambda_http::run` would hand it over.
async fn invoke(app: &Router, event: &Value) -> (u16, Value) {
    let req =
        lambda_http::request::from_str(&event.to_string()).expect("lambda_http accepts the event");
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn create(app: &Router, dir: &str, sub: &str) -> (String, Value) {
    let (status, body) = invoke(app, &with_sub(event(dir, "create-upload"), Some(sub))).await;
    assert_eq!(status, 201, "{dir}/create-upload: {body}");
    (body["upload_id"].as_str().unwrap().to_owned(), body)
}

async fn walk_routes(app: &Router, dir: &str) {
    let (id, created) = create(app, dir, "user-123").await;
    assert_eq!(created["part_count"], 1);
    // The events' body declares the SHA-256 of 1024 × 'a'.
    assert_eq!(
        put_part(&created["parts"][0], vec![b'a'; 1024]).await.0,
        200
    );

    for route in ["list-uploads", "sign-parts", "list-parts", "get-upload"] {
        let (status, body) = invoke(app, &with_id(&event(dir, route), &id)).await;
        assert_eq!(status, 200, "{dir}/{route}: {body}");
        if route == "get-upload" {
            assert_eq!(body["owner"], "user-123");
        }
        if route == "list-uploads" {
            assert!(
                body["uploads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u["upload_id"] == id.as_str())
            );
        }
    }
    let (status, body) = invoke(app, &with_id(&event(dir, "complete-upload"), &id)).await;
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("verified")),
        "{dir}/complete-upload: {body}"
    );

    let (other, _) = create(app, dir, "user-123").await;
    let (status, body) = invoke(app, &with_id(&event(dir, "abort-upload"), &other)).await;
    assert_eq!(status, 204, "{dir}/abort-upload: {body}");
}

async fn other_callers_see_nothing(app: &Router, dir: &str) {
    let (id, _) = create(app, dir, "alice").await;
    for route in &ROUTES[2..] {
        let theirs = with_id(&event(dir, route), &id);
        let (status, body) = invoke(app, &with_sub(theirs.clone(), Some("mallory"))).await;
        assert_eq!(status, 404, "{dir}/{route} as another owner: {body}");
        assert_eq!(
            body,
            invoke(
                app,
                &with_sub(
                    with_id(
                        &event(dir, route),
                        &vu_core::domain::UploadId::generate().to_string()
                    ),
                    Some("mallory")
                )
            )
            .await
            .1,
            "exactly as for an unknown id"
        );
        for missing in [None, Some(""), Some("  ")] {
            let (status, body) = invoke(app, &with_sub(theirs.clone(), missing)).await;
            assert_eq!(status, 401, "{dir}/{route} without a sub claim: {body}");
        }
    }
    let (_, listed) = invoke(app, &with_sub(event(dir, "list-uploads"), Some("mallory"))).await;
    assert!(
        listed["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["owner"] == "mallory"),
        "{listed}"
    );
    // The upload is untouched and still alice's.
    let (status, body) = invoke(
        app,
        &with_sub(with_id(&event(dir, "get-upload"), &id), Some("alice")),
    )
    .await;
    assert_eq!((status, body["status"].clone()), (200, json!("pending")));
}

#[test]
fn api_events_run_through_the_handler() {
    // Deployed behind a REST API, the function runs with this set (template.yaml) so that the
    // stage name is not part of the routed path. Other tests run on other threads of this process,
    // so it cannot be set here safely: without it, the test runs itself in a child that has it.
    const IGNORE_STAGE: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";
    if std::env::var_os(IGNORE_STAGE).is_none() {
        let name = "events::api_events_run_through_the_handler";
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1"])
            .env(IGNORE_STAGE, "true")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&child.stdout);
        print!("{out}{}", String::from_utf8_lossy(&child.stderr));
        assert!(child.status.success(), "{name} failed in its child process");
        assert!(out.contains("1 passed"), "the child ran {name}");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let uploads = uploads_with(test_limits(), small_ranges()).await;
        let app = vu_functions::http::router(uploads.clone(), CallerPolicy::AuthorizerRequired);
        for dir in ["events", "events/rest-v1"] {
            let names: Vec<_> = std::fs::read_dir(Path::new(crate::helpers::REPO).join(dir))
                .unwrap()
                .filter_map(|e| e.unwrap().file_name().into_string().ok())
                .filter(|n| n.ends_with(".json") && !n.starts_with("s3-") && !n.starts_with("sqs-"))
                .map(|n| n.trim_end_matches(".json").to_owned())
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            let mut expected: Vec<_> = ROUTES.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(sorted, expected, "{dir} holds one event per route");
            walk_routes(&app, dir).await;
            other_callers_see_nothing(&app, dir).await;
        }
        uppy_events(&app).await;
        s3_events(&uploads).await;
        listing_pages_newest_first(&app).await;
    });
}

/// `events/uppy/`: Uppy's Companion routes as API Gateway delivers them (query strings included).
async fn uppy_events(app: &Router) {
    let dir = "events/uppy";
    let mut names: Vec<_> = std::fs::read_dir(Path::new(crate::helpers::REPO).join(dir))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "abort-multipart.json",
            "complete-multipart.json",
            "create-multipart.json",
            "list-parts.json",
            "params.json",
            "sign-batch.json",
            "sign-part.json"
        ]
    );
    let (status, created) = invoke(app, &event(dir, "create-multipart")).await;
    assert_eq!(status, 200, "{created}");
    let id = created["uploadId"].as_str().unwrap().to_owned();
    let (status, signed) = invoke(app, &with_id(&event(dir, "sign-part"), &id)).await;
    assert_eq!(status, 200, "{signed}");
    let (code, etag) = put_part(
        &json!({"url": signed["url"], "headers": {}}),
        vec![b'a'; 1024],
    )
    .await;
    assert_eq!(code, 200);
    let (status, batch) = invoke(app, &with_id(&event(dir, "sign-batch"), &id)).await;
    assert_eq!(status, 200, "{batch}");
    // The event declares the file's `size` (1,024 bytes: one part), as the example page does.
    assert!(batch["presignedUrls"]["1"].is_string());
    let (status, parts) = invoke(app, &with_id(&event(dir, "list-parts"), &id)).await;
    assert_eq!(
        (status, parts[0]["Size"].clone()),
        (200, json!(1024)),
        "{parts}"
    );
    let complete = event(dir, "complete-multipart")
        .to_string()
        .replace("<etag of part 1>", etag.as_deref().unwrap());
    let (status, done) = invoke(
        app,
        &with_id(&serde_json::from_str(&complete).unwrap(), &id),
    )
    .await;
    assert_eq!(
        (status, done["status"].clone()),
        (200, json!("verified")),
        "{done}"
    );

    let (_, other) = invoke(app, &event(dir, "create-multipart")).await;
    let other = other["uploadId"].as_str().unwrap();
    let (status, body) = invoke(app, &with_id(&event(dir, "abort-multipart"), other)).await;
    assert_eq!(status, 200, "{body}");
    let (status, params) = invoke(app, &event(dir, "params")).await;
    assert_eq!(status, 200, "{params}");
    assert_eq!(params["fields"]["Content-Type"], "text/plain");
    assert!(
        params["fields"]["key"]
            .as_str()
            .unwrap()
            .ends_with("/notes.txt")
    );
}

/// The verifier's event: unknown keys are ignored; a session awaiting verification is verified.
async fn s3_events(uploads: &std::sync::Arc<vu_core::service::Uploads>) {
    let raw = std::fs::read_to_string(
        Path::new(crate::helpers::REPO).join("events/s3-complete-multipart-upload.json"),
    )
    .unwrap();
    let parsed: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&raw).unwrap();
    let lines = handle_s3(uploads, parsed).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "ignored", "{}", lines[0]);

    // Above VERIFY_INLINE_MAX_BYTES, complete answers 202 and the verifier finishes the job.
    let asynchronous = vu_functions::config::Limits {
        verify_inline_max_bytes: 100,
        ..test_limits()
    };
    let api_uploads = uploads_with(asynchronous, small_ranges()).await;
    let client = Client::over(api_uploads);
    let file = data(3000, 4);
    let c = client
        .create(json!({"filename": "later.bin", "size": 3000, "sha256": sha256_hex(&file)}))
        .await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(put_part(&c.body["parts"][0], file.clone()).await.0, 200);
    let done = client.complete(&id).await;
    assert_eq!(
        (done.status.as_u16(), done.body["status"].clone()),
        (202, json!("verifying")),
        "{}",
        done.body
    );
    let again = client.complete(&id).await;
    assert_eq!(again.status.as_u16(), 202);

    let delivered = raw.replace(
        &format!("uploads/{PLACEHOLDER}/archive.tar"),
        &format!("uploads/{id}/later.bin"),
    );
    let parsed: aws_lambda_events::event::s3::S3Event = serde_json::from_str(&delivered).unwrap();
    let lines = handle_s3(uploads, parsed.clone()).await;
    assert_eq!(lines[0]["outcome"], "verified", "{}", lines[0]);
    assert_eq!(lines[0]["sha256"], sha256_hex(&file));
    // S3 delivers events at least once: a second delivery does nothing.
    let lines = handle_s3(uploads, parsed).await;
    assert_eq!(lines[0]["outcome"], "ignored");
    let got = client.record(&id).await;
    assert_eq!(got.body["status"], "verified");
}

async fn listing_pages_newest_first(app: &Router) {
    let owner = format!("pager-{}", vu_core::domain::UploadId::generate());
    let list = |query: &str| {
        let mut e = with_sub(event("events", "list-uploads"), Some(&owner));
        e["rawQueryString"] = json!(query);
        e
    };
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(app, "events", &owner).await.0);
    }
    let gone = ids[1].clone();
    let abort = with_sub(
        with_id(&event("events", "abort-upload"), &gone),
        Some(&owner),
    );
    assert_eq!(invoke(app, &abort).await.0, 204);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let (status, body) = invoke(app, &list(&q)).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(
            body["uploads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["upload_id"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let (_, aborted) = invoke(app, &list("status=aborted")).await;
    let aborted: Vec<_> = aborted["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["upload_id"].clone())
        .collect();
    assert_eq!(aborted, [json!(gone)]);
    for bad in [
        "status=bogus",
        "limit=0",
        "limit=x",
        "cursor=%21%21",
        "color=red",
    ] {
        let (status, body) = invoke(app, &list(bad)).await;
        assert_eq!(
            (status, body["status"].clone()),
            (400, json!(400)),
            "{bad}: {body}"
        );
    }
}
