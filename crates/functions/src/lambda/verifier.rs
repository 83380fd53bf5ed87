//! The `verifier` function's handler. In AWS it consumes the verifier's queue (SQS), whose
//! messages are S3 `ObjectCreated` notifications and hand-overs (`{"continue": "<upload_id>"}`),
//! and a schedule's `{"sweep": {}}` that re-drives sessions whose lease ran out. A bare S3 event or
//! continuation (`cargo lambda invoke`) is handled the same way.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use vu_contract::queue::{QueueMessage, S3Notification, SegmentMessage, decode_key};
use vu_core::domain::{Invalid, UploadId};
use vu_core::error::{Error, chain};
use vu_core::ports::{BoxError, Continuation};
use vu_core::service::{Budget, EventOutcome, Uploads};

/// What the verifier can be invoked with.
pub enum Invocation {
    ObjectsCreated(S3Notification),
    Continue(UploadId),
    /// One segment of a verification fanned out (`{"segment": {...}}`).
    Segment(SegmentMessage),
    /// Re-drive the sessions whose lease ran out (the schedule's event).
    Sweep,
    /// A batch from the verifier's queue: each body is one of the others.
    Messages(Vec<QueueMessage>),
    /// The message S3 sends when a notification is configured.
    S3Test,
}

/// Sessions one sweep re-drives at most; the next sweep takes the rest.
pub const SWEEP_LIMIT: u32 = 200;

impl Invocation {
    pub fn parse(payload: Value) -> Result<Self, Invalid> {
        if let Some(id) = payload.get("continue").and_then(Value::as_str) {
            return UploadId::parse(id).map(Self::Continue);
        }
        if let Some(segment) = payload.get("segment") {
            return serde_json::from_value(segment.clone())
                .map(Self::Segment)
                .map_err(|e| Invalid::new("segment", format!("not a segment message: {e}")));
        }
        if payload.get("sweep").is_some() {
            return Ok(Self::Sweep);
        }
        if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(Self::S3Test);
        }
        if payload
            .pointer("/Records/0/eventSource")
            .and_then(Value::as_str)
            == Some("aws:sqs")
        {
            let event: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| Invalid::new("event", format!("not an SQS event: {e}")))?;
            return Ok(Self::Messages(
                event
                    .records
                    .into_iter()
                    .map(|m| QueueMessage {
                        id: m.message_id.unwrap_or_default(),
                        body: m.body.unwrap_or_default(),
                    })
                    .collect(),
            ));
        }
        serde_json::from_value(payload)
            .map(Self::ObjectsCreated)
            .map_err(|e| {
                Invalid::new(
                    "event",
                    format!("neither an S3 event nor a continuation: {e}"),
                )
            })
    }
}

pub struct Verifier<'a> {
    pub uploads: &'a Uploads,
    pub bucket: &'a str,
    pub continuation: &'a dyn Continuation,
}

