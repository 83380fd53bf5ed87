//! The signer against AWS's documented example and signatures re-derived by hand from the spec.

use base64::Engine as _;
use sha2::Digest as _;

use super::*;

/// The worked example in AWS's SigV4 query-string documentation ("Authenticating Requests:
/// Using Query Parameters"): a GET of examplebucket/test.txt signed at 20130524T000000Z.
#[test]
fn matches_the_aws_documented_example() {
    let creds = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let p = Presigner::new(None, "us-east-1", "examplebucket").unwrap_or_else(|e| panic!("{e}"));
    let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
    let url = p
        .batch(&creds, now, Duration::from_secs(86400))
        .sign("GET", "test.txt", &[], &[]);
    // AWS's example uses the legacy global host, examplebucket.s3.amazonaws.com; the regional
    // host changes the signature, so compare against the same request re-derived with it.
    assert!(url.starts_with("https://examplebucket.s3.us-east-1.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="));
    let legacy = Presigner {
        host: "examplebucket.s3.amazonaws.com".into(),
        ..p
    };
    let url =
        legacy
            .batch(&creds, now, Duration::from_secs(86400))
            .sign("GET", "test.txt", &[], &[]);
    assert!(url.ends_with(
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    ));
}

#[test]
fn path_style_with_an_endpoint_and_encoded_keys() {
    let creds = Credentials {
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        session_token: Some("tok/en+=".into()),
    };
    let p = Presigner::new(Some("http://127.0.0.1:4566/"), "us-east-1", "b")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = p
        .batch(
            &creds,
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        )
        .sign(
            "PUT",
            "uploads/X/a b+ü.txt",
            &[("partNumber", "2"), ("uploadId", "u/1")],
            &[("content-length", "5")],
        );
    assert!(
        url.starts_with("http://127.0.0.1:4566/b/uploads/X/a%20b%2B%C3%BC.txt?"),
        "{url}"
    );
    assert!(
        url.contains("&X-Amz-Security-Token=tok%2Fen%2B%3D&"),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bhost&"),
        "{url}"
    );
    assert!(
        url.contains("&partNumber=2&uploadId=u%2F1&X-Amz-Signature="),
        "{url}"
    );
    assert!(Presigner::new(Some("ftp://x"), "us-east-1", "b").is_err());
}

