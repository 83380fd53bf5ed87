//! The HTTP API end to end: the real Router and SDK clients against the S3 + DynamoDB emulator,
//! parts PUT over HTTP to the pre-signed URLs.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use vu_core::domain::UploadId;

const PART: usize = 5 * MIB;

/// Creates a 3-part upload (last part short) and PUTs every part; returns (client, id, file).
async fn uploaded(declared: Option<String>) -> (Client, String, Vec<u8>) {
    let client = Client::new().await;
    let file = data(2 * PART + 1234, 7);
    let sha = declared.unwrap_or_else(|| sha256_hex(&file));
    let c = client
        .create(json!({"filename": "dir/archive.tar", "size": file.len(), "part_size": PART, "sha256": sha,
                       "content_type": "application/x-tar", "metadata": {"project": "apollo"}}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    put_all(&c.body, &file, PART).await;
    (client, id, file)
}

#[tokio::test]
async fn three_part_upload_is_verified_and_recorded_in_dynamodb() {
    let client = Client::new().await;
    let file = data(2 * PART + 1234, 1);
    let sha = sha256_hex(&file);
    let c = client
        .create(json!({"filename": "C:\\fakepath\\big file.bin", "size": file.len(), "part_size": PART, "sha256": sha}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["upload_id"].as_str().unwrap();
    assert_eq!(c.body["key"], format!("uploads/{id}/big file.bin"));
    assert_eq!(c.body["part_count"], 3);
    let parts = c.body["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let lens: Vec<_> = parts
        .iter()
        .map(|p| p["headers"]["content-length"].clone())
        .collect();
    assert_eq!(
        lens,
        [
            json!(PART.to_string()),
            json!(PART.to_string()),
            json!("1234")
        ]
    );
    put_all(&c.body, &file, PART).await;

    let done = client.complete(id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "verified");
    assert_eq!(done.body["sha256"], sha);
    assert_eq!(done.body["expires_at"], Value::Null);
    assert!(done.body["etag"].as_str().unwrap().ends_with("-3"));

    // What DynamoDB holds, read directly.
    let sdk = sdk().await;
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["status"].as_s().unwrap(), "verified");
    assert_eq!(item["sha256"].as_s().unwrap(), &sha);
    assert_eq!(item["expected_sha256"].as_s().unwrap(), &sha);
    assert_eq!(item["size"].as_n().unwrap(), &file.len().to_string());
    assert!(
        !item.contains_key("expires_at"),
        "finished records drop their TTL"
    );
    // And the object in S3 is the file.
    let obj = s3_client()
        .await
        .get_object()
        .bucket(bucket())
        .key(format!("uploads/{id}/big file.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        obj.body.collect().await.unwrap().into_bytes().as_ref(),
        file.as_slice()
    );

    // Completing again answers the same result without verifying again.
    let again = client.complete(id).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["verified_at"], done.body["verified_at"]);
    assert_eq!(again.body["updated_at"], done.body["updated_at"]);
    let got = client.record(id).await;
    assert_eq!(got.body, done.body);
    // A finished upload signs no more parts and cannot be aborted.
    let more = client.sign(id, json!({"part_numbers": [1]})).await;
    assert_eq!(more.status, 409);
    assert_eq!(client.abort(id).await.status, 409);
}

#[tokio::test]
async fn mismatching_digest_fails_and_deletes_the_object() {
    let wrong = sha256_hex(b"not the file");
    let (client, id, _) = uploaded(Some(wrong.clone())).await;
    let done = client.complete(&id).await;
    assert_eq!(done.status, 422, "{}", done.body);
    assert_eq!(done.content_type, "application/problem+json");
    assert_eq!(done.body["type"], "/problems/verification-failed");
    let record = &done.body["upload"];
    assert_eq!(record["status"], "failed");
    assert_eq!(record["expected_sha256"], wrong);
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("sha256 mismatch")
    );
    assert_ne!(record["sha256"], wrong);

    assert!(
        !object_exists(record["key"].as_str().unwrap()).await,
        "no unverified bytes may stay under the key"
    );

    let again = client.complete(&id).await;
    assert_eq!(again.status, 422);
    assert_eq!(again.body["upload"], *record);
}

#[tokio::test]
async fn abort_stops_the_upload_everywhere() {
    let (client, id, _) = uploaded(None).await;
    let record = client.record(&id).await.body;
    assert_eq!(client.abort(&id).await.status, 204);
    let got = client.record(&id).await;
    assert_eq!(got.body["status"], "aborted");
    // The multipart upload is gone from S3.
    let s3 = s3_client().await;
    let listed = s3
        .list_multipart_uploads()
        .bucket(bucket())
        .prefix(record["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(listed.uploads().is_empty());

    let complete = client.complete(&id).await;
    // What to do is data: this conflict is final (no Retry-After), the upload's status named.
    assert_eq!(
        (complete.status.as_u16(), complete.body["type"].clone()),
        (409, json!("/problems/wrong-state"))
    );
    assert_eq!(complete.body["upload_status"], "aborted");
    assert!(complete.headers.get("retry-after").is_none());
    assert_eq!(client.parts(&id).await.status, 409);
    let sign = client.sign(&id, json!({"part_numbers": [1]})).await;
    assert_eq!(sign.status, 409);
    // Aborting again is harmless.
    assert_eq!(client.abort(&id).await.status, 204);
}

#[tokio::test]
async fn resume_from_the_parts_s3_already_holds() {
    let client = Client::new().await;
    let file = data(2 * PART + 99, 3);
    let c = client
        .create(json!({"filename": "resume.bin", "size": file.len(), "part_size": PART, "sha256": sha256_hex(&file)}))
        .await;
    let id = c.body["upload_id"].as_str().unwrap();
    let parts = c.body["parts"].as_array().unwrap();
    // Parts 1 and 3 land; the connection "drops" before part 2.
    let (_, etag1) = put_part(&parts[0], slice(&file, PART, 1)).await;
    put_part(&parts[2], slice(&file, PART, 3)).await;

    let early = client.complete(id).await;
    assert_eq!(early.status, 409);
    assert_eq!(early.body["type"], "/problems/upload-incomplete");
    assert_eq!(early.body["missing_parts"], json!([2]));
    assert_eq!(client.record(id).await.body["status"], "pending");

    // A resuming client asks what S3 has, then signs and sends only what is missing.
    let held = client.parts(id).await;
    assert_eq!(held.status, 200);
    let held = held.body["parts"].as_array().unwrap().clone();
    let numbers: Vec<_> = held
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);
    assert_eq!(held[0]["etag"].as_str(), etag1.as_deref());
    assert_eq!(held[1]["size"], 99);
    let signed = client.sign(id, json!({"part_numbers": [2]})).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!(
        put_part(&signed.body["parts"][0], slice(&file, PART, 2))
            .await
            .0,
        200
    );

    let done = client.complete(id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["sha256"], sha256_hex(&file));
}

#[tokio::test]
async fn two_concurrent_completes_verify_once_and_agree() {
    let (client, id, file) = uploaded(None).await;
    // Under CPU contention one may wait out `COMPLETION_WAIT_SECONDS` (202, the record still
    // `completing`), or lose the completion to a take-over (it then answers the new holder's
    // verdict): never a 409. Polled as a client does, both end with the one verified record.
    let (a, b) = tokio::join!(client.complete_settled(&id), client.complete_settled(&id));
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (200, 200),
        "{} {}",
        a.body,
        b.body
    );
    assert_eq!(a.body["sha256"], sha256_hex(&file));
    // One verification wrote the record; both answers are that one write.
    assert_eq!(a.body, b.body);
}

#[tokio::test]
async fn complete_checks_the_parts_the_client_lists() {
    let (client, id, _) = uploaded(None).await;
    let held = client.parts(&id).await.body["parts"].clone();
    let listed: Vec<Value> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"part_number": p["part_number"], "etag": format!("\"{}\"", p["etag"].as_str().unwrap())}))
        .collect();

    let mut wrong = listed.clone();
    wrong[1]["etag"] = json!("\"0123456789abcdef0123456789abcdef\"");
    let r = client.complete_with(&id, json!({ "parts": wrong })).await;
    assert_eq!(
        (r.status.as_u16(), r.body["field"].clone()),
        (400, json!("parts")),
        "{}",
        r.body
    );
    let r = client
        .complete_with(&id, json!({ "parts": &listed[..2] }))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = client
        .complete_with(&id, json!({ "parts": [listed[0], listed[0], listed[1]] }))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Nothing above changed the session.
    assert_eq!(client.record(&id).await.body["status"], "pending");

    let r = client.complete_with(&id, json!({ "parts": listed })).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_part_of_the_wrong_size_keeps_the_upload_pending() {
    let client = Client::new().await;
    let file = data(PART + 10, 5);
    let c = client
        .create(json!({"filename": "f", "size": file.len(), "part_size": PART}))
        .await;
    let id = c.body["upload_id"].as_str().unwrap();
    let parts = c.body["parts"].as_array().unwrap();
    assert_eq!(put_part(&parts[0], slice(&file, PART, 1)).await.0, 200);
    // The emulator does not check signatures, so a short part lands there; real S3 (and the
    // s3s tests) refuse it at the PUT because Content-Length is signed.
    assert_eq!(put_part(&parts[1], vec![1, 2, 3]).await.0, 200);
    let r = client.complete(id).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["type"], "/problems/part-size-mismatch");
    assert_eq!(client.record(id).await.body["status"], "pending");
    // Sending the right bytes again fixes it.
    assert_eq!(put_part(&parts[1], slice(&file, PART, 2)).await.0, 200);
    assert_eq!(client.complete(id).await.status, 200);
}

