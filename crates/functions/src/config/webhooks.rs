//! Webhook delivery (`WEBHOOK_*`): the `webhooks` function's settings, and the local server's when
//! it delivers them itself (`make dev`).

use std::time::Duration;

use super::{ConfigError, Lookup, env, store};
use crate::webhooks::{Secret, WebhookConfig};

/// Where the secret comes from: the environment locally, Secrets Manager in AWS (so it is
/// never plain text in the function's configuration).
#[derive(Debug, Clone)]
pub enum SecretSource {
    Value(Secret),
    SecretsManager(String),
}

/// Where and how verdicts are delivered, and the queue they arrive in.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `WEBHOOK_URL`, `WEBHOOK_TIMEOUT_SECONDS`, `WEBHOOK_RETRY_BASE_SECONDS`,
    /// `WEBHOOK_RETRY_MAX_SECONDS`.
    pub webhook: WebhookConfig,
    /// `WEBHOOK_SECRET`, or else `WEBHOOK_SECRET_ARN`.
    pub secret: SecretSource,
    /// `WEBHOOK_QUEUE_URL`: retries are delayed on it.
    pub queue_url: Option<String>,
}

/// `None` when `WEBHOOK_URL` is unset: no webhooks.
pub(super) fn delivery(get: &impl Lookup) -> Result<Option<Delivery>, ConfigError> {
    let Some(url) = get.set("WEBHOOK_URL") else {
        return Ok(None);
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name: "WEBHOOK_URL",
            value: url,
            reason: "must be an http(s) URL".into(),
        });
    }
    let secret = match (get.set("WEBHOOK_SECRET"), get.set("WEBHOOK_SECRET_ARN")) {
        (Some(raw), _) => {
            SecretSource::Value(Secret::parse(&raw).map_err(|reason| ConfigError::Invalid {
                name: "WEBHOOK_SECRET",
                value: "(hidden)".into(),
                reason,
            })?)
        }
        (None, Some(arn)) => SecretSource::SecretsManager(arn),
        (None, None) => return Err(ConfigError::Missing("WEBHOOK_SECRET")),
    };
    let webhook = WebhookConfig {
        url,
        timeout: get.secs("WEBHOOK_TIMEOUT_SECONDS", Duration::from_secs(10), 1, 60)?,
        retry_base: get.secs(
            "WEBHOOK_RETRY_BASE_SECONDS",
            Duration::from_secs(30),
            0,
            3_600,
        )?,
        // SQS delays a message at most 12 hours.
        retry_max: get.secs(
            "WEBHOOK_RETRY_MAX_SECONDS",
            Duration::from_secs(3_600),
            0,
            43_200,
        )?,
    };
    Ok(Some(Delivery {
        webhook,
        secret,
        queue_url: get.set("WEBHOOK_QUEUE_URL"),
    }))
}

/// The `webhooks` function's settings: it has nothing to do without a URL, a queue and the table.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    pub webhook: WebhookConfig,
    pub secret: SecretSource,
    /// `WEBHOOK_QUEUE_URL`, the queue its event source reads.
    pub queue_url: String,
    /// `TABLE_NAME`: what is signed is re-read from the sessions table, never taken from the
    /// event.
    pub table: String,
}

impl WebhooksConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let Delivery {
            webhook,
            secret,
            queue_url,
        } = delivery(&get)?.ok_or(ConfigError::Missing("WEBHOOK_URL"))?;
        Ok(Self {
            webhook,
            secret,
            queue_url: queue_url.ok_or(ConfigError::Missing("WEBHOOK_QUEUE_URL"))?,
            table: store::table(&get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn env(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> + use<> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn webhooks_are_configured_with_a_url_and_a_secret() {
        assert!(delivery(&env(&[])).unwrap().is_none());
        assert!(matches!(
            delivery(&env(&[("WEBHOOK_URL", "https://example.com/h")])),
            Err(ConfigError::Missing("WEBHOOK_SECRET"))
        ));
        let Delivery {
            webhook: config,
            secret,
            ..
        } = delivery(&env(&[
            ("WEBHOOK_URL", "https://example.com/h"),
            (
                "WEBHOOK_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.retry_delay(1), Duration::from_secs(30));
        assert!(matches!(secret, SecretSource::SecretsManager(_)));
        let err = delivery(&env(&[
            ("WEBHOOK_URL", "https://example.com/h"),
            ("WEBHOOK_SECRET", "whsec_c2hvcnQ="),
        ]))
        .unwrap_err();
        // The secret's value never appears in an error.
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert!(delivery(&env(&[("WEBHOOK_URL", "ftp://x")])).is_err());
    }

    /// SQS refuses ChangeMessageVisibility beyond 12 hours *from the receive*; a delay of
    /// exactly 43200 s asked for any time after the receive is refused, and the message comes
    /// back at the queue's visibility timeout (180 s) instead of the back-off.
    #[test]
    fn the_longest_back_off_is_one_sqs_accepts_after_the_attempt() {
        let config = delivery(&|k: &str| match k {
            "WEBHOOK_URL" => Some("https://example.com/h".into()),
            "WEBHOOK_SECRET" => Some(SECRET.into()),
            "WEBHOOK_RETRY_MAX_SECONDS" => Some("43200".into()),
            _ => None,
        })
        .unwrap()
        .unwrap()
        .webhook;
        assert!(config.retry_delay(30) < Duration::from_secs(43_200 - config.timeout.as_secs()));
    }

    /// The function has nothing to deliver to, nothing to read and nothing to sign from without
    /// these, so it refuses to start, naming the first one missing; the API's settings are not
    /// its business.
    #[test]
    fn the_webhooks_function_needs_a_url_its_queue_and_the_table() {
        let missing = |pairs| match WebhooksConfig::from_lookup(env(pairs)) {
            Err(ConfigError::Missing(name)) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(missing(&[]), "WEBHOOK_URL");
        assert_eq!(
            missing(&[
                ("WEBHOOK_URL", "https://example.com/h"),
                ("WEBHOOK_SECRET", SECRET)
            ]),
            "WEBHOOK_QUEUE_URL"
        );
        let queued = &[
            ("WEBHOOK_URL", "https://example.com/h"),
            ("WEBHOOK_SECRET", SECRET),
            (
                "WEBHOOK_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/w",
            ),
        ];
        assert_eq!(missing(queued), "TABLE_NAME");
        let config = WebhooksConfig::from_lookup(env(&[
            ("WEBHOOK_URL", "https://example.com/h"),
            ("WEBHOOK_SECRET", SECRET),
            (
                "WEBHOOK_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/w",
            ),
            ("TABLE_NAME", "sessions"),
            ("MAX_OBJECT_BYTES", "nope"),
            ("AUTH_REQUIRED", "maybe"),
        ]))
        .unwrap();
        assert_eq!(config.table, "sessions");
        assert_eq!(config.webhook.timeout, Duration::from_secs(10));
    }
}
