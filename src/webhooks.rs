//! Verdicts POSTed to a subscriber's URL, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! Verdicts arrive as EventBridge events through a queue (a rule on the bus targets it): a
//! delivery that fails is retried with exponential back-off by delaying that message, and the
//! queue's dead-letter queue keeps what never got through. A retry keeps its `webhook-id`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::config::ConfigError;

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

    /// How long before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// The EventBridge event as the queue receives it: the fields a delivery needs.
#[derive(Debug, Deserialize)]
struct BusEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    time: Option<String>,
    detail: serde_json::Value,
}

/// One webhook message: its stable id and the body every attempt sends.
#[derive(Debug, PartialEq)]
pub struct Message {
    /// `{upload_id}:{status}`: the same for every attempt and every duplicate of the verdict.
    pub id: String,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("not a verdict event: {0}")]
    NotAVerdict(String),
    #[error("the subscriber answered {0}")]
    Refused(u16),
    #[error("the subscriber could not be reached")]
    Unreachable(#[source] reqwest::Error),
}

impl Message {
    /// The webhook for a verdict event off the bus: `{"type": "upload.verified", "timestamp",
    /// "data": record}`.
    pub fn from_event(event: &str) -> Result<Self, DeliveryError> {
        let bad = |why: &str| DeliveryError::NotAVerdict(why.to_owned());
        let event: BusEvent = serde_json::from_str(event).map_err(|e| bad(&e.to_string()))?;
        let kind = match event.detail_type.as_str() {
            "Upload Verified" => "upload.verified",
            "Upload Failed" => "upload.failed",
            "Upload Aborted" => "upload.aborted",
            other => return Err(bad(&format!("detail-type {other:?}"))),
        };
        let field = |name| {
            event
                .detail
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(&format!("detail has no {name}")))
        };
        let id = format!("{}:{}", field("upload_id")?, field("status")?);
        let timestamp = event
            .time
            .clone()
            .or_else(|| field("updated_at").ok().map(str::to_owned));
        let body = serde_json::json!({
            "type": kind,
            "timestamp": timestamp,
            "data": event.detail,
        });
        Ok(Self {
            id,
            body: body.to_string().into_bytes(),
        })
    }
}

/// Delivers webhooks to one subscriber.
pub struct Deliverer {
    http: reqwest::Client,
    config: WebhookConfig,
    secret: Secret,
}

impl Deliverer {
    pub fn new(config: WebhookConfig, secret: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect would re-send the signed body somewhere the operator never configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            config,
            secret,
        })
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// One attempt: a 2xx answer delivers it; anything else is retried by the caller.
    pub async fn deliver(&self, event: &str) -> Result<(), DeliveryError> {
        let message = Message::from_event(event)?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = self.secret.sign(&message.id, timestamp, &message.body);
        let answer = self
            .http
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body)
            .send()
            .await
            .map_err(DeliveryError::Unreachable)?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Refused(status.as_u16()))
        }
    }

    /// Delivers a batch off the queue; the messages that failed, each with the delay before its
    /// next attempt.
    pub async fn deliver_batch<'a>(
        &self,
        messages: impl IntoIterator<Item = Attempt<'a>>,
    ) -> Vec<(&'a str, Duration)> {
        let attempts = messages.into_iter().map(|m| async move {
            let span = tracing::info_span!("webhook", message_id = m.id, attempt = m.attempt);
            let _enter = span.enter();
            match self.deliver(m.body).await {
                Ok(()) => None,
                Err(e) => {
                    let delay = self.config.retry_delay(m.attempt);
                    tracing::warn!(error = %crate::error::chain(&e), retry_in_seconds = delay.as_secs(), "webhook delivery failed");
                    Some((m.id, delay))
                }
            }
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
    fn a_verdict_event_becomes_a_message_with_a_stable_id() {
        let event = serde_json::json!({
            "version": "0", "id": "e1", "source": "verified-uploads",
            "detail-type": "Upload Verified", "time": "2026-11-29T04:00:00Z",
            "detail": {"upload_id": "01J", "status": "verified", "sha256": "ab"}
        })
        .to_string();
        let message = Message::from_event(&event).unwrap();
        assert_eq!(message.id, "01J:verified");
        let body: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(body["type"], "upload.verified");
        assert_eq!(body["timestamp"], "2026-11-29T04:00:00Z");
        assert_eq!(body["data"]["sha256"], "ab");
        // The same verdict announced twice is the same message.
        assert_eq!(Message::from_event(&event).unwrap(), message);
        let other = event.replace("Upload Verified", "Something Else");
        assert!(matches!(
            Message::from_event(&other),
            Err(DeliveryError::NotAVerdict(_))
        ));
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
}
