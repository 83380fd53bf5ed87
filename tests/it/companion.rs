//! Uppy Companion's S3 routes end to end: the real Router and SDK clients against the emulator,
//! parts PUT and forms POSTed over HTTP exactly as `@uppy/aws-s3` sends them.

use crate::helpers::*;
use serde_json::{Value, json};
use vu_functions::config::Limits;

const PART: usize = 5 * MIB;

/// The API with `limits` and multipart sessions of undeclared size allowed
/// (`ALLOW_UNSIZED_SESSIONS=true`): what the tests of Uppy sessions without `size` need.
async fn allowing_unsized(limits: Limits) -> Client {
    Client::with_limits(Limits {
        unsized_sessions: true,
        ..limits
    })
    .await
}

/// `POST /s3/multipart` as Uppy sends it: `metadata` is the file's meta, `name` and `type` included.
async fn create(client: &Client, filename: &str, meta: Value) -> (String, String) {
    let c = client
        .uppy_create(
            json!({"filename": filename, "type": "application/octet-stream", "metadata": meta}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    let id = c.body["uploadId"].as_str().unwrap().to_owned();
    let key = c.body["key"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("uploads/{id}/{filename}"));
    assert_eq!(c.body["bucket"], bucket());
    (id, key)
}

/// Signs part `n` (Uppy 5+/6's one-part route) and PUTs `bytes` with no extra header, as Uppy does.
async fn send(client: &Client, id: &str, key: &str, n: usize, bytes: Vec<u8>) -> String {
    let s = client.uppy_sign(id, key, n).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert!(s.body["expires"].as_u64().unwrap() > 0);
    let (status, etag) = put_part(&json!({"url": s.body["url"], "headers": {}}), bytes).await;
    assert_eq!(status, 200);
    etag.unwrap()
}

/// Completes with the `parts` the client lists.
async fn complete(client: &Client, id: &str, key: &str, parts: Value) -> Answer {
    client
        .uppy_complete(id, key, Some(json!({ "parts": parts })))
        .await
}

/// Completes with the parts S3 lists (no body), as a client that kept no ETags may.
async fn complete_listed(client: &Client, id: &str, key: &str) -> Answer {
    client.uppy_complete(id, key, None).await
}

#[tokio::test]
async fn uppy_multipart_is_sized_from_its_parts_verified_and_recorded() {
    let client = allowing_unsized(test_limits()).await;
    let file = data(2 * PART + 999, 21);
    let sha = sha256_hex(&file);
    let (id, key) = create(
        &client,
        "clip.mp4",
        json!({"name": "clip.mp4", "type": "video/mp4", "relativePath": "été/clip.mp4", "Project": "apollo", "sha256": sha}),
    )
    .await;
    let e1 = send(&client, &id, &key, 1, slice(&file, PART, 1)).await;
    // The batch route of older Uppy versions signs parts 2 and 3 in one call.
    let b = client.uppy_sign_batch(&id, &key, "2,3").await;
    assert_eq!(b.status, 200, "{}", b.body);
    let mut etags = vec![e1];
    for n in [2, 3] {
        let url = &b.body["presignedUrls"][n.to_string()];
        let (status, etag) =
            put_part(&json!({"url": url, "headers": {}}), slice(&file, PART, n)).await;
        assert_eq!(status, 200);
        etags.push(etag.unwrap());
    }

    let l = client.uppy_parts(&id, &key).await;
    assert_eq!(l.status, 200, "{}", l.body);
    let listed = l.body.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2]["PartNumber"], 3);
    assert_eq!(listed[2]["Size"], 999);
    assert_eq!(
        listed
            .iter()
            .map(|p| p["ETag"].as_str().unwrap().trim_matches('"'))
            .collect::<Vec<_>>(),
        etags
    );

    let parts: Vec<Value> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"PartNumber": i + 1, "ETag": format!("\"{e}\"")}))
        .collect();
    let c = complete(&client, &id, &key, json!(parts)).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["status"], "verified");
    assert_eq!(c.body["sha256"], sha);
    assert_eq!(c.body["key"], key);
    assert_eq!(c.body["location"], format!("s3://{}/{key}", bucket()));

    let r = client.record(&id).await;
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["kind"], "multipart");
    assert_eq!(r.body["size"], file.len());
    assert_eq!(r.body["part_size"], PART);
    assert_eq!(r.body["part_count"], 3);
    assert_eq!(r.body["expected_sha256"], sha);
    // Keys lower-cased, values percent-encoded past printable ASCII (S3 metadata is ASCII).
    assert_eq!(
        r.body["metadata"],
        json!({"project": "apollo", "relativepath": "%C3%A9t%C3%A9/clip.mp4"})
    );

    // Uppy retries a complete whose answer it lost: the same answer again.
    let again = complete(&client, &id, &key, json!(parts)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["sha256"], sha);
}

