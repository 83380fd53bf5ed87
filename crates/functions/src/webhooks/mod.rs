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

use vu_contract::Record;
use vu_core::domain::{Status, UploadId, UploadRecord};
use vu_core::ports::SessionStore;

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

/// Where and how verdicts are delivered (read from `WEBHOOK_*` by `config`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// How long a subscriber may take to answer before the attempt counts as failed.
    pub timeout: Duration,
    /// The first retry's delay; each next one doubles, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl WebhookConfig {
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
        if vu_contract::events::detail_type(status) != Some(event.detail_type.as_str()) {
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
        Self::with_receipt(record, None)
    }

    /// `of`, and for a verified upload its signed `receipt` beside `data`.
    pub fn with_receipt(record: &UploadRecord, receipt: Option<&str>) -> Self {
        let status = record.status().as_str();
        let mut body = serde_json::json!({
            "type": format!("upload.{status}"),
            "timestamp": record.updated_at,
            "data": Record::from(record),
        });
        if let (Some(receipt), Some(fields)) = (receipt, body.as_object_mut()) {
            fields.insert("receipt".into(), receipt.into());
        }
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
    Store(#[source] vu_core::ports::PortError),
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
            Ok(Some(record)) if record.status() == claim.status => {
                // The receipt signed with the verdict, as stored: the webhooks function signs
                // nothing (it holds no signing permission).
                Ok(Message::with_receipt(&record, record.receipt()))
            }
            Ok(Some(record)) if !record.status().is_final() => Err(DeliveryError::NotYetFinal),
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
                        tracing::error!(error = %vu_core::error::chain(&e), "dropped a message that can never be delivered");
                        None
                    }
                    Err(e) => {
                        let delay = self.retry_delay(m.attempt);
                        tracing::warn!(error = %vu_core::error::chain(&e), retry_in_seconds = delay.as_secs(), "webhook delivery failed");
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
mod tests;
