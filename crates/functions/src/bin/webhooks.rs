//! The `webhooks` function: delivers verdicts from its queue as signed webhooks
//! (`lambda::webhooks`). Locally the API's server delivers them itself (`local`).

use vu_aws as aws;
use vu_core::ports::BoxError;
use vu_functions::config::WebhooksConfig;
use vu_functions::{lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    lambda_http::tracing::init_default_subscriber();
    let config = WebhooksConfig::from_env()?;
    let sdk = aws::load_sdk_config().await;
    // What is signed is re-read from the sessions table, never taken from the event.
    let sessions = std::sync::Arc::new(aws::DynamoSessions::new(&sdk, config.table));
    let deliverer = wiring::deliverer(&sdk, config.webhook, config.secret, sessions).await?;
    lambda::webhooks::run(deliverer, aws::SqsQueue::new(&sdk, config.queue_url)).await
}
