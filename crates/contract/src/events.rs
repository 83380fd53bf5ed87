//! Verdicts announced to the rest of the system: EventBridge events (`source`, `detail-type`,
//! `detail` = the record) and the webhooks made from them.

use crate::Status;

/// The `source` of every event this service puts on its bus.
pub const SOURCE: &str = "verified-uploads";

/// `detail-type` of the event announcing `status`; `None` for a status that is not a verdict.
pub fn detail_type(status: Status) -> Option<&'static str> {
    match status {
        Status::Verified => Some("Upload Verified"),
        Status::Failed => Some("Upload Failed"),
        Status::Aborted => Some("Upload Aborted"),
        _ => None,
    }
}

/// The status a verdict's `detail-type` announces.
pub fn status_of(detail_type: &str) -> Option<Status> {
    Status::ALL
        .into_iter()
        .find(|s| self::detail_type(*s) == Some(detail_type))
}

/// The dedupe key of a verdict (the webhook's `webhook-id`): one per upload and final status.
pub fn dedupe_key(upload_id: &str, status: Status) -> String {
    format!("{upload_id}:{status}")
}
