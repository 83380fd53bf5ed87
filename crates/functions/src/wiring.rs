//! The service built over the AWS adapters, once per cold start: each binary calls these with the
//! pieces of its own settings they need.

use std::sync::Arc;

use vu_aws::{DynamoSessions, EndpointError, EventBus, KmsSigner, S3Objects, SqsQueue};
use vu_core::ports::{BoxError, SessionStore};
use vu_core::receipt::Receipts;
use vu_core::service::Uploads;
use vu_core::settings::{Limits, VerifyConfig};

use crate::config::{ReceiptSettings, SecretSource, Store};
use crate::webhooks::{Deliverer, Secret, WebhookConfig};

/// What the upload service is built from: the API and the verifier each fill it from their
/// settings.
pub struct Service<'a> {
    pub store: &'a Store,
    pub limits: Limits,
    pub verify: VerifyConfig,
    /// The verifier's queue, every hand-over is sent to; `None`: hand-overs wait for S3's event
    /// or an owner's read.
    pub verifier_queue_url: Option<&'a str>,
    /// The bus verdicts are announced on; `None`: they are not.
    pub event_bus: Option<&'a str>,
    /// What signs each verdict `verified` this service reaches (the receipt is stored with it,
    /// then served by `GET /uploads/{id}/receipt` and carried by the event); `None`: no receipts.
    pub receipts: Option<Receipts>,
}

/// The upload service over S3 and DynamoDB, sending hand-overs to the verifier's queue and
/// announcing verdicts on the event bus when they are configured.
pub fn uploads(
    sdk: &aws_config::SdkConfig,
    service: Service<'_>,
) -> Result<Uploads, EndpointError> {
    let Service {
        store,
        limits,
        verify,
        verifier_queue_url,
        event_bus,
        receipts,
    } = service;
    let objects = S3Objects::new(sdk, &store.bucket, verify.stall_timeout)?
        .with_kms_key(store.s3.kms_key_arn.clone());
    let objects = if store.s3.accelerate {
        objects.accelerated()?
    } else {
        objects
    };
    let uploads = Uploads::new(
        Arc::new(objects),
        Arc::new(DynamoSessions::new(sdk, &store.table)),
        limits,
        verify,
    );
    let uploads = match verifier_queue_url {
        Some(url) => uploads.with_verifier(Arc::new(SqsQueue::new(sdk, url))),
        None => uploads,
    };
    let uploads = match event_bus {
        Some(bus) => uploads.with_announcer(Arc::new(EventBus::new(sdk, bus))),
        None => uploads,
    };
    Ok(match receipts {
        Some(receipts) => uploads.with_receipts(receipts),
        None => uploads,
    })
}

/// Receipts signed by the KMS key the settings name (the emulator's under `make dev`).
pub fn receipts(
    sdk: &aws_config::SdkConfig,
    settings: Option<&ReceiptSettings>,
) -> Option<Receipts> {
    let settings = settings?;
    let signer = KmsSigner::new(
        sdk,
        settings.key_id.clone(),
        settings.retired_key_ids.clone(),
    );
    Some(Receipts::new(Arc::new(signer), settings.issuer.clone()))
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