#[tokio::test]
async fn part_checksums_are_signed_and_passed_to_complete() {
    let client = Client::new().await;
    let file = data(PART + 4321, 9);
    let c = client
        .create(json!({"filename": "sums.bin", "size": file.len(), "part_size": PART, "part_checksums": true}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(
        c.body["parts"],
        json!([]),
        "URLs need the parts' digests first"
    );
    let id = c.body["upload_id"].as_str().unwrap();

    let missing = client
        .sign(id, json!({"part_numbers": [1, 2], "sha256": {"1": "x"}}))
        .await;
    assert_eq!(missing.status, 400);
    let b64 = |b: &[u8]| {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b))
    };
    let (p1, p2) = (slice(&file, PART, 1), slice(&file, PART, 2));
    let signed = client
        .sign(
            id,
            json!({"part_numbers": [1, 2], "sha256": {"1": b64(&p1), "2": b64(&p2)}}),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let parts = signed.body["parts"].as_array().unwrap();
    assert_eq!(parts[0]["headers"]["x-amz-checksum-sha256"], b64(&p1));
    assert!(
        parts[0]["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-SignedHeaders=content-length%3Bhost%3Bx-amz-checksum-sha256")
    );
    assert_eq!(put_part(&parts[0], p1).await.0, 200);
    assert_eq!(put_part(&parts[1], p2).await.0, 200);

    let done = client.complete(id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["sha256"], sha256_hex(&file));
}

#[tokio::test]
async fn create_signs_at_most_the_first_hundred_parts_and_more_on_request() {
    let client = Client::with_limits(vu_functions::config::Limits {
        max_object_bytes: 1 << 40,
        ..test_limits()
    })
    .await;
    let size = 250u64 * 5 * 1024 * 1024 + 1;
    let c = client
        .create(json!({"filename": "big", "size": size, "part_size": PART}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.body["part_count"], 251);
    assert_eq!(c.body["parts"].as_array().unwrap().len(), 100);
    let id = c.body["upload_id"].as_str().unwrap();
    let last = client.sign(id, json!({"part_numbers": [251, 101]})).await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!(last.body["parts"][0]["part_number"], 251);
    assert_eq!(last.body["parts"][0]["headers"]["content-length"], "1");
    let over = client.sign(id, json!({"part_numbers": [252]})).await;
    assert_eq!(over.status, 400);
    // Without a part_size the server picks one that keeps the count within 10,000.
    let huge = client
        .create(json!({"filename": "huge", "size": 1u64 << 40}))
        .await;
    assert_eq!(huge.status, 201, "{}", huge.body);
    assert!(huge.body["part_count"].as_u64().unwrap() <= 10_000);
    let huge_id = huge.body["upload_id"].as_str().unwrap();
    assert_eq!(client.abort(huge_id).await.status, 204);
}

#[tokio::test]
async fn bad_inputs_get_typed_problems_and_never_a_5xx() {
    let client = Client::new().await;
    let c = client
        .create(json!({"filename": "ok.bin", "size": 10}))
        .await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let parts = &format!("/uploads/{id}/parts");
    let complete = &format!("/uploads/{id}/complete");
    let unknown = &format!("/uploads/{}", UploadId::generate());
    let unknown_parts = &format!("{unknown}/parts");
    let unknown_complete = &format!("{unknown}/complete");
    // (method, uri, body (a JSON string is sent as the raw body), expected status, the field the
    // problem must name)
    type Case<'a> = (&'a str, &'a str, Option<Value>, u16, Option<&'a str>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("POST", "/uploads", Some(json!("{not json")), 400, None),
        ("POST", "/uploads", Some(json!({"size": 10})), 400, None),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": -1})), 400, Some("size")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": "ten"})), 400, Some("size")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1u64 << 50})), 413, None),
        ("POST", "/uploads", Some(json!({"filename": "", "size": 1})), 400, Some("filename")),
        ("POST", "/uploads", Some(json!({"filename": "a/", "size": 1})), 400, Some("filename")),
        ("POST", "/uploads", Some(json!({"filename": "a\u{0}b", "size": 1})), 400, Some("filename")),
        ("POST", "/uploads", Some(json!({"filename": "x".repeat(300), "size": 1})), 400, Some("filename")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "sha256": "abc"})), 400, Some("sha256")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "part_size": 1024})), 400, Some("part_size")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "content_type": "nope"})), 400, Some("content_type")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "metadata": {"Bad Key": "v"}})), 400, Some("metadata.Bad Key")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "metadata": "x"})), 400, Some("metadata")),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 1, "sha-256": "x"})), 400, None),
        ("POST", "/uploads", Some(json!({"filename": "a", "size": 60_000_000u64, "part_size": 5_242_880u64 * 2, "extra": 1})), 400, None),
        ("POST", parts, Some(json!({"part_numbers": []})), 400, Some("part_numbers")),
        ("POST", parts, Some(json!({"part_numbers": (1..=101).collect::<Vec<_>>()})), 400, Some("part_numbers")),
        ("POST", parts, Some(json!({"part_numbers": [0]})), 400, Some("part_numbers")),
        ("POST", parts, Some(json!({"part_numbers": [2]})), 400, Some("part_numbers")),
        ("POST", parts, Some(json!({"part_numbers": [1, 1]})), 400, Some("part_numbers")),
        ("POST", parts, Some(json!({"part_numbers": [1], "sha256": {"1": "AAAA"}})), 400, Some("sha256.1")),
        ("POST", parts, Some(json!({"part_numbers": [1], "sha256": {"one": "AAAA"}})), 400, Some("sha256.one")),
        ("POST", complete, Some(json!({"parts": [{"part_number": 1}]})), 400, None),
        ("POST", complete, Some(json!({"parts": [{"part_number": 99999, "etag": "x"}]})), 400, Some("parts")),
        ("POST", complete, None, 409, None),
        ("GET", "/uploads/not-an-id", None, 400, Some("upload_id")),
        ("GET", unknown, None, 404, None),
        ("DELETE", unknown, None, 404, None),
        ("POST", unknown_complete, None, 404, None),
        ("GET", unknown_parts, None, 404, None),
        ("GET", "/nope", None, 404, None),
        ("PUT", "/uploads", None, 405, None),
    ];
    for (method, uri, body, status, field) in cases {
        let r = match body {
            Some(Value::String(s)) => {
                raw(&client.app, method, uri, axum::body::Body::from(s)).await
            }
            other => call(&client.app, method, uri, other).await,
        };
        let what = format!("{method} {uri}: {}", r.body);
        assert_eq!(r.status.as_u16(), status, "{what}");
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        assert_eq!(r.body["status"], status, "{what}");
        assert!(
            r.body["title"].is_string()
                && r.body["detail"].is_string()
                && r.body["type"].is_string(),
            "{what}"
        );
        if let Some(field) = field {
            assert_eq!(r.body["field"], field, "{what}");
        }
    }
    let huge = raw(
        &client.app,
        "POST",
        "/uploads",
        axum::body::Body::from(vec![b' '; 100 * 1024]),
    )
    .await;
    assert_eq!(huge.status, 413);
    assert_eq!(huge.content_type, "application/problem+json");
    // None of that touched the session.
    assert_eq!(client.record(&id).await.body["status"], "pending");
}

