//! Each binary's settings, read from the environment and checked once, at start: the `api`
//! (`ApiConfig`), the `verifier` (`VerifierConfig`) and the `webhooks` function
//! (`WebhooksConfig`). A binary reads only what it uses, so a setting meant for another one can
//! neither stop it nor change it; an error names the variable that is wrong.
//!
//! Pieces more than one binary reads are parsed in one place: `store` (bucket, table, S3
//! options), `limits` (the service's limits, leases and read-back), `callers` (the API's caller
//! policy), `webhooks` (delivery, also done by the local server), `receipts` (the key
//! receipts are signed with).

mod api;
mod callers;
mod limits;
mod receipts;
mod store;
mod verifier;
mod webhooks;

use std::time::Duration;

pub use api::{ApiConfig, LocalServer};
pub use callers::CallerPolicy;
pub use receipts::ReceiptSettings;
pub use store::{S3Options, Store};
pub use verifier::{VerifierConfig, cli_verify_from_env};
pub use vu_core::settings::{Limits, VerifyConfig};
pub use webhooks::{Delivery, SecretSource, WebhooksConfig};

#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// As its message: a binary whose `main` returns this error prints it with `Debug`, and what it
/// prints at start should read `NAME=value: reason` or `NAME must be set`.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Where a binary runs: it decides what the API serves on and whether anonymous callers must be
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Started by Lambda, which sets `AWS_LAMBDA_RUNTIME_API` for its runtime client.
    Lambda,
    /// Anywhere else: `make dev`, a test, a command line.
    Local,
}

impl Runtime {
    pub fn current() -> Self {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            Self::Lambda
        } else {
            Self::Local
        }
    }
}

/// The process environment, as every `from_env` reads it.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Where settings are read from: the environment in the binaries, a map in tests (so they need
/// not touch the process environment). Any `Fn(&str) -> Option<String>` is one.
pub trait Lookup: Fn(&str) -> Option<String> {
    /// The value when set and not blank, as written.
    fn set(&self, name: &str) -> Option<String> {
        self(name).filter(|v| !v.trim().is_empty())
    }

    /// A value that must be set and not blank.
    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.set(name).ok_or(ConfigError::Missing(name))
    }

    /// An optional whole number within `min..=max`, `default` when unset or empty.
    fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.set(name) else {
            return Ok(default);
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name,
            value: raw.clone(),
            reason,
        };
        let n: u64 = raw
            .trim()
            .parse()
            .map_err(|_| invalid("not a whole number".into()))?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(invalid(format!("must be between {min} and {max}")))
        }
    }

    /// `number` in seconds: a duration of `min..=max` seconds.
    fn secs(
        &self,
        name: &'static str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default.as_secs(), min, max)
            .map(Duration::from_secs)
    }

    /// `true`/`1` or `false`/`0`; unset or empty is `false`.
    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self(name).as_deref().map(str::trim) {
            None | Some("" | "false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                value: other.to_owned(),
                reason: "must be true or false".into(),
            }),
        }
    }
}

impl<F: Fn(&str) -> Option<String> + ?Sized> Lookup for F {}

#[cfg(test)]
mod tests;
