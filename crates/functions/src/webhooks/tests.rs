//! Signing, back-off, claims and delivery of webhooks (their settings: `config::webhooks`).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

/// The Standard Webhooks specification's own example (its reference libraries test it).
#[test]
fn signs_the_specifications_example() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(
        secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[test]
fn secrets_must_decode_to_enough_bytes() {
    assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
    assert!(Secret::parse("whsec_not base64!").is_err());
    assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    assert_eq!(
        format!(
            "{:?}",
            Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        ),
        "Secret(..)"
    );
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap() {
    let config = WebhookConfig {
        url: "http://127.0.0.1/".into(),
        timeout: Duration::from_secs(10),
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(3_600),
    };
    let delays: Vec<u64> = (1..=9).map(|a| config.retry_delay(a).as_secs()).collect();
    assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    assert_eq!(config.retry_delay(u32::MAX), Duration::from_secs(3_600));
}

#[test]
fn an_event_is_only_a_claim_on_a_verdict() {
    let id = "01JF0000000000000000000000";
    let event = |detail_type: &str, status: &str| {
        serde_json::json!({
            "version": "0", "id": "e1", "source": "verified-uploads",
            "detail-type": detail_type, "time": "2026-11-29T04:00:00Z",
            "detail": {"upload_id": id, "status": status, "sha256": "ab"}
        })
        .to_string()
    };
    let claim = Claim::from_event(&event("Upload Verified", "verified")).unwrap();
    assert_eq!(claim.upload_id, UploadId::parse(id).unwrap());
    assert_eq!(claim.status, Status::Verified);
    for (detail_type, status) in [
        ("Upload Verified", "failed"),
        ("Upload Verified", "pending"),
        ("Something Else", "verified"),
    ] {
        let err = Claim::from_event(&event(detail_type, status)).unwrap_err();
        assert!(err.is_permanent(), "{detail_type} {status}: {err}");
    }
    assert!(Claim::from_event("not json").unwrap_err().is_permanent());
}

// ---- Review: failing tests (each names what it proves) ----

fn config(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        timeout: Duration::from_secs(2),
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(3_600),
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Subscribers' URLs often carry a credential (`https://user:pass@...`, `?token=`); the
/// warning logged for every failed attempt must not repeat it.
#[tokio::test]
async fn a_failed_delivery_does_not_log_the_urls_credentials() {
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    let url = "http://hook-user:hunter2@127.0.0.1:9/in?token=s3cr3t";
    let deliverer = Deliverer::new(
        config(url),
        Secret::parse(SECRET).unwrap(),
        vu_core::memory::MemorySessions::new(),
    )
    .unwrap();
    let message = Message {
        id: "01J:verified".into(),
        body: b"{}".to_vec(),
    };
    let err = deliverer.post(&message).await.unwrap_err();
    let logged = vu_core::error::chain(&err).to_string();
    assert!(
        !logged.contains("hunter2") && !logged.contains("s3cr3t"),
        "logged: {logged}"
    );
}

/// A message that is not a verdict never will be: retrying it with back-off only delays its
/// arrival in the dead-letter queue by hours (WebhookMaxAttempts up to 1000).
#[tokio::test]
async fn a_message_that_can_never_be_delivered_is_not_retried_with_back_off() {
    let deliverer = Deliverer::new(
        config("http://127.0.0.1:9/"),
        Secret::parse(SECRET).unwrap(),
        vu_core::memory::MemorySessions::new(),
    )
    .unwrap();
    let failed = deliverer
        .deliver_batch([Attempt {
            id: "m1",
            body: "not json",
            attempt: 1,
        }])
        .await;
    assert!(failed.is_empty(), "poison message delayed: {failed:?}");
}

/// Every attempt WebhookMaxAttempts allows must happen before the queue's retention
/// (and the dead-letter queue keeps the original enqueue time): otherwise a webhook that
/// failed long enough is deleted by retention and never reaches WebhookFailures.
#[test]
fn every_allowed_attempt_fits_in_the_queues_retention() {
    let template = include_str!("../../../../template.yaml");
    let after = &template[template.find("  WebhookMaxAttempts:").unwrap()..];
    let max_attempts: u32 = after
        .lines()
        .find_map(|l| l.trim().strip_prefix("MaxValue: "))
        .unwrap()
        .parse()
        .unwrap();
    let retention = Duration::from_secs(1_209_600);
    let c = config("https://example.com/h");
    let total: Duration = (1..max_attempts).map(|a| c.retry_delay(a)).sum();
    assert!(
        total < retention,
        "{max_attempts} attempts take {} h; retention is {} h",
        total.as_secs() / 3600,
        retention.as_secs() / 3600
    );
}
