//! Receipts against the emulator's KMS (moto signs ECC_NIST_P256 as KMS does): a receipt the API
//! answers verifies with jwcrypto (scripts/check_receipt.py, a library this project did not
//! write), with the CLI, and with docs/receipts.md's own snippets run as written (PyJWT and
//! jwcrypto: scripts/check_receipt_doc.py; `jose`: browser/receipt-check.mjs) against the
//! published keys; a changed field, another key or another file is refused by all; a failed or pending upload has no receipt; after a rotation the
//! receipts signed before still verify; KMS failing at the verdict is no verdict; the receipt is
//! the one signed with the verdict, wherever it shows.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use vu_core::receipt::Receipts;
use vu_functions::config::ReceiptSettings;

use crate::helpers::*;

/// A new signing key in the emulator's KMS, as template.yaml's ReceiptKey.
async fn new_key() -> String {
    let kms = aws_sdk_kms::Client::new(&sdk().await);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    key.key_metadata().unwrap().key_id().to_owned()
}

/// The API issuing receipts with `key`, listing `retired` keys too.
async fn api_signing_with(key: &str, retired: &[&str]) -> Client {
    let settings = ReceiptSettings {
        key_id: key.to_owned(),
        retired_key_ids: retired.iter().map(|k| (*k).to_owned()).collect(),
        issuer: "https://receipts.test".into(),
    };
    let receipts: Receipts = vu_functions::wiring::receipts(&sdk().await, Some(&settings)).unwrap();
    let uploads = service_with(test_limits(), small_ranges())
        .await
        .with_receipts(receipts);
    Client::over(Arc::new(uploads))
}

/// Receipts signed with `key`.
async fn receipts_with(key: &str) -> Receipts {
    let settings = ReceiptSettings {
        key_id: key.to_owned(),
        retired_key_ids: Vec::new(),
        issuer: "https://receipts.test".into(),
    };
    vu_functions::wiring::receipts(&sdk().await, Some(&settings)).unwrap()
}

