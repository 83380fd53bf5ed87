//! The webhook signing secret, read once per cold start from Secrets Manager when the function is
//! given its ARN (the template never puts the secret itself in the environment).

use std::sync::Arc;

use aws_sdk_secretsmanager::Client;

use crate::ports::{BoxError, SessionStore};
use crate::webhooks::{Deliverer, Secret, SecretSource, WebhookConfig};

pub async fn deliverer(
    sdk: &aws_config::SdkConfig,
    config: WebhookConfig,
    source: SecretSource,
    sessions: Arc<dyn SessionStore>,
) -> Result<Deliverer, BoxError> {
    let secret = match source {
        SecretSource::Value(secret) => secret,
        SecretSource::SecretsManager(arn) => {
            let value = Client::new(sdk)
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await?;
            let raw = value
                .secret_string()
                .ok_or("the webhook secret has no string value")?;
            Secret::parse(raw).map_err(|why| format!("the webhook secret in {arn}: {why}"))?
        }
    };
    Ok(Deliverer::new(config, secret, sessions)?)
}
