//! The `verifier` function: in Lambda, verifies the sessions its queue hands it (S3's
//! `ObjectCreated` notifications, hand-overs) and sweeps on a schedule (`lambda::verifier`).
//! Elsewhere, the CLI `cli::verify`.

use std::process::ExitCode;

use vu_aws as aws;
use vu_core::ports::BoxError;
use vu_functions::config::{Config, verify_from_lookup};
use vu_functions::lambda::verifier::{self, Verifier};
use vu_functions::{verifier_cli, wiring};

async fn lambda_main(sdk: &aws_config::SdkConfig) -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let uploads = wiring::uploads(sdk, &config)?;
    let url = config
        .verifier_queue_url
        .as_deref()
        .ok_or("VERIFIER_QUEUE_URL must name the verifier's queue")?;
    let continuation = aws::SqsQueue::new(sdk, url);
    verifier::run(Verifier {
        uploads: &uploads,
        bucket: &config.bucket,
        continuation: &continuation,
    })
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_http::tracing::init_default_subscriber();
    let sdk = aws::load_sdk_config().await;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match lambda_main(&sdk).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "verifier function failed");
                ExitCode::FAILURE
            }
        };
    }
    match verify_from_lookup(|k| std::env::var(k).ok()) {
        Ok(cfg) => verifier_cli::main(&sdk, cfg, std::env::args().skip(1)).await,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
