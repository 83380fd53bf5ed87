//! The contract: the OpenAPI document the router serves, the problem pages its `type`s resolve
//! to, and the API reference at `/docs`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use vu_functions::http::openapi;
use vu_functions::http::problem::Slug;

use crate::helpers::*;

async fn get(app: &Router, uri: &str) -> (u16, String, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_router_serves_the_document_naming_every_route() {
    let client = Client::new().await;
    let (status, ct, body) = get(&client.app, "/openapi.json").await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc, openapi::document());
    assert_eq!(doc["openapi"], "3.1.0");
    // Each documented path answers something other than "no such route" on its methods.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{upload_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{part_number}", "1")
            .replace("{slug}", "wrong-state");
        for method in item.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let res = client.app.clone().oneshot(req).await.unwrap();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_ne!(answer["type"], "/problems/no-route", "{method} {path}");
            assert_ne!(
                answer["type"], "/problems/method-not-allowed",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_problem_type_resolves_to_its_page() {
    let client = Client::new().await;
    for kind in Slug::ALL {
        let (status, ct, html) = get(&client.app, &format!("/problems/{}", kind.as_str())).await;
        assert_eq!(status, 200, "{kind:?}");
        assert!(ct.starts_with("text/html"), "{kind:?}: {ct}");
        let (title, _, _) = kind.page();
        assert!(html.contains("What happened") && html.contains("What to do"));
        assert!(html.contains(title), "{kind:?}");
    }
    let (status, ct, body) = get(&client.app, "/problems/no-such-thing").await;
    assert_eq!(
        (status, ct.as_str()),
        (404, "application/problem+json"),
        "{body}"
    );
    // A type the API answers with resolves: an unknown upload's.
    let (_, _, body) = get(&client.app, "/uploads/01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "/problems/not-found");
    let (status, _, _) = get(&client.app, problem["type"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_local_server_renders_the_document_at_docs() {
    let client = Client::new().await;
    let web = std::path::Path::new(crate::helpers::REPO).join("web");
    let app = vu_functions::http::with_page(client.app.clone(), &web);
    let (status, ct, html) = get(&app, "/docs").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.contains("spec-url=\"/openapi.json\""), "{html}");
    assert!(html.contains("/vendor/redoc.standalone.js"), "{html}");
    // The API still answers beside the page.
    let (status, _, _) = get(&app, "/openapi.json").await;
    assert_eq!(status, 200);
}