#[tokio::test]
async fn the_key_must_be_the_sessions_and_bad_input_is_a_typed_400() {
    let client = allowing_unsized(test_limits()).await;
    let (id, key) = create(&client, "k.bin", json!({})).await;
    let other = "uploads/01JF0000000000000000000000/k.bin";
    for (method, uri) in [
        ("GET", format!("/s3/multipart/{id}/1?key={}", enc(other))),
        (
            "GET",
            format!("/s3/multipart/{id}/batch?key={}&partNumbers=1", enc(other)),
        ),
        ("GET", format!("/s3/multipart/{id}?key={}", enc(other))),
        ("DELETE", format!("/s3/multipart/{id}?key={}", enc(other))),
        (
            "POST",
            format!("/s3/multipart/{id}/complete?key={}", enc(other)),
        ),
    ] {
        let a = call(&client.app, method, &uri, Some(json!({"parts": []}))).await;
        assert_eq!(a.status, 404, "{method} {uri}: {}", a.body);
        assert_eq!(a.content_type, "application/problem+json");
    }
    let k = enc(&key);
    let many = (1..=101)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (method, uri, body) in [
        ("GET", format!("/s3/multipart/{id}/0?key={k}"), None),
        ("GET", format!("/s3/multipart/{id}/10001?key={k}"), None),
        ("GET", format!("/s3/multipart/{id}/x?key={k}"), None),
        ("GET", format!("/s3/multipart/{id}/1"), None),
        ("GET", format!("/s3/multipart/not-an-id/1?key={k}"), None),
        (
            "GET",
            format!("/s3/multipart/{id}/batch?key={k}&partNumbers=1,,2"),
            None,
        ),
        (
            "GET",
            format!("/s3/multipart/{id}/batch?key={k}&partNumbers={many}"),
            None,
        ),
        (
            "POST",
            "/s3/multipart".to_owned(),
            Some(json!({"type": "a/b"})),
        ),
        (
            "POST",
            "/s3/multipart".to_owned(),
            Some(json!({"filename": "a", "type": "not a type"})),
        ),
        (
            "POST",
            "/s3/multipart".to_owned(),
            Some(json!({"filename": "a", "metadata": {"sha256": "abc"}})),
        ),
        (
            "POST",
            "/s3/multipart".to_owned(),
            Some(json!({"filename": "a", "metadata": {"tags": ["x"]}})),
        ),
        ("GET", "/s3/params?type=text/plain".to_owned(), None),
        (
            "POST",
            format!("/s3/multipart/{id}/complete?key={k}"),
            Some(json!({"parts": [{"PartNumber": 0, "ETag": "x"}]})),
        ),
    ] {
        let a = call(&client.app, method, &uri, body).await;
        assert_eq!(a.status, 400, "{method} {uri}: {}", a.body);
        assert_eq!(a.content_type, "application/problem+json", "{uri}");
    }
    // Abort: the session is aborted, and its key then signs nothing.
    let d = client.uppy_abort(&id, &key).await;
    assert_eq!((d.status.as_u16(), d.body.clone()), (200, json!({})));
    let s = client.uppy_sign(&id, &key, 1).await;
    assert_eq!(s.status, 409, "{}", s.body);
    let r = client.record(&id).await;
    assert_eq!(r.body["status"], "aborted");
}

