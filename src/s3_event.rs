//! The `verifier` function's handler for S3 `ObjectCreated` events.

use aws_lambda_events::event::s3::S3Event;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::error::{Error, chain};
use crate::service::{EventOutcome, Uploads};

/// S3 event keys are form-encoded: `+` is a space, other bytes are `%XX`.
pub fn decode_key(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Handles every record; one line per record says what became of it. An upstream failure fails
/// the invocation so Lambda retries it; a record that is not ours is ignored.
pub async fn handle(uploads: &Uploads, bucket: &str, event: S3Event) -> Result<Vec<Value>, Error> {
    let mut lines = Vec::with_capacity(event.records.len());
    for record in event.records {
        let (Some(b), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key) else {
            continue;
        };
        let key = decode_key(&raw_key);
        if b != bucket {
            lines.push(json!({ "bucket": b, "key": key, "outcome": "ignored", "reason": "not the uploads bucket" }));
            continue;
        }
        let span = tracing::info_span!("object_created", key = %key);
        let outcome = tracing::Instrument::instrument(uploads.on_object_created(&key), span).await;
        let line = match outcome {
            Ok(EventOutcome::Done(r)) => json!({
                "key": key, "outcome": r.status, "upload_id": r.upload_id, "sha256": r.sha256, "error": r.error,
            }),
            Ok(EventOutcome::Ignored(why)) => {
                json!({ "key": key, "outcome": "ignored", "reason": why })
            }
            Err(e) => {
                tracing::error!(error = %chain(&e), key = %key, "verification did not finish");
                return Err(e);
            }
        };
        tracing::info!(result = %line, "object event handled");
        lines.push(line);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(
            super::decode_key("uploads/01J/big+file%C3%BC%2B.bin"),
            "uploads/01J/big fileü+.bin"
        );
    }
}
