//! Verdicts POSTed to a subscriber's URL, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! Verdicts arrive as EventBridge events through a queue (a rule on the bus targets it): a
//! delivery that fails is retried with exponential back-off by delaying that message, and the
//! queue's dead-letter queue keeps what never got through. A retry keeps its `webhook-id`. What is
//! signed is the record as the service stored it, re-read for each attempt: an event on the bus
//! is only a pointer, since anyone allowed to put events there could forge one.

use std::time::Duration;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use tracing::Instrument as _;

use crate::config::ConfigError;
use crate::domain::{Status, UploadId, UploadRecord};
use crate::http::view::RecordView;
use crate::ports::SessionStore;

/// The signing secret, `whsec_<base64>` (the prefix is optional, as in the spec's libraries).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        match B64.decode(encoded) {
            // The spec asks for 24 to 64 random bytes.
            Ok(key) if (24..=64).contains(&key.len()) => Ok(Self(key)),
            Ok(key) => Err(format!(
                "the decoded secret is {} bytes; it must be 24 to 64",
                key.len()
            )),
            Err(_) => Err("must be whsec_ followed by base64".into()),
        }
    }

    /// `webhook-signature` for message `id` sent at `timestamp` (epoch seconds) with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// Where and how verdicts are delivered (`WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// How long a subscriber may take to answer before the attempt counts as failed.
    pub timeout: Duration,
    /// The first retry's delay; each next one doubles, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The queue verdicts arrive in (`WEBHOOK_QUEUE_URL`): retries are delayed on it.
    pub queue_url: Option<String>,
}

/// Where the secret comes from: the environment locally, Secrets Manager in AWS (so it is
/// never plain text in the function's configuration).
#[derive(Debug, Clone)]
pub enum SecretSource {
    Value(Secret),
    SecretsManager(String),
}

impl WebhookConfig {
    /// `None` when `WEBHOOK_URL` is unset: no webhooks.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<(Self, SecretSource)>, ConfigError> {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let Some(url) = set("WEBHOOK_URL") else {
            return Ok(None);
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "WEBHOOK_URL",
                value: url,
                reason: "must be an http(s) URL".into(),
            });
        }
        let secret = match (set("WEBHOOK_SECRET"), set("WEBHOOK_SECRET_ARN")) {
            (Some(raw), _) => {
                SecretSource::Value(Secret::parse(&raw).map_err(|reason| ConfigError::Invalid {
                    name: "WEBHOOK_SECRET",
                    value: "(hidden)".into(),
                    reason,
                })?)
            }
            (None, Some(arn)) => SecretSource::SecretsManager(arn),
            (None, None) => return Err(ConfigError::Missing("WEBHOOK_SECRET")),
        };
        let secs = |name, default, min, max| {
            crate::config::number(&get, name, default, min, max).map(Duration::from_secs)
        };
        let config = Self {
            url,
            timeout: secs("WEBHOOK_TIMEOUT_SECONDS", 10, 1, 60)?,
            retry_base: secs("WEBHOOK_RETRY_BASE_SECONDS", 30, 0, 3_600)?,
            // SQS delays a message at most 12 hours.
            retry_max: secs("WEBHOOK_RETRY_MAX_SECONDS", 3_600, 0, 43_200)?,
            queue_url: set("WEBHOOK_QUEUE_URL"),
        };
        Ok(Some((config, secret)))
    }

    /// How long before attempt `attempt + 1`, after attempt `attempt` (1-based) failed: doubling
    /// from `retry_base` up to `retry_max`, and never more than SQS accepts once an attempt of up
    /// to `timeout` has run since the receive.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        let sqs_limit = SQS_MAX_VISIBILITY
            .saturating_sub(self.timeout)
            .saturating_sub(Duration::from_secs(60));
        self.retry_base
            .saturating_mul(factor)
            .min(self.retry_max)
            .min(sqs_limit)
    }
}

/// The EventBridge event as the queue receives it: which verdict it claims. Nothing else in it
/// is trusted: anyone allowed to put events on the bus can put one that looks like ours.
#[derive(Debug, Deserialize)]
struct BusEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: serde_json::Value,
}

/// The verdict an event claims: an upload and the final status it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub upload_id: UploadId,
    pub status: Status,
}

