//! SQS queues: the verifier's (S3's `ObjectCreated` notifications and every hand-over,
//! `{"continue": id}`) and the webhooks' (verdicts from the event bus). A queue retries what
//! fails, its visibility timeout keeps one delivery at a time, and its dead-letter queue keeps
//! what never succeeds.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};

use vu_contract::queue::{QueueMessage, continuation};
use vu_core::domain::UploadId;
use vu_core::ports::{Continuation, PortError, SegmentMessage, Upstream};

pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            url: url.into(),
        }
    }

    /// Up to `max` messages (at most ten), waiting up to `wait_seconds` for the first (what Lambda's event source
    /// mapping does in AWS; the local server polls with it).
    pub async fn receive(&self, wait_seconds: i32, max: i32) -> Result<Vec<Received>, PortError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Queue, e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let attempt = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    attempt,
                    message: QueueMessage {
                        id: m.message_id?,
                        body: m.body.unwrap_or_default(),
                    },
                    receipt: m.receipt_handle?,
                })
            })
            .collect())
    }

    /// Acknowledges a message: it is not delivered again.
    pub async fn delete(&self, receipt: &str) -> Result<(), PortError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Queue, e))?;
        Ok(())
    }

    /// Delivers the message again `after` from now, not at the queue's visibility timeout: the
    /// webhooks' back-off.
    pub async fn retry_after(
        &self,
        receipt: &str,
        after: std::time::Duration,
    ) -> Result<(), PortError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(after.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Queue, e))?;
        Ok(())
    }
}

/// A message as received, with the handle that acknowledges it.
pub struct Received {
    /// How many times it was received, this time included.
    pub attempt: u32,
    pub message: QueueMessage,
    pub receipt: String,
}

#[async_trait]
impl Continuation for SqsQueue {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(continuation(&id.to_string()).to_string())
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Queue, e))?;
        Ok(())
    }

    fn carries_segments(&self) -> bool {
        true
    }

    /// Ten messages a request (SQS's batch limit); any entry refused fails the whole send, and
    /// the holder's next run sends the missing segments again (a duplicate is recorded once).
    async fn send_segments(&self, segments: &[SegmentMessage]) -> Result<(), PortError> {
        for batch in segments.chunks(10) {
            let entries = batch
                .iter()
                .map(|m| {
                    SendMessageBatchRequestEntry::builder()
                        .id(m.index.to_string())
                        .message_body(m.body().to_string())
                        .build()
                        .map_err(|e| PortError::unavailable(Upstream::Queue, e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PortError::unavailable(Upstream::Queue, e))?;
            if let Some(refused) = out.failed().first() {
                let why = format!(
                    "segment message {} refused: {}",
                    refused.id(),
                    refused.code()
                );
                return Err(PortError::unavailable(Upstream::Queue, why));
            }
        }
        Ok(())
    }
}
