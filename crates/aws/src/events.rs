//! The `Announcer` on EventBridge: one event per verdict on the configured bus, its `detail` the
//! record exactly as `GET /uploads/{id}` answers it, and for a verified upload the `receipt`
//! signed with its verdict, when one was.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use vu_contract::Record;
use vu_contract::events::{SOURCE, detail_type};
use vu_core::domain::UploadRecord;
use vu_core::ports::{Announcer, PortError, Upstream};

pub struct EventBus {
    client: Client,
    bus: String,
}

impl EventBus {
    pub fn new(sdk: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl Announcer for EventBus {
    async fn announce(&self, record: &UploadRecord) -> Result<(), PortError> {
        let Some(detail_type) = detail_type(record.status()) else {
            return Ok(());
        };
        let mut detail = serde_json::to_value(Record::from(record))
            .map_err(|e| PortError::unavailable(Upstream::Events, e))?;
        // The receipt signed with the verdict, as stored: never signed here from the table.
        if let (Some(receipt), Some(fields)) = (record.receipt(), detail.as_object_mut()) {
            fields.insert("receipt".into(), receipt.into());
        }
        let detail = detail.to_string();
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .resources(format!(
                "arn:aws:s3:::{}/{}",
                record.bucket,
                record.key.as_str()
            ))
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Events, e))?;
        // PutEvents answers 200 with per-entry failures (throttling, an internal error).
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PortError::unavailable(
                Upstream::Events,
                format!("EventBridge refused the event: {why}"),
            ));
        }
        Ok(())
    }
}
