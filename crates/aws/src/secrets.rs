//! Secrets read once per cold start from Secrets Manager when a function is given their ARN (the
//! template never puts a secret itself in the environment).

use aws_sdk_secretsmanager::Client;

use vu_core::ports::BoxError;

/// The string value of the secret `arn`.
pub async fn secret_string(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String, BoxError> {
    let value = Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await?;
    Ok(value
        .secret_string()
        .ok_or_else(|| format!("the secret {arn} has no string value"))?
        .to_owned())
}
