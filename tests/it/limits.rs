//! Per-owner limits on DynamoDB's own expressions: the owner's reservations item, its
//! conditions and its give-backs, one create after another on moto. (Racing creates are
//! `races`' to show, on dynalite: moto checks a condition and applies the write without holding
//! the item between the two, so it serializes the writes to an item only as its threads happen
//! to run; its answers to a race are not DynamoDB's.)

use crate::helpers::*;
use vu_core::domain::{ContentType, Filename, Metadata};
use vu_core::error::Error;
use vu_core::ports::OwnerLimit;
use vu_core::service::NewUpload;
use vu_functions::config::Limits;

fn new_upload(size: u64) -> NewUpload {
    NewUpload {
        filename: Filename::parse("f.bin").unwrap(),
        size,
        content_type: ContentType::default(),
        sha256: None,
        part_size: None,
        metadata: Metadata::default(),
        part_checksums: false,
    }
}

#[tokio::test]
async fn an_owners_limits_hold_on_dynamodb() {
    let uploads = uploads_with(
        Limits {
            max_open_sessions_per_owner: 3,
            max_pending_bytes_per_owner: 10_000,
            ..test_limits()
        },
        small_ranges(),
    )
    .await;
    let owner = format!("owner-{}", ulid::Ulid::new());
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(uploads.create(&owner, new_upload(1000)).await.unwrap());
    }
    let fourth = uploads.create(&owner, new_upload(1000)).await.unwrap_err();
    assert!(
        matches!(fourth, Error::OverLimit(OwnerLimit::OpenSessions(3))),
        "{fourth:?}"
    );
    assert!(
        uploads
            .create("someone-else", new_upload(1000))
            .await
            .is_ok(),
        "per owner"
    );
    // Aborting one gives its place back; bytes are limited too (2,000 held).
    uploads
        .abort(&owner, created[0].record.upload_id)
        .await
        .unwrap();
    let too_big = uploads.create(&owner, new_upload(8_001)).await.unwrap_err();
    assert!(
        matches!(too_big, Error::OverLimit(OwnerLimit::PendingBytes(10_000))),
        "{too_big:?}"
    );
    uploads.create(&owner, new_upload(8_000)).await.unwrap();
    let full = uploads.create(&owner, new_upload(1)).await.unwrap_err();
    assert!(matches!(full, Error::OverLimit(_)), "{full:?}");
}

/// `ALLOWED_CONTENT_TYPES` through the router: every create route answers a type outside it
/// `415` (a type never declared is `application/octet-stream`), and takes one inside it.
#[tokio::test]
async fn every_create_route_refuses_a_content_type_outside_the_allow_list() {
    use serde_json::json;
    let client = Client::with_limits(Limits {
        allowed_content_types: vu_core::domain::AllowedContentTypes::parse(
            "image/*,application/pdf",
        )
        .unwrap(),
        // `POST /s3/multipart` without a size, too.
        unsized_sessions: true,
        ..test_limits()
    })
    .await;
    let refused = [
        (
            "POST /uploads",
            client
                .create(json!({"filename": "a.html", "size": 10, "content_type": "text/html"}))
                .await,
        ),
        (
            "POST /uploads, no content_type",
            client
                .create(json!({"filename": "a.bin", "size": 10}))
                .await,
        ),
        (
            "POST /s3/multipart",
            client
                .uppy_create(json!({"filename": "a.mp4", "type": "video/mp4", "metadata": {}}))
                .await,
        ),
        (
            "POST /s3/multipart, sized",
            client
                .uppy_create(json!({"filename": "a.mp4", "type": "video/mp4",
                                    "metadata": {"size": "10"}}))
                .await,
        ),
        (
            "GET /s3/params",
            client.uppy_params("filename=a.html&type=text%2Fhtml").await,
        ),
    ];
    for (route, a) in refused {
        assert_eq!(a.status, 415, "{route}: {}", a.body);
        assert_eq!(a.content_type, "application/problem+json", "{route}");
        assert_eq!(
            a.body["type"], "/problems/content-type-not-allowed",
            "{route}"
        );
        assert_eq!(
            a.body["allowed_content_types"],
            json!(["image/*", "application/pdf"]),
            "{route}"
        );
    }

    // Allowed (whatever the case and parameters): created, and S3 holds the declared type.
    let file = data(1000, 3);
    let c = client
        .create(json!({"filename": "a.png", "size": file.len(), "content_type": "Image/PNG"}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, file.len()).await;
    let done = client.complete(c.body["upload_id"].as_str().unwrap()).await;
    assert_eq!(done.body["status"], "verified", "{}", done.body);
    let head = s3_client()
        .await
        .head_object()
        .bucket(bucket())
        .key(c.body["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("Image/PNG"));

    let u = client
        .uppy_create(json!({"filename": "a.pdf", "type": "application/pdf; x=1", "metadata": {}}))
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let uppy_id = u.body["uploadId"].as_str().unwrap();
    let aborted = client
        .uppy_abort(uppy_id, u.body["key"].as_str().unwrap())
        .await;
    assert_eq!(aborted.status, 200, "{}", aborted.body);
    // A form is held to exactly the declared type (S3 enforces the policy: `presigned` tests).
    let p = client.uppy_params("filename=a.jpg&type=image%2Fjpeg").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["fields"]["Content-Type"], "image/jpeg");
    let form_id = p.body["fields"]["key"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap();
    assert_eq!(client.abort(form_id).await.status, 204);
}
