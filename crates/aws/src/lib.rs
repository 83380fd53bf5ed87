//! The one AWS adapter of each port of `vu-core`: S3 (with SigV4 pre-signing and POST
//! policies), DynamoDB, SQS, EventBridge, KMS (receipts' signatures); and Secrets Manager for the functions' secrets.

mod dynamodb;
mod events;
mod kms;
mod s3;
mod secrets;
mod sqs;

pub use dynamodb::quota::{MAX_SHARDS, SLOTS_PER_SHARD, shards_for};
pub use dynamodb::{DynamoSessions, IN_FLIGHT_INDEX, OWNER_INDEX, capacity as dynamodb_capacity};
pub use events::EventBus;
pub use kms::KmsSigner;
pub use s3::presign;
pub use s3::{EndpointError, REMOVAL_TAG, S3Objects};
pub use secrets::secret_string;
pub use sqs::{Received, SqsQueue};

/// The SDK configuration from the standard chain (env, profile, IMDS/ECS, Lambda's role).
/// `AWS_ENDPOINT_URL` points every client at a local emulator; `AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS` one service's client (and, for S3, its
/// pre-signed URLs) at another.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
