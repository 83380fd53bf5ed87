//! The service built over the AWS adapters, once per cold start: each binary calls these with the
//! settings it read.

use std::sync::Arc;

use vu_aws::{DynamoSessions, EndpointError, EventBus, S3Objects, SqsQueue};
use vu_core::ports::{BoxError, SessionStore};
use vu_core::service::Uploads;

use crate::config::Config;
use crate::webhooks::{Deliverer, Secret, SecretSource, WebhookConfig};

/// The upload service over S3 and DynamoDB, sending hand-overs to the verifier's queue and
/// announcing verdicts on the event bus when they are configured.
pub fn uploads(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Uploads, EndpointError> {
    let objects = S3Objects::new(sdk, &config.bucket, config.verify.stall_timeout)?
        .with_kms_key(config.s3.kms_key_arn.clone());
    let objects = if config.s3.accelerate {
        objects.accelerated()?
    } else {
        objects
    };
    let uploads = Uploads::new(
        Arc::new(objects),
        Arc::new(DynamoSessions::new(sdk, &config.table)),
        config.limits.clone(),
        config.verify,
    );
    let uploads = match &config.verifier_queue_url {
        Some(url) => uploads.with_verifier(Arc::new(SqsQueue::new(sdk, url))),
        None => uploads,
    };
    Ok(match &config.event_bus {
        Some(bus) => uploads.with_announcer(Arc::new(EventBus::new(sdk, bus))),
        None => uploads,
    })
}

/// The webhook deliverer, its secret read from Secrets Manager when given by ARN.
pub async fn deliverer(
    sdk: &aws_config::SdkConfig,
    config: WebhookConfig,
    source: SecretSource,
    sessions: Arc<dyn SessionStore>,
) -> Result<Deliverer, BoxError> {
    let secret = match source {
        SecretSource::Value(secret) => secret,
        SecretSource::SecretsManager(arn) => {
            let raw = vu_aws::secret_string(sdk, &arn).await?;
            Secret::parse(&raw).map_err(|why| format!("the webhook secret in {arn}: {why}"))?
        }
    };
    Ok(Deliverer::new(config, secret, sessions)?)
}