fn example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// SigV4's signing key for 20130524 in `region`, derived here step by step from the spec.
fn example_signing_key(region: &str) -> Vec<u8> {
    let mac = |key: &[u8], data: &str| {
        let mut m = HmacSha256::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let k = mac(b"AWS4wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524");
    let k = mac(&k, region);
    let k = mac(&k, "s3");
    mac(&k, "aws4_request")
}

fn hex_hmac(key: &[u8], data: &str) -> String {
    let mut m = HmacSha256::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    m.update(data.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Transfer Acceleration: the URL addresses `{bucket}.s3-accelerate.amazonaws.com`, and its
/// signature (recomputed here from a canonical request written out by hand) covers that
/// host, with the bucket's region, not a global one, in the scope.
#[test]
fn an_accelerated_part_url_is_signed_for_the_accelerate_host() {
    let regional =
        Presigner::new(None, "eu-west-1", "examplebucket").unwrap_or_else(|e| panic!("{e}"));
    let p = regional.accelerated().unwrap_or_else(|e| panic!("{e}"));
    let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
    let sign = |p: &Presigner| {
        p.batch(&example_credentials(), now, Duration::from_secs(3600))
            .sign(
                "PUT",
                "uploads/01X/a b.bin",
                &[("partNumber", "1"), ("uploadId", "up/1")],
                &[("content-length", "5")],
            )
    };
    let url = sign(&p);

    let host = "examplebucket.s3-accelerate.amazonaws.com";
    let path = "/uploads/01X/a%20b.bin";
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Feu-west-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=3600\
        &X-Amz-SignedHeaders=content-length%3Bhost&partNumber=1&uploadId=up%2F1";
    let canonical = format!(
        "PUT\n{path}\n{query}\ncontent-length:5\nhost:{host}\n\ncontent-length;host\nUNSIGNED-PAYLOAD"
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/eu-west-1/s3/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = hex_hmac(&example_signing_key("eu-west-1"), &to_sign);
    assert_eq!(
        url,
        format!("https://{host}{path}?{query}&X-Amz-Signature={signature}")
    );
    // The host is signed: the regional URL's signature differs.
    let regional_url = sign(&regional);
    assert!(regional_url.starts_with("https://examplebucket.s3.eu-west-1.amazonaws.com/"));
    assert!(!regional_url.ends_with(&signature));

    for dotted_or_not_dns in ["my.bucket", "My-Bucket", "-bucket", "ab"] {
        let p =
            Presigner::new(None, "eu-west-1", dotted_or_not_dns).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(p.accelerated(), Err(EndpointError::NotAccelerable(_))),
            "{dotted_or_not_dns}"
        );
    }
}

/// A form for an SSE-KMS bucket: the encryption fields are given to the client and, like
/// the key and the content type, pinned by exact-match conditions, so S3 refuses a form
/// that drops or changes any of them; the signature is the policy's, under the same key.
#[test]
fn a_post_policy_pins_its_content_type_and_kms_fields() {
    let p = Presigner::new(None, "eu-west-1", "examplebucket")
        .and_then(|p| p.accelerated())
        .unwrap_or_else(|e| panic!("{e}"));
    let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
    let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let sse = [
        ("x-amz-server-side-encryption", "aws:kms"),
        ("x-amz-server-side-encryption-aws-kms-key-id", arn),
        ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
    ];
    let form = p
        .batch(&example_credentials(), now, Duration::from_secs(900))
        .post_form("uploads/01X/photo.png", "image/png", 0..=1000, &sse);
    assert_eq!(
        form.url,
        "https://examplebucket.s3-accelerate.amazonaws.com"
    );
    for (k, v) in sse {
        assert_eq!(form.fields.get(k).map(String::as_str), Some(v), "{k}");
    }

    let raw = &form.fields["policy"];
    let policy: serde_json::Value = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("policy {raw}"));
    assert_eq!(policy["expiration"], "2013-05-24T00:15:00.000Z");
    let conditions = policy["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("{policy}"));
    for pinned in [
        serde_json::json!({ "bucket": "examplebucket" }),
        serde_json::json!({ "key": "uploads/01X/photo.png" }),
        // Exactly the declared type: `{"f": v}` is S3's ["eq", "$f", v].
        serde_json::json!({ "Content-Type": "image/png" }),
        serde_json::json!({ "x-amz-server-side-encryption": "aws:kms" }),
        serde_json::json!({ "x-amz-server-side-encryption-aws-kms-key-id": arn }),
        serde_json::json!({ "x-amz-server-side-encryption-bucket-key-enabled": "true" }),
        serde_json::json!(["content-length-range", 0, 1000]),
    ] {
        assert!(conditions.contains(&pinned), "{pinned} not in {policy}");
    }
    // Every field the client posts (but the policy and its signature) is pinned, and
    // nothing is left to the client's choice (no `starts-with`).
    for (k, v) in &form.fields {
        if k != "policy" && k != "x-amz-signature" {
            assert!(conditions.contains(&serde_json::json!({ k: v })), "{k}");
        }
    }
    // Nothing else: the fields but the policy and its signature, the bucket, the length range.
    assert_eq!(conditions.len(), form.fields.len() - 2 + 2);
    assert_eq!(
        form.fields["x-amz-signature"],
        hex_hmac(&example_signing_key("eu-west-1"), raw)
    );
    assert_eq!(
        form.fields["x-amz-credential"],
        "AKIAIOSFODNN7EXAMPLE/20130524/eu-west-1/s3/aws4_request"
    );
}