/// A verified upload of `file`; its id.
async fn verified(client: &Client, file: &[u8]) -> String {
    let c = client
        .create(
            json!({"filename": "release.tar.gz", "size": file.len(), "sha256": sha256_hex(file)}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, file, file.len().max(1)).await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let done = client.complete_settled(&id).await;
    assert_eq!(done.body["status"], "verified", "{}", done.body);
    id
}

async fn receipt_of(client: &Client, id: &str) -> Answer {
    call(&client.app, "GET", &format!("/uploads/{id}/receipt"), None).await
}

async fn jwks_of(client: &Client) -> Value {
    let keys = call(&client.app, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    keys.body
}

/// jwcrypto's verdict on `receipt` against `jwks`: the claims, or `None` when refused.
fn jwcrypto(dir: &Path, jwks: &Value, receipt: &str) -> Option<Value> {
    let (keys, token) = (dir.join("py-keys.json"), dir.join("py-receipt.jwt"));
    std::fs::write(&keys, jwks.to_string()).unwrap();
    std::fs::write(&token, receipt).unwrap();
    let out = Command::new(format!("{REPO}/.venv/bin/python"))
        .arg(format!("{REPO}/scripts/check_receipt.py"))
        .args([&keys, &token])
        .output()
        .expect("the project's venv python (scripts/stack.sh setup installs jwcrypto)");
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Some(1) => None,
        other => panic!(
            "check_receipt.py exited {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// docs/receipts.md's "Verify it yourself" snippets, each run as the page shows it (read from the
/// markdown, not copied): the Python ones (PyJWT, jwcrypto) by scripts/check_receipt_doc.py and
/// the JavaScript one (`jose`) by browser/receipt-check.mjs, given `jwks` and `receipt`. Each
/// runner's claims (every snippet agreeing), or `None` when every snippet refused it.
fn doc_snippets(dir: &Path, jwks: &Value, receipt: &str) -> [Option<Value>; 2] {
    let (keys, token) = (dir.join("doc-keys.json"), dir.join("doc-receipt.jwt"));
    std::fs::write(&keys, jwks.to_string()).unwrap();
    std::fs::write(&token, receipt).unwrap();
    let python = Command::new(format!("{REPO}/.venv/bin/python"))
        .arg(format!("{REPO}/scripts/check_receipt_doc.py"))
        .args([&keys, &token])
        .output()
        .expect("the project's venv python (scripts/stack.sh setup installs PyJWT and jwcrypto)");
    let node = Command::new("node")
        .arg(format!("{REPO}/browser/receipt-check.mjs"))
        .args([&keys, &token])
        .output()
        .expect("node (scripts/browser.sh deps installs jose into browser/node_modules)");
    [
        ("check_receipt_doc.py", python),
        ("receipt-check.mjs", node),
    ]
    .map(|(name, out)| match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Some(1) => None,
        other => panic!(
            "{name} exited {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// The CLI's exit status for `check RECEIPT [FILE] --keys JWKS`.
fn cli_check(dir: &Path, jwks: &Value, receipt: &str, file: Option<&Path>) -> i32 {
    let (keys, token) = (dir.join("cli-keys.json"), dir.join("cli-receipt.jwt"));
    std::fs::write(&keys, jwks.to_string()).unwrap();
    std::fs::write(&token, receipt).unwrap();
    let mut cmd = Command::new(bin("verified-uploads"));
    cmd.arg("check").arg(&token);
    if let Some(f) = file {
        cmd.arg(f);
    }
    let out = cmd
        .arg("--keys")
        .arg(&keys)
        .env_remove("VERIFIED_UPLOADS_API")
        .output()
        .unwrap();
    out.status.code().unwrap()
}

/// `receipt` with its payload's `field` set to `value`, the signature kept.
fn tampered(receipt: &str, field: &str, value: Value) -> String {
    let parts: Vec<&str> = receipt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims[field] = value;
    format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(claims.to_string()),
        parts[2]
    )
}

#[tokio::test]
async fn a_receipt_verifies_with_jwcrypto_and_the_cli_and_any_change_is_refused() {
    let key = new_key().await;
    let client = api_signing_with(&key, &[]).await;
    let file = data(300_001, 61);
    let id = verified(&client, &file).await;

    let answer = receipt_of(&client, &id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let receipt = answer.body["receipt"].as_str().unwrap().to_owned();
    let jwks = jwks_of(&client).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let claims = jwcrypto(dir.path(), &jwks, &receipt).expect("jwcrypto verifies the receipt");
    assert_eq!(claims, answer.body["claims"]);
    let record = client.record(&id).await.body;
    for field in [
        "upload_id",
        "owner",
        "bucket",
        "key",
        "version_id",
        "size",
        "sha256",
        "etag",
        "verified_at",
    ] {
        assert_eq!(claims[field], record[field], "{field}");
    }
    assert_eq!(claims["iss"], "https://receipts.test");
    // The docs' snippets (PyJWT, jwcrypto, jose) read the same claims.
    for doc in doc_snippets(dir.path(), &jwks, &receipt) {
        assert_eq!(doc.as_ref(), Some(&claims), "docs/receipts.md's snippets");
    }

    let path = dir.path().join("release.tar.gz");
    std::fs::write(&path, &file).unwrap();
    let started = Instant::now();
    assert_eq!(cli_check(dir.path(), &jwks, &receipt, Some(&path)), 0);
    println!(
        "receipts: the CLI checked a receipt and its 300 kB file offline in {} ms (process included)",
        started.elapsed().as_millis()
    );

    // Any field changed, the signature kept: refused by all.
    for (field, value) in [
        ("size", json!(file.len() + 1)),
        ("sha256", json!(sha256_hex(b"another file"))),
        ("owner", json!("mallory")),
        ("key", json!("uploads/other")),
        ("version_id", json!("another-version")),
        ("verified_at", json!("2020-01-01T00:00:00.000Z")),
    ] {
        let forged = tampered(&receipt, field, value);
        assert_eq!(jwcrypto(dir.path(), &jwks, &forged), None, "{field}");
        assert_eq!(cli_check(dir.path(), &jwks, &forged, None), 1, "{field}");
        assert_eq!(
            doc_snippets(dir.path(), &jwks, &forged),
            [None, None],
            "{field}"
        );
    }

    // Another file: the receipt is valid, the file is not the one it names.
    let other = dir.path().join("other.bin");
    let mut changed = file.clone();
    changed[1000] ^= 1;
    std::fs::write(&other, &changed).unwrap();
    assert_eq!(cli_check(dir.path(), &jwks, &receipt, Some(&other)), 1);

    // Another key: a receipt signed by a key the set does not hold, and one claiming this
    // key's id.
    let stranger = api_signing_with(&new_key().await, &[]).await;
    let id2 = verified(&stranger, &data(1000, 62)).await;
    let foreign = receipt_of(&stranger, &id2).await.body["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(jwcrypto(dir.path(), &jwks, &foreign), None);
    assert_eq!(cli_check(dir.path(), &jwks, &foreign, None), 1);
    assert_eq!(doc_snippets(dir.path(), &jwks, &foreign), [None, None]);
    let ours_header = receipt.split('.').next().unwrap();
    let (_, rest) = foreign.split_once('.').unwrap();
    let posing = format!("{ours_header}.{rest}");
    assert_eq!(jwcrypto(dir.path(), &jwks, &posing), None);
    assert_eq!(cli_check(dir.path(), &jwks, &posing, None), 1);
    assert_eq!(doc_snippets(dir.path(), &jwks, &posing), [None, None]);
}

#[tokio::test]
async fn failed_and_pending_uploads_have_no_receipt() {
    let client = api_signing_with(&new_key().await, &[]).await;
    let file = data(1000, 63);
    let c = client
        .create(json!({"filename": "f.bin", "size": file.len(), "sha256": sha256_hex(b"not it")}))
        .await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let pending = receipt_of(&client, &id).await;
    assert_eq!(pending.status, 409, "{}", pending.body);
    assert_eq!(pending.body["type"], "/problems/not-verified");
    assert_eq!(pending.body["upload_status"], "pending");

    put_all(&c.body, &file, file.len()).await;
    let done = client.complete(&id).await;
    assert_eq!(done.status, 422, "{}", done.body);
    let failed = receipt_of(&client, &id).await;
    assert_eq!(failed.status, 409, "{}", failed.body);
    assert_eq!(failed.body["upload_status"], "failed");
    assert!(
        failed.headers.get("retry-after").is_none(),
        "a failed upload never gets one"
    );

    let unknown = receipt_of(&client, "01JDZ4Q8X6M3V9T2K7R5N1B0CD").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn after_a_rotation_receipts_signed_before_still_verify() {
    let old_key = new_key().await;
    let before = api_signing_with(&old_key, &[]).await;
    let file = data(5000, 64);
    let id = verified(&before, &file).await;
    let old_receipt = receipt_of(&before, &id).await.body["receipt"]
        .as_str()
        .unwrap()
        .to_owned();

    // The rotation: a new key signs, the old one is retired and stays published.
    let after = api_signing_with(&new_key().await, &[&old_key]).await;
    let jwks = jwks_of(&after).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    // The receipt signed before is stored: served as it was signed, not signed again.
    let served = receipt_of(&after, &id).await.body["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(served, old_receipt);
    // A verdict reached after the rotation is signed by the new key.
    let id2 = verified(&after, &data(6000, 66)).await;
    let new_receipt = receipt_of(&after, &id2).await.body["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = |r: &str| -> String {
        let header: Value =
            serde_json::from_slice(&B64URL.decode(r.split('.').next().unwrap()).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kids, [kid(&new_receipt), kid(&old_receipt)]);

    let dir = tempfile::tempdir().unwrap();
    for (receipt, upload) in [(&old_receipt, &id), (&new_receipt, &id2)] {
        let claims = jwcrypto(dir.path(), &jwks, receipt).expect("jwcrypto verifies it");
        assert_eq!(claims["upload_id"], upload.as_str());
        assert_eq!(cli_check(dir.path(), &jwks, receipt, None), 0);
        for doc in doc_snippets(dir.path(), &jwks, receipt) {
            assert_eq!(doc.as_ref(), Some(&claims), "docs/receipts.md's snippets");
        }
    }
}

#[tokio::test]
async fn kms_failing_at_the_verdict_is_no_verdict_and_the_retry_verifies_with_a_receipt() {
    // A key KMS does not have (a key policy without the grant answers alike): every signing
    // fails. The verdict waits; nothing is deleted.
    let broken = api_signing_with("alias/verified-uploads-no-such-key", &[]).await;
    let file = data(7000, 67);
    let c = broken
        .create(json!({"filename": "f.bin", "size": file.len(), "sha256": sha256_hex(&file)}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, file.len()).await;
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    let done = broken.complete(&id).await;
    assert_eq!(done.status, 502, "{}", done.body);
    assert_eq!(done.body["type"], "/problems/upstream-unavailable");
    assert!(
        !done.body.to_string().contains("no-such-key"),
        "no internals: {}",
        done.body
    );
    let record = broken.record(&id).await.body;
    assert_eq!(record["status"], "completing", "{record}");
    assert_eq!(record["attempts"], 1, "{record}");
    assert!(record["last_error"].is_string(), "{record}");
    let s3 = aws_sdk_s3::Client::new(&sdk().await);
    let key = record["key"].as_str().unwrap();
    s3.head_object()
        .bucket(bucket())
        .key(key)
        .send()
        .await
        .expect("the object is kept");

    // The key fixed (a new cold start): the retry verifies, with a receipt that checks.
    let fixed = api_signing_with(&new_key().await, &[]).await;
    let done = fixed.complete_settled(&id).await;
    assert_eq!(done.body["status"], "verified", "{}", done.body);
    let answer = receipt_of(&fixed, &id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let dir = tempfile::tempdir().unwrap();
    let claims = jwcrypto(
        dir.path(),
        &jwks_of(&fixed).await,
        answer.body["receipt"].as_str().unwrap(),
    )
    .expect("jwcrypto verifies it");
    assert_eq!(claims["sha256"], sha256_hex(&file).as_str());
}

#[tokio::test]
async fn an_upload_verified_without_receipts_has_none_later() {
    let plain = Client::over(Arc::new(service_with(test_limits(), small_ranges()).await));
    let id = verified(&plain, &data(800, 68)).await;
    // The service issues receipts now: that verdict was not signed, and is not signed now.
    let signing = api_signing_with(&new_key().await, &[]).await;
    let answer = receipt_of(&signing, &id).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.body["type"], "/problems/no-receipt");
}

#[tokio::test]
async fn the_verified_event_and_webhook_carry_a_receipt_that_checks() {
    let receipts = receipts_with(&new_key().await).await;
    let route = crate::verdicts::Route::new("receipts").await;
    let bus = vu_aws::EventBus::new(&sdk().await, &route.bus);
    let uploads = service_with(test_limits(), small_ranges())
        .await
        .with_announcer(Arc::new(bus))
        .with_receipts(receipts);
    let client = Client::over(Arc::new(uploads));
    let file = data(4321, 65);
    let id = verified(&client, &file).await;
    let jwks: vu_contract::receipt::Jwks = serde_json::from_value(jwks_of(&client).await).unwrap();

    let events = route.drain(std::time::Duration::from_secs(3)).await;
    let event = events
        .iter()
        .find(|e| e["detail"]["upload_id"] == id.as_str())
        .expect("the verdict event");
    assert_eq!(event["detail-type"], "Upload Verified");
    let claims = vu_cli::receipt::check(event["detail"]["receipt"].as_str().unwrap(), &jwks)
        .expect("the event's receipt checks");
    assert_eq!(
        (claims.upload_id.as_str(), claims.size),
        (id.as_str(), 4321)
    );
    assert_eq!(claims.sha256.to_hex(), sha256_hex(&file));
    // The receipt stored with the verdict, not one signed for the event.
    let stored = receipt_of(&client, &id).await;
    assert_eq!(event["detail"]["receipt"], stored.body["receipt"]);

    // The webhook made from that event carries the stored one too (the webhooks function signs
    // nothing).
    let config = vu_functions::webhooks::WebhookConfig {
        url: "http://127.0.0.1:9/unused".into(),
        timeout: std::time::Duration::from_secs(1),
        retry_base: std::time::Duration::from_secs(1),
        retry_max: std::time::Duration::from_secs(1),
    };
    let deliverer = vu_functions::webhooks::Deliverer::new(
        config,
        vu_functions::webhooks::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        Arc::new(vu_aws::DynamoSessions::new(&sdk().await, table())),
    )
    .unwrap();
    let message = deliverer.message_for(&event.to_string()).await.unwrap();
    let body: Value = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(body["type"], "upload.verified");
    let claims = vu_cli::receipt::check(body["receipt"].as_str().unwrap(), &jwks)
        .expect("the webhook's receipt checks");
    assert_eq!(claims.upload_id, id);
    assert_eq!(body["receipt"], stored.body["receipt"]);
}
