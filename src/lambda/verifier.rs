//! The `verifier` function's handler: S3 `ObjectCreated` events, and its own continuation events
//! (`{"continue": "<upload_id>"}`) for verifications that paused at the function's deadline.

use std::time::{Duration, Instant};

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::domain::{Invalid, UploadId};
use crate::error::{Error, chain};
use crate::ports::{BoxError, Continuation};
use crate::service::{EventOutcome, Uploads};

/// S3 event keys are form-encoded: `+` is a space, other bytes are `%XX`.
pub fn decode_key(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The event that continues a paused verification in a fresh invocation.
pub fn continuation_event(id: UploadId) -> Value {
    json!({ "continue": id.to_string() })
}

/// What the verifier can be invoked with.
pub enum Invocation {
    ObjectsCreated(S3Event),
    Continue(UploadId),
}

impl Invocation {
    pub fn parse(payload: Value) -> Result<Self, Invalid> {
        if let Some(id) = payload.get("continue").and_then(Value::as_str) {
            return UploadId::parse(id).map(Self::Continue);
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
        let invocation = Invocation::parse(event.payload)?;
        verifier
            .handle(invocation, Some(deadline))
            .await
            .map_err(BoxError::from)
    }))
    .await
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Verifier<'_> {
    /// Handles one invocation; a line per record says what became of it. An upstream failure
    /// fails the invocation so Lambda retries it; a record that is not ours is ignored.
    pub async fn handle(
        &self,
        invocation: Invocation,
        deadline: Option<Instant>,
    ) -> Result<Vec<Value>, Error> {
        match invocation {
            Invocation::Continue(id) => {
                let span = tracing::info_span!("continue", upload_id = %id);
                let outcome = tracing::Instrument::instrument(
                    self.uploads.continue_verification(id, deadline),
                    span,
                )
                .await;
                Ok(vec![self.report(&id.to_string(), outcome).await?])
            }
            Invocation::ObjectsCreated(event) => {
                let mut lines = Vec::with_capacity(event.records.len());
                for record in event.records {
                    let (Some(b), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key)
                    else {
                        continue;
                    };
                    let key = decode_key(&raw_key);
                    if b != self.bucket {
                        lines.push(json!({ "bucket": b, "key": key, "outcome": "ignored", "reason": "not the uploads bucket" }));
                        continue;
                    }
                    let version = record.s3.object.version_id.filter(|v| !v.is_empty());
                    let span =
                        tracing::info_span!("object_created", key = %key, version = ?version);
                    let outcome = tracing::Instrument::instrument(
                        self.uploads
                            .on_object_created(&key, version.as_deref(), deadline),
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
                "subject": subject, "outcome": r.status, "upload_id": r.upload_id, "sha256": r.sha256, "error": r.error,
            }),
            Ok(EventOutcome::Paused(r)) => {
                self.continuation.schedule(r.upload_id).await?;
                json!({
                    "subject": subject, "outcome": "paused", "upload_id": r.upload_id,
                    "verified_bytes": r.verified_bytes, "size": r.size(),
                })
            }
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
            matches!(Invocation::parse(continuation_event(id)), Ok(Invocation::Continue(i)) if i == id)
        );
        assert!(matches!(
            Invocation::parse(json!({"Records": []})),
            Ok(Invocation::ObjectsCreated(_))
        ));
        assert!(Invocation::parse(json!({"continue": "nope"})).is_err());
        assert!(Invocation::parse(json!(42)).is_err());
    }
}