#[tokio::test]
async fn a_declared_digest_that_does_not_match_fails_and_deletes_the_object() {
    let client = allowing_unsized(test_limits()).await;
    let file = data(PART + 10, 22);
    let wrong = sha256_hex(b"something else");
    let (id, key) = create(&client, "m.bin", json!({"sha256": wrong})).await;
    let e1 = send(&client, &id, &key, 1, slice(&file, PART, 1)).await;
    let e2 = send(&client, &id, &key, 2, slice(&file, PART, 2)).await;
    let c = complete(
        &client,
        &id,
        &key,
        json!([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]),
    )
    .await;
    assert_eq!(c.status, 422, "{}", c.body);
    assert_eq!(c.content_type, "application/problem+json");
    assert_eq!(c.body["upload"]["status"], "failed");
    assert_eq!(c.body["upload"]["sha256"], sha256_hex(&file));
    assert!(!object_exists(&key).await, "the unverified object is gone");
}

#[tokio::test]
async fn parts_with_a_gap_or_uneven_sizes_are_refused_and_the_session_stays_open() {
    let client = allowing_unsized(test_limits()).await;
    let file = data(2 * PART + 5, 23);
    let (id, key) = create(&client, "gap.bin", json!({})).await;
    send(&client, &id, &key, 1, slice(&file, PART, 1)).await;
    send(&client, &id, &key, 3, slice(&file, PART, 3)).await;
    let no_list = complete_listed(&client, &id, &key).await;
    assert_eq!(no_list.status, 409, "{}", no_list.body);
    assert!(
        no_list.body["detail"]
            .as_str()
            .unwrap()
            .contains("part 2 is missing")
    );

    // A part 2 shorter than part 1 is not a plan Uppy (or S3) would follow.
    send(&client, &id, &key, 2, vec![1; 10]).await;
    let uneven = complete_listed(&client, &id, &key).await;
    assert_eq!(uneven.status, 409, "{}", uneven.body);
    assert!(uneven.body["detail"].as_str().unwrap().contains("part 2"));

    send(&client, &id, &key, 2, slice(&file, PART, 2)).await;
    let ok = complete_listed(&client, &id, &key).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["sha256"], sha256_hex(&file));
}

#[tokio::test]
async fn an_object_over_the_limit_is_refused_at_completion() {
    let limits = Limits {
        max_object_bytes: (PART + MIB) as u64,
        ..test_limits()
    };
    let client = allowing_unsized(limits).await;
    let (id, key) = create(&client, "big.bin", json!({})).await;
    send(&client, &id, &key, 1, data(PART, 24)).await;
    send(&client, &id, &key, 2, data(2 * MIB, 25)).await;
    let c = complete_listed(&client, &id, &key).await;
    assert_eq!(c.status, 413, "{}", c.body);
    let r = client.record(&id).await;
    assert_eq!(r.body["status"], "pending", "still abortable by its owner");
}

