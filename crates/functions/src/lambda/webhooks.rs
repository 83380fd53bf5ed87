//! The `webhooks` function: delivers the verdicts its queue hands it (EventBridge → SQS). A
//! failed delivery is delayed on the queue by the back-off and reported as a batch item failure;
//! after the queue's `maxReceiveCount` attempts it goes to the dead-letter queue.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::webhooks::{Attempt, Deliverer};
use vu_aws::SqsQueue;
use vu_core::error::chain;
use vu_core::ports::BoxError;

/// Runs `deliverer` under the Lambda runtime, delaying retries on `queue`.
pub async fn run(deliverer: Deliverer, queue: SqsQueue) -> Result<(), BoxError> {
    let (deliverer, queue) = (&deliverer, &queue);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let records = event.payload.records;
        let attempts = records.iter().filter_map(|r| {
            Some(Attempt {
                id: r.message_id.as_deref()?,
                body: r.body.as_deref().unwrap_or_default(),
                attempt: r
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
        });
        let failed = deliverer.deliver_batch(attempts).await;
        for (id, delay) in &failed {
            let receipt = records
                .iter()
                .find(|r| r.message_id.as_deref() == Some(*id))
                .and_then(|r| r.receipt_handle.as_deref());
            if let Some(receipt) = receipt
                && let Err(e) = queue.retry_after(receipt, *delay).await
            {
                // The message still comes back, at the queue's visibility timeout.
                tracing::warn!(error = %chain(&e), "could not delay a failed webhook");
            }
        }
        Ok::<Value, BoxError>(json!({
            "batchItemFailures": failed
                .into_iter()
                .map(|(id, _)| json!({ "itemIdentifier": id }))
                .collect::<Vec<_>>(),
        }))
    }))
    .await
}
