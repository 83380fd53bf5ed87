//! The one AWS adapter of each port.

mod dynamodb;
mod lambda;
mod s3;

pub use dynamodb::DynamoSessions;
pub use lambda::SelfInvoke;
pub use s3::S3Objects;

/// The SDK configuration from the standard chain (env, profile, IMDS/ECS, Lambda's role).
/// `AWS_ENDPOINT_URL` points every client at a local emulator.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The upload service over S3 and DynamoDB, invoking the verifier function on hand-overs when
/// one is configured: built once per cold start.
pub fn uploads(
    sdk: &aws_config::SdkConfig,
    config: &crate::config::Config,
) -> Result<crate::service::Uploads, crate::presign::EndpointError> {
    let objects = S3Objects::new(sdk, &config.bucket, config.verify.stall_timeout)?;
    let uploads = crate::service::Uploads::new(
        std::sync::Arc::new(objects),
        std::sync::Arc::new(DynamoSessions::new(sdk, &config.table)),
        config.limits.clone(),
        config.verify,
    );
    Ok(match &config.verifier_function {
        Some(name) => uploads.with_verifier(std::sync::Arc::new(SelfInvoke::new(sdk, name))),
        None => uploads,
    })
}