/// Multipart uploads S3 holds for a key ending in `/{filename}` (ListMultipartUploads, every page).
async fn multipart_uploads_named(filename: &str) -> usize {
    let s3 = s3_client().await;
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    let mut found = 0;
    loop {
        let page = s3
            .list_multipart_uploads()
            .bucket(bucket())
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .unwrap();
        found += page
            .uploads()
            .iter()
            .filter(|u| {
                u.key()
                    .is_some_and(|k| k.ends_with(&format!("/{filename}")))
            })
            .count();
        if !page.is_truncated().unwrap_or(false) {
            return found;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
    }
}

/// By default (`ALLOW_UNSIZED_SESSIONS` off) Uppy's multipart create without `size` metadata
/// answers `/problems/size-required`, and nothing is created in S3; with `size`, and Uppy's form
/// POST (held by its policy's `content-length-range`), are served as before.
#[tokio::test]
async fn an_unsized_multipart_create_is_refused_with_size_required_by_default() {
    let client = Client::new().await;
    let name = format!("unsized-{}.bin", ulid::Ulid::new());
    let c = client
        .uppy_create(json!({"filename": name, "type": "application/octet-stream",
                            "metadata": {"name": name, "type": "application/octet-stream"}}))
        .await;
    assert_eq!(c.status, 400, "{}", c.body);
    assert_eq!(c.content_type, "application/problem+json");
    assert_eq!(c.body["type"], "/problems/size-required", "{}", c.body);
    assert_eq!(c.body["field"], "metadata.size", "{}", c.body);
    assert_eq!(
        multipart_uploads_named(&name).await,
        0,
        "nothing created in S3"
    );
    let page = call(&client.app, "GET", "/problems/size-required", None).await;
    assert_eq!(page.status, 200);

    // With `size` (as the example page sends it), a sized session.
    let (id, key) = create(&client, &name, json!({"size": 1000})).await;
    assert_eq!(multipart_uploads_named(&name).await, 1);
    assert_eq!(client.uppy_abort(&id, &key).await.status, 200);
    // A form POST with no size is bounded by its policy: still served.
    post_form(&client, "unsized-form.txt", &[], data(1000, 29)).await;
}

/// With `ALLOW_UNSIZED_SESSIONS=true` and the default 5 GiB reservation, the issue's
/// reproduction (100 batch calls on Uppy's route asking for all 10,000 part numbers before any
/// byte lands) gets 1,000 URLs, and no part number past 1,024 (5 GiB / 5 MiB) is ever signed.
#[tokio::test]
async fn an_unsized_session_is_signed_no_part_number_past_its_reservation_at_5_mib() {
    let client = allowing_unsized(Limits {
        max_object_bytes: Limits::default().max_object_bytes,
        ..test_limits()
    })
    .await;
    let (id, key) = create(&client, "open.bin", json!({})).await;
    let mut urls = 0;
    for batch in 0..100 {
        let numbers = (batch * 100 + 1..=batch * 100 + 100)
            .map(|n: usize| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let b = client.uppy_sign_batch(&id, &key, &numbers).await;
        match b.status.as_u16() {
            200 => urls += b.body["presignedUrls"].as_object().unwrap().len(),
            400 => assert_eq!(b.body["field"], "part_numbers", "{}", b.body),
            other => panic!("batch {batch}: {other} {}", b.body),
        }
    }
    assert_eq!(urls, 1000);
    let last = client.uppy_sign_batch(&id, &key, "1001,1024").await;
    assert_eq!(last.status, 200, "{}", last.body);
    let past = client.uppy_sign(&id, &key, 1025).await;
    assert_eq!(past.status, 400, "{}", past.body);
    assert!(
        past.body["detail"]
            .as_str()
            .unwrap()
            .contains("outside 1..=1024"),
        "{}",
        past.body
    );
    assert_eq!(client.uppy_abort(&id, &key).await.status, 200);
}

/// `GET /s3/params`, then the form POST Uppy builds from it (fields, then the file).
async fn post_form(client: &Client, name: &str, meta: &[(&str, &str)], body: Vec<u8>) -> String {
    let mut q = format!("filename={}&type=text%2Fplain", enc(name));
    for (k, v) in meta {
        q.push_str(&format!("&{}={}", enc(&format!("metadata[{k}]")), enc(v)));
    }
    let p = client.uppy_params(&q).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["method"], "POST");
    let fields = p.body["fields"].as_object().unwrap();
    let key = fields["key"].as_str().unwrap().to_owned();
    let policy = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        fields["policy"].as_str().unwrap(),
    )
    .unwrap();
    let policy: Value = serde_json::from_slice(&policy).unwrap();
    assert!(
        policy["conditions"].as_array().unwrap().contains(&json!([
            "content-length-range",
            0,
            1024 * 1024 * 1024
        ])),
        "{policy}"
    );
    let url = p.body["url"].as_str().unwrap();
    assert_eq!(send_form(url, fields, name, body).await, 201);
    key
}

