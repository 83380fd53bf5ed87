//! The verifier queue's messages: S3 `ObjectCreated` notifications (the part the verifier
//! reads), hand-overs (`{"continue": "<upload_id>"}`), one segment of a verification fanned out
//! (`{"segment": {...}}`) and the schedule's `{"sweep": {}}`.

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::ChainState;

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

/// One segment of a verification fanned out over the verifier's queue: hash bytes
/// `[start, end)` of the object the session pinned, from the chaining value the client declared
/// before them, and record the result under the lease `token` names. Everything but the id,
/// the token and the index is a cross-check: the worker recomputes the segment from the record
/// and refuses a message that disagrees (or whose token is no longer the holder's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMessage {
    pub upload_id: String,
    /// The holder's lease token when it fanned out: a result from a stale holder is refused.
    pub token: String,
    /// The segment's index, from 0, in object order.
    pub index: u16,
    pub start: u64,
    pub end: u64,
    /// The declared chaining value before `start` (64 hex).
    pub from: ChainState,
}

impl Serialize for ChainState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChainState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        Self::parse_hex(&hex).map_err(serde::de::Error::custom)
    }
}

impl SegmentMessage {
    /// The message body: `{"segment": {...}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "segment": self })
    }
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
