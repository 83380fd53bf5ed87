//! The verifier queue's messages: S3 `ObjectCreated` notifications (the part the verifier
//! reads), hand-overs (`{"continue": "<upload_id>"}`) and the schedule's `{"sweep": {}}`.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// S3 event keys are form-encoded: `+` is a space, other bytes are `%XX`.
pub fn decode_key(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The message that continues a paused verification in a fresh invocation:
/// `{"continue": "<upload_id>"}`.
pub fn continuation(upload_id: &str) -> serde_json::Value {
    serde_json::json!({ "continue": upload_id })
}

/// The message a schedule sends: re-drive the sessions whose lease ran out.
pub fn sweep() -> serde_json::Value {
    serde_json::json!({ "sweep": {} })
}

/// One message of the verifier's queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
}

/// The part of an S3 notification the verifier reads: which object, and which version. Nothing
/// else is required, so a notification that differs elsewhere (an emulator's `eventTime` without
/// a zone, say) is still understood.
#[derive(Debug, Deserialize)]
pub struct S3Notification {
    #[serde(rename = "Records")]
    pub records: Vec<S3Record>,
}

#[derive(Debug, Deserialize)]
pub struct S3Record {
    pub s3: S3Entity,
}

#[derive(Debug, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct S3Object {
    /// Form-encoded, as S3 sends it (`decode_key`).
    pub key: String,
    #[serde(rename = "versionId", default)]
    pub version_id: Option<String>,
}
