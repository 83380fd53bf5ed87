//! A signed form POSTed again (its policy still valid) after its session ended: what stays under
//! the key is what the record names, end to end against the emulator's versioned bucket.

use crate::helpers::*;

/// The newest version under `key` (what a replay's event names).
async fn newest_version(key: &str) -> String {
    let out = s3_client()
        .await
        .head_object()
        .bucket(bucket())
        .key(key)
        .send()
        .await
        .unwrap();
    out.version_id().unwrap().to_owned()
}

#[tokio::test]
async fn a_form_replayed_after_verified_leaves_the_verified_bytes_current() {
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let (id, key, form) = signed_form(&client, "a.txt", "").await;
    let a = data(40_000, 31);
    post_signed(&form, &a).await;
    let verified = client.record(&id).await.body;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["sha256"], sha256_hex(&a));
    let version = verified["version_id"].as_str().unwrap().to_owned();

    // The same form again, with other bytes: S3 takes it (the policy is still valid).
    let b = data(40_000, 32);
    post_signed(&form, &b).await;
    assert_eq!(stored_sha256(&key, None).await, Some(sha256_hex(&b)));
    // Even now, the record's version is exactly the bytes it names.
    assert_eq!(
        stored_sha256(&key, Some(&version)).await,
        Some(sha256_hex(&a))
    );
    let replay = newest_version(&key).await;
    let event = s3_event_of_version("s3-post-object.json", &key, Some(&replay));
    let lines = handle_s3(&uploads, event).await;
    assert_eq!(lines[0]["outcome"], "ignored", "{lines:?}");
    assert_eq!(stored_sha256(&key, None).await, Some(sha256_hex(&a)));
    assert_eq!(client.record(&id).await.body, verified, "record unchanged");
    let download = client.download(&id).await;
    assert_eq!(download.status, 200, "{}", download.body);
    assert_eq!(download.body["version_id"], version);
    assert_eq!(download.body["sha256"], sha256_hex(&a));
    // The signed URL fetches the verified version, as an attachment named for the file (S3
    // answers with the signed `response-content-disposition`; the emulator ignores it).
    let url = download.body["url"].as_str().unwrap();
    assert!(url.contains(&format!("versionId={version}")), "{url}");
    assert!(
        url.contains("response-content-disposition=attachment%3B%20filename%3D%22a.txt%22"),
        "{url}"
    );
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&a));
}

#[tokio::test]
async fn a_form_replayed_after_failed_or_aborted_leaves_nothing() {
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let wrong = format!("&{}={}", enc("metadata[sha256]"), sha256_hex(b"not it"));
    let (failed, failed_key, failed_form) = signed_form(&client, "f.txt", &wrong).await;
    post_signed(&failed_form, &data(20_000, 33)).await;
    assert_eq!(client.record(&failed).await.body["status"], "failed");
    let (aborted, aborted_key, aborted_form) = signed_form(&client, "g.txt", "").await;
    assert_eq!(client.abort(&aborted).await.status, 204);

    for (key, form) in [(failed_key, failed_form), (aborted_key, aborted_form)] {
        assert!(!object_exists(&key).await);
        post_signed(&form, &data(20_000, 34)).await;
        let replay = newest_version(&key).await;
        let event = s3_event_of_version("s3-post-object.json", &key, Some(&replay));
        let lines = handle_s3(&uploads, event).await;
        assert_eq!(lines[0]["outcome"], "ignored", "{lines:?}");
        assert!(
            !object_exists(&key).await,
            "unverified bytes stay under {key}"
        );
    }
}

#[tokio::test]
async fn an_empty_file_posted_as_a_form_verifies() {
    let client = Client::over(uploads_with(test_limits(), small_ranges()).await);
    let (id, _key, form) = signed_form(&client, "empty.txt", "").await;
    post_signed(&form, &[]).await;
    let r = client.record(&id).await.body;
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["sha256"], sha256_hex(&[]));
    assert_eq!(r["size"], 0);
}

/// A replay whose clean-up was lost (its events dead-lettered) leaves other bytes current over
/// the verified version; once the form's policy and its clean-ups are over, the sweep makes the
/// verified version current again and deletes the rest.
#[tokio::test]
async fn a_replay_whose_clean_up_was_lost_is_undone_by_the_sweep() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use vu_core::service::Budget;
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let (id, key, form) = signed_form(&client, "lost.txt", "").await;
    let a = data(30_000, 35);
    post_signed(&form, &a).await;
    let verified = client.record(&id).await.body;
    assert_eq!(verified["status"], "verified", "{verified}");
    let version = verified["version_id"].as_str().unwrap().to_owned();
    // Replayed; no event is ever handled for it.
    post_signed(&form, &data(30_000, 36)).await;
    assert_ne!(stored_sha256(&key, None).await, Some(sha256_hex(&a)));

    // Its key's check falls due (the policy and an hour are over): moved back in the table
    // rather than moving the clock of a sweep that shares the table with other tests.
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .update_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(format!("reconcile:{id}")))
        .update_expression("SET lease_until = :past")
        .condition_expression("attribute_exists(upload_id)")
        .expression_attribute_values(":past", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(stored_sha256(&key, None).await, Some(sha256_hex(&a)));
    assert_eq!(
        newest_version(&key).await,
        version,
        "the verified version is current"
    );
    assert_eq!(client.record(&id).await.body, verified, "record unchanged");
}