#[tokio::test]
async fn a_form_post_is_verified_by_the_s3_event_or_by_the_next_read() {
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let body = data(300_000, 26);
    let sha = sha256_hex(&body);

    // The deployed path: S3's ObjectCreated:Post event reaches the verifier.
    let key = post_form(
        &client,
        "notes.txt",
        &[("name", "notes.txt"), ("sha256", &sha)],
        body.clone(),
    )
    .await;
    let id = key.split('/').nth(1).unwrap().to_owned();
    let lines = handle_s3(&uploads, s3_event_from("s3-post-object.json", &key)).await;
    assert_eq!(lines[0]["outcome"], "verified", "{lines:?}");
    let r = client.record(&id).await;
    assert_eq!(r.body["kind"], "post");
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["sha256"], sha);
    assert_eq!(r.body["size"], body.len());

    // No event (a local stack, or one lost): the owner's next read verifies it.
    let key = post_form(&client, "again.txt", &[], body.clone()).await;
    let id = key.split('/').nth(1).unwrap().to_owned();
    let r = client.record(&id).await;
    assert_eq!(r.body["status"], "verified", "{}", r.body);
    assert_eq!(r.body["sha256"], sha);

    // A wrong declared digest: failed, and the object deleted.
    let wrong = sha256_hex(b"no");
    let key = post_form(&client, "bad.txt", &[("sha256", &wrong)], body).await;
    let lines = handle_s3(&uploads, s3_event_from("s3-post-object.json", &key)).await;
    assert_eq!(lines[0]["outcome"], "failed", "{lines:?}");
    assert!(!object_exists(&key).await, "the unverified object is gone");

    // Before its object arrives, a posted session has nothing to complete, and no parts.
    let p = client.uppy_params("filename=later.txt").await;
    let key = p.body["fields"]["key"].as_str().unwrap().to_owned();
    let id = key.split('/').nth(1).unwrap().to_owned();
    let c = client.complete(&id).await;
    assert_eq!(c.status, 409, "{}", c.body);
    let l = client.parts(&id).await;
    assert_eq!(l.status, 409, "{}", l.body);
    let g = client.record(&id).await;
    assert_eq!(g.body["status"], "pending");
    let d = client.abort(&id).await;
    assert_eq!(d.status, 204, "{}", d.body);
}

#[tokio::test]
async fn a_client_may_declare_the_digest_when_it_completes() {
    let client = Client::new().await;
    let file = data(PART + 3, 27);
    let start = |sha: Option<String>| {
        let client = client.clone();
        let file = file.clone();
        async move {
            let mut body = json!({"filename": "late.bin", "size": file.len(), "part_size": PART});
            if let Some(s) = sha {
                body["sha256"] = json!(s);
            }
            let c = client.create(body).await;
            assert_eq!(c.status, 201, "{}", c.body);
            put_all(&c.body, &file, PART).await;
            c.body["upload_id"].as_str().unwrap().to_owned()
        }
    };
    let id = start(None).await;
    let bad = client.complete_with(&id, json!({"sha256": "zz"})).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let wrong = sha256_hex(b"x");
    let c = client.complete_with(&id, json!({"sha256": wrong})).await;
    assert_eq!(c.status, 422, "{}", c.body);
    assert_eq!(c.body["upload"]["expected_sha256"], wrong);

    let sha = sha256_hex(&file);
    let id = start(Some(sha.clone())).await;
    let conflict = client.complete_with(&id, json!({"sha256": wrong})).await;
    assert_eq!(conflict.status, 400, "{}", conflict.body);
    assert_eq!(conflict.body["field"], "sha256");
    let ok = client.complete_with(&id, json!({"sha256": sha})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["status"], "verified");
}

#[tokio::test]
async fn a_posted_object_too_large_to_verify_inline_is_handed_to_the_verifier_by_a_read() {
    let limits = Limits {
        verify_inline_max_bytes: 100_000,
        ..test_limits()
    };
    let uploads = uploads_with(limits, small_ranges()).await;
    let client = Client::over(uploads.clone());
    let body = data(300_000, 28);
    let key = post_form(&client, "large.txt", &[], body.clone()).await;
    let id = key.split('/').nth(1).unwrap().to_owned();
    // The read does not hash it, but hands it over: a lost S3 event cannot leave it pending.
    let r = client.record(&id).await;
    assert_eq!(
        (r.body["status"].clone(), r.body["verified_bytes"].clone()),
        (json!("verifying"), json!(0)),
        "{}",
        r.body
    );
    let c = client.complete(&id).await;
    assert_eq!(c.status, 202, "{}", c.body);
    let lines = handle_s3(&uploads, s3_event_from("s3-post-object.json", &key)).await;
    assert_eq!(lines[0]["outcome"], "verified", "{lines:?}");
    let r = client.record(&id).await;
    assert_eq!(r.body["sha256"], sha256_hex(&body));
}
