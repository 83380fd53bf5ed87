//! What AWS does through events, done by the local server (`make dev`): it consumes the
//! verifier's queue as Lambda's event source mapping does (S3's notifications and every hand-over
//! arrive there), and sweeps on a timer as the template's schedule does.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::VerifierQueue;
use crate::error::chain;
use crate::lambda::verifier::Verifier;
use crate::service::Uploads;

/// Consumes the verifier's queue until the task is dropped: each batch is handled as the verifier
/// function handles it in AWS, and only the messages that succeeded are deleted (the others come
/// back after the queue's visibility timeout, then go to its dead-letter queue).
pub async fn run_verifier(uploads: Arc<Uploads>, queue: Arc<VerifierQueue>, bucket: String) {
    loop {
        let received = match queue.receive(1).await {
            Ok(received) => received,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not read the verifier's queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if received.is_empty() {
            continue;
        }
        // A long verification must not hold up the next batch, as Lambda would scale out.
        let (uploads, queue, bucket) = (uploads.clone(), queue.clone(), bucket.clone());
        tokio::spawn(async move {
            let verifier = Verifier {
                uploads: &uploads,
                bucket: &bucket,
                continuation: queue.as_ref(),
            };
            let messages = received.iter().map(|r| r.message.clone()).collect();
            let failed = verifier.handle_messages(messages, None).await;
            for r in received.iter().filter(|r| !failed.contains(&r.message.id)) {
                if let Err(e) = queue.delete(&r.receipt).await {
                    tracing::warn!(error = %chain(&e), "could not acknowledge a queue message");
                }
            }
        });
    }
}

/// Re-drives sessions whose lease ran out, every `interval`, until the task is dropped.
pub async fn run_sweeper(uploads: Arc<Uploads>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = uploads
            .sweep(crate::lambda::verifier::SWEEP_LIMIT, None)
            .await
        {
            tracing::warn!(error = %chain(&e), "sweep failed");
        }
    }
}
