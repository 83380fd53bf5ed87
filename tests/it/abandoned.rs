//! On moto: a session whose multipart upload S3 aborted (the bucket's lifecycle, a day after it
//! started) ends `aborted` by its owner's next request, or by the sweep once it is older than
//! `ABANDONED_AFTER` (S3's own multipart upload aborted too if the lifecycle had not yet).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

use crate::helpers::*;
use vu_core::service::{ABANDONED_AFTER, Budget};

/// The multipart uploads S3 holds under `id`'s key.
async fn multipart_uploads(id: &str) -> Vec<(String, String)> {
    let out = s3_client()
        .await
        .list_multipart_uploads()
        .bucket(bucket())
        .prefix(format!("uploads/{id}/"))
        .send()
        .await
        .unwrap();
    out.uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default().to_owned(),
                u.upload_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn created(client: &Client) -> String {
    let c = client
        .create(json!({"filename": "left.bin", "size": 6 * MIB}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    c.body["upload_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_whose_multipart_upload_s3_aborted_ends_aborted_on_its_owners_next_request() {
    let client = Client::over(uploads_with(test_limits(), small_ranges()).await);
    let id = created(&client).await;
    // What the bucket's lifecycle rule does a day later.
    for (key, upload) in multipart_uploads(&id).await {
        s3_client()
            .await
            .abort_multipart_upload()
            .bucket(bucket())
            .key(key)
            .upload_id(upload)
            .send()
            .await
            .unwrap();
    }
    let resume = client.parts(&id).await;
    assert_eq!(resume.status, 409, "{}", resume.body);
    let record = client.record(&id).await;
    assert_eq!(record.body["status"], "aborted", "{}", record.body);
}

#[tokio::test]
async fn the_sweep_closes_a_session_older_than_its_abort_age() {
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let expired = created(&client).await;
    let aged = created(&client).await;
    let young = created(&client).await;
    assert_eq!(multipart_uploads(&expired).await.len(), 1);
    // `expired`: its session's time is up (its multipart upload left, as when the lifecycle runs
    // late); `aged`: older than `ABANDONED_AFTER` but S3 still holds its upload. Their expiry,
    // which the index sorts pending sessions by, moved back by that much.
    let ttl = i64::try_from(test_limits().session_ttl.as_secs()).unwrap();
    age_by(&expired, ttl + 60).await;
    age_by(
        &aged,
        i64::try_from(ABANDONED_AFTER.as_secs()).unwrap() + 60,
    )
    .await;

    uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(client.record(&expired).await.body["status"], "aborted");
    assert!(
        multipart_uploads(&expired).await.is_empty(),
        "aborted in S3 too"
    );
    // Age alone never closes an upload S3 still holds (the lifecycle age is a setting).
    assert_eq!(client.record(&aged).await.body["status"], "pending");
    assert_eq!(multipart_uploads(&aged).await.len(), 1);
    assert_eq!(client.record(&young).await.body["status"], "pending");
    assert_eq!(multipart_uploads(&young).await.len(), 1);
}

/// Moves `id`'s expiry (and its place in the sweep's index) back by `secs`.
async fn age_by(id: &str, secs: i64) {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let item = ddb
        .get_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let earlier = AttributeValue::N((expires - secs).to_string());
    ddb.update_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(id.to_owned()))
        .update_expression("SET expires_at = :e, lease_until = :e")
        .expression_attribute_values(":e", earlier)
        .send()
        .await
        .unwrap();
}
