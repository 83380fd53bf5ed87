//! The HTTP API: in Lambda behind API Gateway, or as a plain local server on `LISTEN_ADDR`.

use std::sync::Arc;

use vu_aws as aws;
use vu_functions::config::ApiConfig;
use vu_functions::{http, local, wiring};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    lambda_http::tracing::init_default_subscriber();
    let config = ApiConfig::from_env()?;
    let sdk = aws::load_sdk_config().await;
    let uploads = wiring::uploads(
        &sdk,
        wiring::Service {
            store: &config.store,
            limits: config.limits.clone(),
            verify: config.verify,
            verifier_queue_url: config.verifier_queue_url.as_deref(),
            event_bus: config.event_bus.as_deref(),
            receipts: wiring::receipts(&sdk, config.receipts.as_ref()),
        },
    )?;
    let callers = config.callers;

    // The local server's settings are read only outside Lambda.
    let Some(server) = config.local else {
        return lambda_http::run(http::router(Arc::new(uploads), callers)).await;
    };
    // Locally the verifier function's work runs beside the server: it consumes the same queue
    // (S3's notifications, hand-overs) and sweeps on a timer.
    let uploads = Arc::new(uploads);
    match &config.verifier_queue_url {
        Some(url) => {
            let queue = Arc::new(aws::SqsQueue::new(&sdk, url));
            tokio::spawn(local::run_verifier(
                uploads.clone(),
                queue,
                config.store.bucket.clone(),
                local::run_for(&config.limits),
            ));
            tokio::spawn(local::run_sweeper(uploads.clone(), server.sweep_interval));
        }
        None => tracing::warn!(
            "no VERIFIER_QUEUE_URL: objects too large to verify inline stay `verifying` (`make dev` sets it)"
        ),
    }
    // And the webhooks function's: verdicts from the bus's webhook rule, delivered and retried.
    if let Some(webhooks) = server.webhooks {
        match webhooks.queue_url {
            Some(url) => {
                let sessions = Arc::new(aws::DynamoSessions::new(&sdk, &config.store.table));
                let deliverer =
                    wiring::deliverer(&sdk, webhooks.webhook, webhooks.secret, sessions);
                let queue = Arc::new(aws::SqsQueue::new(&sdk, url));
                let deliverer = deliverer.await?;
                tokio::spawn(local::run_webhooks(Arc::new(deliverer), queue));
            }
            None => tracing::warn!("WEBHOOK_URL is set but WEBHOOK_QUEUE_URL is not: no webhooks"),
        }
    }
    let app = http::router(uploads, callers);
    // Many owners on one local server (the load bench): a header stands in for the authorizer.
    let app = match server.caller_header {
        Some(header) => http::with_local_callers(app, header),
        None => app,
    };
    // Locally the page is served beside the API; deployed, it is a static file (README).
    let app = if server.web_dir.join("index.html").is_file() {
        http::with_page(app, &server.web_dir)
    } else {
        tracing::warn!(dir = %server.web_dir.display(), "no upload page there; serving the API only");
        app
    };
    let listener = tokio::net::TcpListener::bind(server.listen_addr).await?;
    tracing::info!(
        "verified-uploads API on http://{} (bucket {}, table {})",
        listener.local_addr()?,
        config.store.bucket,
        config.store.table
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