/// Stop hashing this long before Lambda's deadline, to save progress and hand over.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// Runs `verifier` under the Lambda runtime until the runtime stops.
pub async fn run(verifier: Verifier<'_>) -> Result<(), BoxError> {
    let verifier = &verifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_millis()));
        let deadline = Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);
        match Invocation::parse(event.payload)? {
            // Partial batch responses: only the messages that failed are delivered again.
            Invocation::Messages(messages) => {
                let failed = verifier.handle_messages(messages, Some(deadline)).await;
                Ok::<Value, BoxError>(json!({
                    "batchItemFailures": failed
                        .into_iter()
                        .map(|id| json!({ "itemIdentifier": id }))
                        .collect::<Vec<_>>(),
                }))
            }
            other => Ok(json!(verifier.handle(other, Some(deadline)).await?)),
        }
    }))
    .await
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Verifier<'_> {
    /// Handles a batch from the verifier's queue, its messages side by side; returns the ids of
    /// those that failed (to be delivered again, then dead-lettered), logging why.
    pub async fn handle_messages(
        &self,
        messages: Vec<QueueMessage>,
        deadline: Option<Instant>,
    ) -> Vec<String> {
        let handled = messages.into_iter().map(|m| async move {
            let outcome = match serde_json::from_str::<Value>(&m.body)
                .map_err(|e| Invalid::new("message", format!("not JSON: {e}")))
                .and_then(Invocation::parse)
            {
                Ok(Invocation::Messages(_)) => Err(Error::Invalid(Invalid::new(
                    "message",
                    "a queue batch inside a queue message",
                ))),
                Ok(invocation) => self.handle(invocation, deadline).await.map(|_| ()),
                Err(e) => Err(Error::Invalid(e)),
            };
            match outcome {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(message_id = %m.id, error = %chain(&e), "queue message failed");
                    Some(m.id)
                }
            }
        });
        futures::future::join_all(handled)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Handles one invocation; a line per record says what became of it. An upstream failure
    /// fails the invocation so Lambda retries it; a record that is not ours is ignored.
    pub async fn handle(
        &self,
        invocation: Invocation,
        deadline: Option<Instant>,
    ) -> Result<Vec<Value>, Error> {
        match invocation {
            Invocation::S3Test => Ok(vec![
                json!({ "outcome": "ignored", "reason": "S3 test event" }),
            ]),
            Invocation::Sweep => {
                let redriven = self
                    .uploads
                    .sweep(SWEEP_LIMIT, Budget::verifier(deadline))
                    .await?;
                let line = json!({ "outcome": "swept", "redriven": redriven });
                tracing::info!(result = %line, "sweep done");
                Ok(vec![line])
            }
            // Batches answer per message: `handle_messages`.
            Invocation::Messages(_) => Err(Error::Invalid(Invalid::new(
                "event",
                "a queue batch is handled by handle_messages",
            ))),
            Invocation::Continue(id) => {
                let span = tracing::info_span!("continue", upload_id = %id);
                let outcome = tracing::Instrument::instrument(
                    self.uploads
                        .continue_verification(id, Budget::verifier(deadline)),
                    span,
                )
                .await;
                Ok(vec![self.report(&id.to_string(), outcome).await?])
            }
            Invocation::Segment(msg) => {
                let span =
                    tracing::info_span!("segment", upload_id = %msg.upload_id, index = msg.index);
                let outcome = tracing::Instrument::instrument(
                    self.uploads.on_segment(&msg, Budget::verifier(deadline)),
                    span,
                )
                .await;
                Ok(vec![self.report(&msg.upload_id, outcome).await?])
            }
            Invocation::ObjectsCreated(event) => {
                let mut lines = Vec::with_capacity(event.records.len());
                for record in event.records {
                    let b = record.s3.bucket.name;
                    let key = decode_key(&record.s3.object.key);
                    if b != self.bucket {
                        lines.push(json!({ "bucket": b, "key": key, "outcome": "ignored", "reason": "not the uploads bucket" }));
                        continue;
                    }
                    let version = record.s3.object.version_id.filter(|v| !v.is_empty());
                    let span =
                        tracing::info_span!("object_created", key = %key, version = ?version);
                    let outcome = tracing::Instrument::instrument(
                        self.uploads.on_object_created(
                            &key,
                            version.as_deref(),
                            Budget::verifier(deadline),
                        ),
                        span,
                    )
                    .await;
                    lines.push(self.report(&key, outcome).await?);
                }
                Ok(lines)
            }
        }
    }

    async fn report(
        &self,
        subject: &str,
        outcome: Result<EventOutcome, Error>,
    ) -> Result<Value, Error> {
        let line = match outcome {
            Ok(EventOutcome::Done(r)) => json!({
                "subject": subject, "outcome": r.status(), "upload_id": r.upload_id, "sha256": r.sha256(), "error": r.error(),
            }),
            Ok(EventOutcome::Paused(r)) => {
                self.continuation.schedule(r.upload_id).await?;
                json!({
                    "subject": subject, "outcome": "paused", "upload_id": r.upload_id,
                    "verified_bytes": r.verified_bytes(), "size": r.size(),
                })
            }
            Ok(EventOutcome::Segments(r)) => json!({
                "subject": subject, "outcome": "segments", "upload_id": r.upload_id,
                "segments_done": r.fanned().map_or(0, |f| f.ends.len()),
                "verified_bytes": r.verified_bytes(), "size": r.size(),
            }),
            Ok(EventOutcome::Ignored(why)) => {
                json!({ "subject": subject, "outcome": "ignored", "reason": why })
            }
            Err(e) => {
                tracing::error!(error = %chain(&e), subject, "verification did not finish");
                return Err(e);
            }
        };
        tracing::info!(result = %line, "verifier event handled");
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(
            decode_key("uploads/01J/big+file%C3%BC%2B.bin"),
            "uploads/01J/big fileü+.bin"
        );
    }

    #[test]
    fn invocations_are_s3_events_or_continuations() {
        let id = UploadId::generate();
        assert!(
            matches!(Invocation::parse(vu_contract::queue::continuation(&id.to_string())), Ok(Invocation::Continue(i)) if i == id)
        );
        assert!(matches!(
            Invocation::parse(json!({"Records": []})),
            Ok(Invocation::ObjectsCreated(_))
        ));
        assert!(Invocation::parse(json!({"continue": "nope"})).is_err());
        let segment = SegmentMessage {
            upload_id: id.to_string(),
            token: "01JF0000000000000000000000".into(),
            index: 3,
            start: 64,
            end: 128,
            from: vu_contract::ChainState::INITIAL,
        };
        assert!(
            matches!(Invocation::parse(segment.body()), Ok(Invocation::Segment(m)) if m == segment)
        );
        assert!(Invocation::parse(json!({"segment": {"index": 1}})).is_err());
        assert!(Invocation::parse(json!(42)).is_err());
    }
}
