//! What AWS does through events, done by the local server (`make dev`): it consumes the
//! verifier's queue as Lambda's event source mapping does (S3's notifications and every hand-over
//! arrive there), sweeps on a timer as the template's schedule does, and delivers webhooks from
//! their queue as the `webhooks` function does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::lambda::verifier::Verifier;
use vu_aws::SqsQueue;
use vu_core::error::chain;
use vu_core::service::{Budget, Uploads};

/// Batches handled at once, as a few Lambda instances would, and the messages in each: at most
/// eight verifications run at once.
const BATCHES_IN_FLIGHT: usize = 2;
const MESSAGES_PER_BATCH: i32 = 4;

/// Consumes the verifier's queue until the task is dropped: each batch is handled as the verifier
/// function handles it in AWS, with a deadline `run_for` ahead (as Lambda's timeout), and only the
/// messages that succeeded are deleted (the others come back after the queue's visibility
/// timeout, then go to its dead-letter queue).
pub async fn run_verifier(
    uploads: Arc<Uploads>,
    queue: Arc<SqsQueue>,
    bucket: String,
    run_for: Duration,
) {
    let slots = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        // Receive only with a slot free, so a burst waits in the queue rather than in memory.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let received = match queue.receive(1, MESSAGES_PER_BATCH).await {
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
            let _slot = slot;
            let verifier = Verifier {
                uploads: &uploads,
                bucket: &bucket,
                continuation: queue.as_ref(),
            };
            let messages = received.iter().map(|r| r.message.clone()).collect();
            // A deadline, as in Lambda: a long run pauses, saves its progress and continues in a
            // fresh run, instead of outliving its lease.
            let deadline = Some(Instant::now() + run_for);
            let failed = verifier.handle_messages(messages, deadline).await;
            for r in received.iter().filter(|r| !failed.contains(&r.message.id)) {
                if let Err(e) = queue.delete(&r.receipt).await {
                    tracing::warn!(error = %chain(&e), "could not acknowledge a queue message");
                }
            }
        });
    }
}

/// Delivers the webhooks queue's messages until the task is dropped, as the `webhooks` function
/// does in AWS: delivered ones are deleted, failed ones delayed by the back-off.
pub async fn run_webhooks(deliverer: Arc<crate::webhooks::Deliverer>, queue: Arc<SqsQueue>) {
    loop {
        let received = match queue.receive(1, 10).await {
            Ok(received) => received,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not read the webhooks' queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let attempts = received.iter().map(|r| crate::webhooks::Attempt {
            id: &r.message.id,
            body: &r.message.body,
            attempt: r.attempt,
        });
        let failed = deliverer.deliver_batch(attempts).await;
        for r in &received {
            let outcome = match failed.iter().find(|(id, _)| *id == r.message.id) {
                Some((_, delay)) => queue.retry_after(&r.receipt, *delay).await,
                None => queue.delete(&r.receipt).await,
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %chain(&e), "could not settle a webhook message");
            }
        }
    }
}

/// How long one local run may verify before it pauses: well inside the lease it holds.
pub fn run_for(limits: &crate::config::Limits) -> Duration {
    limits
        .completion_lease
        .saturating_sub(Duration::from_secs(30))
        .max(Duration::from_secs(1))
}

/// Re-drives sessions whose lease ran out, every `interval`, until the task is dropped.
pub async fn run_sweeper(uploads: Arc<Uploads>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = uploads
            .sweep(crate::lambda::verifier::SWEEP_LIMIT, Budget::verifier(None))
            .await
        {
            tracing::warn!(error = %chain(&e), "sweep failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_run_pauses_well_inside_its_lease() {
        let limits = crate::config::Limits::default();
        assert!(run_for(&limits) + Duration::from_secs(30) <= limits.completion_lease);
        let short = crate::config::Limits {
            completion_lease: Duration::from_secs(30),
            ..limits
        };
        assert!(run_for(&short) < short.completion_lease);
    }
}
