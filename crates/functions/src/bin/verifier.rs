//! The `verifier` function: in Lambda, verifies the sessions its queue hands it (S3's
//! `ObjectCreated` notifications, hand-overs) and sweeps on a schedule (`lambda::verifier`).
//! Elsewhere, the CLI `cli::verify`.

use std::process::ExitCode;

use vu_aws as aws;
use vu_core::ports::BoxError;
use vu_functions::config::{Runtime, VerifierConfig, cli_verify_from_env};
use vu_functions::lambda::verifier::{self, Verifier};
use vu_functions::{verifier_cli, wiring};

async fn lambda_main(sdk: &aws_config::SdkConfig, config: VerifierConfig) -> Result<(), BoxError> {
    let uploads = wiring::uploads(
        sdk,
        wiring::Service {
            store: &config.store,
            limits: config.limits.clone(),
            verify: config.verify,
            verifier_queue_url: Some(&config.queue_url),
            event_bus: config.event_bus.as_deref(),
            receipts: wiring::receipts(sdk, config.receipts.as_ref()),
        },
    )?;
    let continuation = aws::SqsQueue::new(sdk, &config.queue_url);
    verifier::run(Verifier {
        uploads: &uploads,
        bucket: &config.store.bucket,
        continuation: &continuation,
    })
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_http::tracing::init_default_subscriber();
    if Runtime::current() == Runtime::Lambda {
        let started = match VerifierConfig::from_env() {
            Ok(config) => lambda_main(&aws::load_sdk_config().await, config).await,
            Err(e) => Err(e.into()),
        };
        return match started {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "verifier function failed");
                ExitCode::FAILURE
            }
        };
    }
    match cli_verify_from_env() {
        Ok(cfg) => {
            verifier_cli::main(&aws::load_sdk_config().await, cfg, std::env::args().skip(1)).await
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
