//! The `verifier` binary's settings. In Lambda it verifies what its queue hands it: it needs the
//! store, how to read objects back, the leases it claims sessions under, its own queue (to hand
//! itself the rest of a long verification) and the bus verdicts are announced on. Outside Lambda
//! it is a command line over one object, reading only how to read it back.

use vu_core::settings::{Limits, VerifyConfig};

use super::limits::{Leases, verify};
use super::receipts::{ReceiptSettings, receipts};
use super::{ConfigError, Lookup, Store, env};

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `BUCKET_NAME`, `TABLE_NAME`, `KMS_KEY_ARN`, `S3_ACCELERATE`.
    pub store: Store,
    /// `SESSION_TTL_SECONDS`, `COMPLETION_LEASE_SECONDS` (checked against
    /// `FUNCTION_TIMEOUT_SECONDS`); the API's other limits stay at their defaults, unused here.
    pub limits: Limits,
    /// `VERIFY_*`.
    pub verify: VerifyConfig,
    /// `VERIFIER_QUEUE_URL`, required: S3's notifications and hand-overs arrive there, and a
    /// verification that reaches its deadline continues through it.
    pub queue_url: String,
    /// `EVENT_BUS_NAME`; unset: verdicts are not announced.
    pub event_bus: Option<String>,
    /// `RECEIPT_*`: the key that signs the receipt of each verdict `verified` it reaches.
    pub receipts: Option<ReceiptSettings>,
}

impl VerifierConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads through `get` so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_lookup(&get)?,
            limits: Leases::from_lookup(&get)?.verifying_only(),
            verify: verify(&get)?,
            queue_url: get.required("VERIFIER_QUEUE_URL")?,
            event_bus: get.set("EVENT_BUS_NAME"),
            receipts: receipts(&get)?,
        })
    }
}

/// The command line's settings (`verifier --bucket B --key K`): `VERIFY_*` alone.
pub fn cli_verify_from_env() -> Result<VerifyConfig, ConfigError> {
    verify(&env)
}