#[tokio::test]
async fn healthz_answers() {
    let client = Client::new().await;
    let r = call(&client.app, "GET", "/healthz", None).await;
    assert_eq!(
        (r.status.as_u16(), r.body["status"].clone()),
        (200, json!("ok"))
    );
}

#[tokio::test]
async fn an_empty_file_uploads_and_verifies() {
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let client = Client::new().await;
    let c = client
        .create(json!({"filename": "empty.txt", "size": 0, "sha256": EMPTY}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(
        (
            c.body["part_count"].clone(),
            c.body["parts"][0]["headers"]["content-length"].clone()
        ),
        (json!(1), json!("0"))
    );
    put_all(&c.body, &[], PART).await;
    let id = c.body["upload_id"].as_str().unwrap();
    let done = client.complete(id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        (
            done.body["status"].clone(),
            done.body["sha256"].clone(),
            done.body["size"].clone()
        ),
        (json!("verified"), json!(EMPTY), json!(0))
    );
}

/// With `KMS_KEY_ARN`, the service asks for SSE-KMS under that key (and a bucket key) where it
/// creates objects, so clients send no encryption header: parts PUT and forms POST exactly as
/// before, the verification reads the object back, and the download URL fetches it.
#[tokio::test]
async fn with_a_kms_key_uploads_and_forms_ask_for_it_and_still_verify() {
    use std::sync::Arc;
    use vu_aws::{DynamoSessions, S3Objects};
    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let sdk = sdk().await;
    let objects = S3Objects::new(&sdk, bucket(), std::time::Duration::from_secs(20))
        .unwrap()
        .with_kms_key(Some(ARN.into()));
    let uploads = vu_core::service::Uploads::new(
        Arc::new(objects),
        Arc::new(DynamoSessions::new(&sdk, table())),
        test_limits(),
        small_ranges(),
    );
    let client = Client::over(Arc::new(uploads));
    let encryption = |key: String| async move {
        let head = s3_client()
            .await
            .head_object()
            .bucket(bucket())
            .key(key)
            .send()
            .await
            .unwrap();
        (
            head.server_side_encryption().map(|e| e.as_str().to_owned()),
            head.ssekms_key_id().map(str::to_owned),
        )
    };
    let kms = (Some("aws:kms".to_owned()), Some(ARN.to_owned()));

    let file = data(PART + 10, 5);
    let c = client
        .create(
            json!({"filename": "secret.bin", "size": file.len(), "part_size": PART,
                       "sha256": sha256_hex(&file)}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    for p in c.body["parts"].as_array().unwrap() {
        let headers = p["headers"].as_object().unwrap();
        assert_eq!(headers.keys().collect::<Vec<_>>(), ["content-length"]);
    }
    put_all(&c.body, &file, PART).await;
    let id = c.body["upload_id"].as_str().unwrap();
    let done = client.complete(id).await;
    assert_eq!(done.body["status"], "verified", "{}", done.body);
    assert_eq!(
        encryption(c.body["key"].as_str().unwrap().to_owned()).await,
        kms
    );
    let download = client.download(id).await;
    assert_eq!(download.status, 200, "{}", download.body);
    let got = reqwest::get(download.body["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got.bytes().await.unwrap()), sha256_hex(&file));

    // A form carries the encryption fields itself; posted as given, it verifies.
    let (form_id, form_key, form) = signed_form(&client, "secret.txt", "").await;
    assert_eq!(form["fields"]["x-amz-server-side-encryption"], "aws:kms");
    assert_eq!(
        form["fields"]["x-amz-server-side-encryption-aws-kms-key-id"],
        ARN
    );
    let body = data(3000, 6);
    post_signed(&form, &body).await;
    let read = client.record(&form_id).await;
    assert_eq!(read.body["status"], "verified", "{}", read.body);
    assert_eq!(read.body["sha256"], sha256_hex(&body));
    // moto stores a form's object without its encryption fields (S3 applies them); that S3
    // refuses a form that drops or changes them is `presigned`'s to show.
    assert!(object_exists(&form_key).await);
}
