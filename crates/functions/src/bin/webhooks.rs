//! The `webhooks` function: delivers verdicts from its queue as signed webhooks
//! (`lambda::webhooks`). Locally the API's server delivers them itself (`local`).

use vu_aws as aws;
use vu_core::ports::BoxError;
use vu_functions::webhooks::WebhookConfig;
use vu_functions::{lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = aws::load_sdk_config().await;
    let (config, secret) = WebhookConfig::from_lookup(|k| std::env::var(k).ok())?
        .ok_or("WEBHOOK_URL must be set: the function has nowhere to deliver")?;
    let queue_url = config
        .queue_url
        .clone()
        .ok_or("WEBHOOK_QUEUE_URL must name the webhooks' queue")?;
    // What is signed is re-read from the sessions table, never taken from the event.
    let table =
        std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME must name the sessions table")?;
    let sessions = std::sync::Arc::new(aws::DynamoSessions::new(&sdk, table));
    let deliverer = wiring::deliverer(&sdk, config, secret, sessions).await?;
    lambda::webhooks::run(deliverer, aws::SqsQueue::new(&sdk, queue_url)).await
}
