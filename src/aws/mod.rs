//! The one AWS adapter of each port.

mod dynamodb;
mod events;
mod s3;
mod secrets;
mod sqs;

pub use dynamodb::DynamoSessions;
pub use events::{EventBus, SOURCE as EVENT_SOURCE, detail_type};
pub use s3::S3Objects;
pub use secrets::deliverer;
pub use sqs::{Received, SqsQueue};

/// The SDK configuration from the standard chain (env, profile, IMDS/ECS, Lambda's role).
/// `AWS_ENDPOINT_URL` points every client at a local emulator; `AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS` one service's client (and, for S3, its
/// pre-signed URLs) at another.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The upload service over S3 and DynamoDB, sending hand-overs to the verifier's queue and
/// announcing verdicts on the event bus when they are configured: built once per cold start.
pub fn uploads(
    sdk: &aws_config::SdkConfig,
    config: &crate::config::Config,
) -> Result<crate::service::Uploads, crate::presign::EndpointError> {
    let objects = S3Objects::new(sdk, &config.bucket, config.verify.stall_timeout)?
        .with_kms_key(config.s3.kms_key_arn.clone());
    let objects = if config.s3.accelerate {
        objects.accelerated()?
    } else {
        objects
    };
    let uploads = crate::service::Uploads::new(
        std::sync::Arc::new(objects),
        std::sync::Arc::new(DynamoSessions::new(sdk, &config.table)),
        config.limits.clone(),
        config.verify,
    );
    let uploads = match &config.verifier_queue_url {
        Some(url) => uploads.with_verifier(std::sync::Arc::new(SqsQueue::new(sdk, url))),
        None => uploads,
    };
    Ok(match &config.event_bus {
        Some(bus) => uploads.with_announcer(std::sync::Arc::new(EventBus::new(sdk, bus))),
        None => uploads,
    })
}