impl Claim {
    pub fn from_event(event: &str) -> Result<Self, DeliveryError> {
        let bad = |why: &str| DeliveryError::NotAVerdict(why.to_owned());
        let event: BusEvent = serde_json::from_str(event).map_err(|e| bad(&e.to_string()))?;
        let field = |name| {
            event
                .detail
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(&format!("detail has no {name}")))
        };
        let upload_id =
            UploadId::parse(field("upload_id")?).map_err(|_| bad("detail.upload_id"))?;
        let status = Status::parse(field("status")?)
            .filter(|s| s.is_final())
            .ok_or_else(|| bad("detail.status is not a verdict"))?;
        if crate::aws::detail_type(status) != Some(event.detail_type.as_str()) {
            return Err(bad(&format!("detail-type {:?}", event.detail_type)));
        }
        Ok(Self { upload_id, status })
    }
}

/// One webhook message: its stable id and the body every attempt sends.
#[derive(Debug, PartialEq)]
pub struct Message {
    /// `{upload_id}:{status}`: the same for every attempt and every duplicate of the verdict.
    pub id: String,
    pub body: Vec<u8>,
}

impl Message {
    /// The webhook for a stored final record: `{"type": "upload.verified", "timestamp": when the
    /// verdict was written, "data": the record as `GET /uploads/{id}` answers it}`.
    pub fn of(record: &UploadRecord) -> Self {
        let status = record.status.as_str();
        let body = serde_json::json!({
            "type": format!("upload.{status}"),
            "timestamp": record.updated_at,
            "data": RecordView::from(record),
        });
        Self {
            id: format!("{}:{status}", record.upload_id),
            body: body.to_string().into_bytes(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("not a verdict event: {0}")]
    NotAVerdict(String),
    /// The table holds no such verdict: another stack's event, or a forged one.
    #[error("this service recorded no {0:?} verdict for the upload")]
    NotOurs(Status),
    /// The record is not final yet as read (a read racing the verdict's write).
    #[error("the record is not final yet")]
    NotYetFinal,
    #[error("could not read the record")]
    Store(#[source] crate::ports::PortError),
    #[error("the subscriber answered {0}")]
    Refused(u16),
    /// Without the URL: a subscriber's URL may carry a credential (`?token=`).
    #[error("the subscriber could not be reached")]
    Unreachable(#[source] reqwest::Error),
}

impl DeliveryError {
    /// Retrying will never deliver it: the message is dropped (and logged), not delayed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::NotAVerdict(_) | Self::NotOurs(_))
    }
}

/// Delivers webhooks to one subscriber.
pub struct Deliverer {
    http: reqwest::Client,
    config: WebhookConfig,
    secret: Secret,
    /// The verdicts' table: what is signed is what the service recorded, not what the event says.
    sessions: Arc<dyn SessionStore>,
}

/// SQS refuses a visibility timeout past 12 hours from the receive; a delay is set after an
/// attempt of up to the timeout, so the longest back-off leaves that and a minute.
const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

impl Deliverer {
    pub fn new(
        config: WebhookConfig,
        secret: Secret,
        sessions: Arc<dyn SessionStore>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect would re-send the signed body somewhere the operator never configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            config,
            secret,
            sessions,
        })
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// The message for the verdict `event` claims, built from the record as stored.
    pub async fn message_for(&self, event: &str) -> Result<Message, DeliveryError> {
        let claim = Claim::from_event(event)?;
        match self.sessions.get(claim.upload_id).await {
            Ok(Some(record)) if record.status == claim.status => Ok(Message::of(&record)),
            Ok(Some(record)) if !record.status.is_final() => Err(DeliveryError::NotYetFinal),
            Ok(_) => Err(DeliveryError::NotOurs(claim.status)),
            Err(e) => Err(DeliveryError::Store(e)),
        }
    }

    /// One attempt: a 2xx answer delivers it; anything else is for the caller to retry.
    pub async fn deliver(&self, event: &str) -> Result<(), DeliveryError> {
        let message = self.message_for(event).await?;
        self.post(&message).await
    }

    /// POSTs `message`, signed now.
    pub async fn post(&self, message: &Message) -> Result<(), DeliveryError> {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = self.secret.sign(&message.id, timestamp, &message.body);
        let answer = self
            .http
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|e| DeliveryError::Unreachable(e.without_url()))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Refused(status.as_u16()))
        }
    }

    /// How long before the next attempt after attempt `attempt` failed: the configured
    /// back-off, within what SQS accepts.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        self.config.retry_delay(attempt)
    }

    /// Delivers a batch off the queue; the messages to try again, each with the delay before its
    /// next attempt. A message that can never be delivered is logged and dropped.
    pub async fn deliver_batch<'a>(
        &self,
        messages: impl IntoIterator<Item = Attempt<'a>>,
    ) -> Vec<(&'a str, Duration)> {
        let attempts = messages.into_iter().map(|m| {
            let span = tracing::info_span!("webhook", message_id = m.id, attempt = m.attempt);
            async move {
                match self.deliver(m.body).await {
                    Ok(()) => None,
                    Err(e) if e.is_permanent() => {
                        tracing::error!(error = %crate::error::chain(&e), "dropped a message that can never be delivered");
                        None
                    }
                    Err(e) => {
                        let delay = self.retry_delay(m.attempt);
                        tracing::warn!(error = %crate::error::chain(&e), retry_in_seconds = delay.as_secs(), "webhook delivery failed");
                        Some((m.id, delay))
                    }
                }
            }
            .instrument(span)
        });
        futures::future::join_all(attempts)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A queue message to deliver: its id, body (the bus event), and which receive this is.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub id: &'a str,
    pub body: &'a str,
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
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
            queue_url: None,
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

    #[test]
    fn webhooks_are_configured_with_a_url_and_a_secret() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(WebhookConfig::from_lookup(env(&[])).unwrap().is_none());
        assert!(matches!(
            WebhookConfig::from_lookup(env(&[("WEBHOOK_URL", "https://example.com/h")])),
            Err(ConfigError::Missing("WEBHOOK_SECRET"))
        ));
        let (config, secret) = WebhookConfig::from_lookup(env(&[
            ("WEBHOOK_URL", "https://example.com/h"),
            (
                "WEBHOOK_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.retry_delay(1), Duration::from_secs(30));
        assert!(matches!(secret, SecretSource::SecretsManager(_)));
        let err = WebhookConfig::from_lookup(env(&[
            ("WEBHOOK_URL", "https://example.com/h"),
            ("WEBHOOK_SECRET", "whsec_c2hvcnQ="),
        ]))
        .unwrap_err();
        // The secret's value never appears in an error.
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert!(WebhookConfig::from_lookup(env(&[("WEBHOOK_URL", "ftp://x")])).is_err());
    }

    // ---- Review: failing tests (each names what it proves) ----

    fn config(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            timeout: Duration::from_secs(2),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3_600),
            queue_url: None,
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
            crate::memory::MemorySessions::new(),
        )
        .unwrap();
        let message = Message {
            id: "01J:verified".into(),
            body: b"{}".to_vec(),
        };
        let err = deliverer.post(&message).await.unwrap_err();
        let logged = crate::error::chain(&err).to_string();
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
            crate::memory::MemorySessions::new(),
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

    /// SQS refuses ChangeMessageVisibility beyond 12 hours *from the receive*; a delay of
    /// exactly 43200 s asked for any time after the receive is refused, and the message comes
    /// back at the queue's visibility timeout (180 s) instead of the back-off.
    #[test]
    fn the_longest_back_off_is_one_sqs_accepts_after_the_attempt() {
        let (config, _) = WebhookConfig::from_lookup(|k| match k {
            "WEBHOOK_URL" => Some("https://example.com/h".into()),
            "WEBHOOK_SECRET" => Some(SECRET.into()),
            "WEBHOOK_RETRY_MAX_SECONDS" => Some("43200".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        assert!(config.retry_delay(30) < Duration::from_secs(43_200 - config.timeout.as_secs()));
    }

    /// Every attempt WebhookMaxAttempts allows must happen before the queue's retention
    /// (and the dead-letter queue keeps the original enqueue time): otherwise a webhook that
    /// failed long enough is deleted by retention and never reaches WebhookFailures.
    #[test]
    fn every_allowed_attempt_fits_in_the_queues_retention() {
        let template = include_str!("../template.yaml");
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
}
