//! Part URLs: S3 takes exactly the bytes, length, part, upload, key and lifetime signed.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::*;

/// SigV4's query encoding (what the pre-signer writes): unreserved characters stay.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[tokio::test]
async fn s3_refuses_a_part_changed_by_one_byte_with_bad_digest() {
    let Some(s) = Strict::new("s3_refuses_a_part_changed_by_one_byte_with_bad_digest").await else {
        return;
    };
    let file = data(300_000, 21);
    let (id, _) = create(
        &s,
        json!({"filename": "digest.bin", "size": file.len(), "part_checksums": true}),
    )
    .await;
    let signed = s
        .client
        .sign(
            &id,
            json!({"part_numbers": [1], "sha256": {"1": b64_sha256(&file)}}),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let part = &signed.body["parts"][0];
    let url = part["url"].as_str().unwrap();
    let mut changed = file.clone();
    changed[123_456] ^= 0x01;

    // S3 hashes the body and compares it with the signed x-amz-checksum-sha256.
    let got = put_signed(part, changed.clone()).await;
    s.refused(&got, 400, "BadDigest", "a body changed by one byte");
    // The header is signed: leaving it out, or sending the changed body's own digest, breaks the
    // signature (a URL that did not sign it would take these bytes unchecked).
    let got = put(url, &[], changed.clone()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "the checksum header left out",
    );
    let own = b64_sha256(&changed);
    let got = put(url, &[("x-amz-checksum-sha256", &own)], changed).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "the changed body's own checksum",
    );
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // The bytes that were signed: stored, and the upload verifies.
    let ok = put_signed(part, file.clone()).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(s.held(&id).await[0]["checksum_sha256"], b64_sha256(&file));
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_a_part_of_another_length_than_signed() {
    let Some(s) = Strict::new("s3_refuses_a_part_of_another_length_than_signed").await else {
        return;
    };
    let file = data(2_000, 22);
    let (id, created) = create(&s, json!({"filename": "length.bin", "size": file.len()})).await;
    let part = &created["parts"][0];
    assert_eq!(part["headers"]["content-length"], "2000");

    let mut longer = file.clone();
    longer.push(0);
    let got = put_signed(part, longer).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "one byte more than signed",
    );
    let got = put_signed(part, file[..1_999].to_vec()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "one byte less than signed",
    );
    let got = put_signed(part, Vec::new()).await;
    s.refused(&got, 403, "SignatureDoesNotMatch", "an empty body");
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    assert_eq!(put_signed(part, file.clone()).await.status, 200);
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_an_expired_part_url() {
    let short = Limits {
        url_expiry: Duration::from_secs(1),
        ..test_limits()
    };
    let Some(s) = Strict::with_limits("s3_refuses_an_expired_part_url", short).await else {
        return;
    };
    let file = data(1_000, 23);
    let (id, created) = create(&s, json!({"filename": "late.bin", "size": file.len()})).await;
    // Signed for one second (at a whole second): past it for sure after two and a half.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got = put_signed(&created["parts"][0], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "a URL past its X-Amz-Expires");
    assert!(got.body.contains("Request has expired"), "{}", got.body);
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // Signed again (by an API with the usual lifetime): taken.
    let again = s
        .api_with(test_limits())
        .sign(&id, json!({"part_numbers": [1]}))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        put_signed(&again.body["parts"][0], file.clone())
            .await
            .status,
        200
    );
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_a_part_url_with_its_part_number_upload_id_key_or_signature_altered() {
    let Some(s) = Strict::new(
        "s3_refuses_a_part_url_with_its_part_number_upload_id_key_or_signature_altered",
    )
    .await
    else {
        return;
    };
    // Two parts: part 2 (10 bytes) is signed, and so is part 1, which the URL is altered into.
    let (id, created) = create(
        &s,
        json!({"filename": "bound file.bin", "size": PART + 10, "part_size": PART}),
    )
    .await;
    let part = &created["parts"][1];
    let url = part["url"].as_str().unwrap();
    let body = data(10, 24);
    let key = created["key"].as_str().unwrap();
    // Another multipart upload of the same key, real in S3: only the signature can refuse it.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&s.sdk)
            .force_path_style(true)
            .build(),
    );
    let other_upload = s3
        .create_multipart_upload()
        .bucket(bucket())
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();

    let upload = raw_param(url, "uploadId");
    let other = utf8_percent_encode(&other_upload, QUERY).to_string();
    let signature = raw_param(url, "X-Amz-Signature");
    let flipped = format!(
        "{}{}",
        &signature[..signature.len() - 1],
        if signature.ends_with('0') { '1' } else { '0' }
    );
    for (what, tampered) in [
        (
            "another part number",
            altered(url, "partNumber=2", "partNumber=1"),
        ),
        (
            "another upload id",
            altered(
                url,
                &format!("uploadId={upload}"),
                &format!("uploadId={other}"),
            ),
        ),
        (
            "another key",
            altered(url, "bound%20file.bin", "bound%20file.exe"),
        ),
        ("another signature", altered(url, signature, &flipped)),
        (
            "a longer lifetime",
            altered(url, "X-Amz-Expires=3600", "X-Amz-Expires=604800"),
        ),
    ] {
        let got = put(&tampered, &headers_of(part), body.clone()).await;
        s.refused(&got, 403, "SignatureDoesNotMatch", what);
    }
    // Signed with another secret for the same access key.
    let impostor = S3Objects::new(
        &s.sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "test",
                        "not-the-secret",
                        None,
                        None,
                        "t",
                    ),
                ),
            )
            .build(),
        bucket(),
        Duration::from_secs(20),
    )
    .unwrap();
    let forged = vu_core::ports::ObjectStore::presign_parts(
        &impostor,
        key,
        &percent_encoding::percent_decode_str(upload)
            .decode_utf8()
            .unwrap(),
        &[vu_core::ports::PartToSign {
            part_number: vu_core::domain::PartNumber::new(2).unwrap(),
            len: Some(10),
            sha256: None,
        }],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let got = put(&forged[0].url, &[], body.clone()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "signed with another secret",
    );
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // The URL as signed: taken, for its own part.
    assert_eq!(put_signed(part, body).await.status, 200);
    let held = s.held(&id).await;
    assert_eq!((held.len(), &held[0]["part_number"]), (1, &json!(2)));
    s3.abort_multipart_upload()
        .bucket(bucket())
        .key(key)
        .upload_id(other_upload)
        .send()
        .await
        .unwrap();
    assert_eq!(s.client.abort(&id).await.status, 204);
    s.done();
}
