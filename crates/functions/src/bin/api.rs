//! The HTTP API: in Lambda behind API Gateway, or as a plain local server on `LISTEN_ADDR`.

use std::sync::Arc;

use vu_aws as aws;
use vu_functions::webhooks::WebhookConfig;
use vu_functions::{config::Config, http, local, wiring};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    lambda_http::tracing::init_default_subscriber();
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let config = Config::from_env()?;
    let config = if in_lambda {
        config.in_lambda()?
    } else {
        config
    };
    let sdk = aws::load_sdk_config().await;
    let callers = if config.auth_required {
        http::CallerPolicy::AuthorizerRequired
    } else {
        http::CallerPolicy::AnonymousAllowed
    };
    let uploads = wiring::uploads(&sdk, &config)?;

    if in_lambda {
        return lambda_http::run(http::router(Arc::new(uploads), callers)).await;
    }
    // Locally the verifier function's work runs beside the server: it consumes the same queue
    // (S3's notifications, hand-overs) and sweeps on a timer.
    let uploads = Arc::new(uploads);
    match &config.verifier_queue_url {
        Some(url) => {
            let queue = Arc::new(aws::SqsQueue::new(&sdk, url));
            tokio::spawn(local::run_verifier(
                uploads.clone(),
                queue,
                config.bucket.clone(),
                local::run_for(&config.limits),
            ));
            tokio::spawn(local::run_sweeper(uploads.clone(), config.sweep_interval));
        }
        None => tracing::warn!(
            "no VERIFIER_QUEUE_URL: objects too large to verify inline stay `verifying` (`make dev` sets it)"
        ),
    }
    // And the webhooks function's: verdicts from the bus's webhook rule, delivered and retried.
    if let Some((webhooks, secret)) = WebhookConfig::from_lookup(|k| std::env::var(k).ok())? {
        match webhooks.queue_url.clone() {
            Some(url) => {
                let sessions = Arc::new(aws::DynamoSessions::new(&sdk, &config.table));
                let deliverer =
                    Arc::new(wiring::deliverer(&sdk, webhooks, secret, sessions).await?);
                let queue = Arc::new(aws::SqsQueue::new(&sdk, url));
                tokio::spawn(local::run_webhooks(deliverer, queue));
            }
            None => tracing::warn!("WEBHOOK_URL is set but WEBHOOK_QUEUE_URL is not: no webhooks"),
        }
    }
    let app = http::router(uploads, callers);
    // Locally the page is served beside the API; deployed, it is a static file (README).
    let app = if config.web_dir.join("index.html").is_file() {
        http::with_page(app, &config.web_dir)
    } else {
        tracing::warn!(dir = %config.web_dir.display(), "no upload page there; serving the API only");
        app
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    tracing::info!(
        "verified-uploads API on http://{} (bucket {}, table {})",
        listener.local_addr()?,
        config.bucket,
        config.table
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
