//! The `api` binary's settings: in Lambda, the service and its callers; as the local server
//! (`make dev`), also where it listens and the functions' work it does beside the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vu_core::settings::{Limits, VerifyConfig};

use super::limits::{api_limits, verify};
use super::receipts::{ReceiptSettings, receipts};
use super::webhooks::{Delivery, delivery};
use super::{CallerPolicy, ConfigError, Lookup, Runtime, Store, env};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `BUCKET_NAME`, `TABLE_NAME`, `KMS_KEY_ARN`, `S3_ACCELERATE`.
    pub store: Store,
    pub limits: Limits,
    /// How `complete` reads an object back when it verifies inline (`VERIFY_*`).
    pub verify: VerifyConfig,
    /// `AUTH_REQUIRED`, `ALLOW_ANONYMOUS`.
    pub callers: CallerPolicy,
    /// The verifier's queue (`VERIFIER_QUEUE_URL`): every hand-over is sent to it, and S3's
    /// notifications arrive in it. The local server also consumes it, as Lambda does in AWS.
    pub verifier_queue_url: Option<String>,
    /// The EventBridge bus every verdict is announced on (`EVENT_BUS_NAME`; unset: none).
    pub event_bus: Option<String>,
    /// `RECEIPT_*`: the key verified uploads' receipts are signed with; `None`: no receipts.
    pub receipts: Option<ReceiptSettings>,
    /// The local server's own settings; `None` in Lambda, which reads none of them.
    pub local: Option<LocalServer>,
}

/// What only the local server reads: in AWS, API Gateway, a schedule and the `webhooks`
/// function do this work.
#[derive(Debug, Clone)]
pub struct LocalServer {
    /// `LISTEN_ADDR`, default `127.0.0.1:3000`.
    pub listen_addr: SocketAddr,
    /// The upload page served at `/` (`WEB_DIR`, default `web`).
    pub web_dir: PathBuf,
    /// How often sessions whose lease ran out are swept (`SWEEP_INTERVAL_SECONDS`, default 60).
    pub sweep_interval: Duration,
    /// Webhook deliveries (`WEBHOOK_*`), when `WEBHOOK_URL` is set.
    pub webhooks: Option<Delivery>,
    /// `LOCAL_CALLER_HEADER`: the request header that names the caller, standing in for the
    /// authorizer's `sub` claim (`http::with_local_callers`); unset: every caller is anonymous.
    pub caller_header: Option<axum::http::HeaderName>,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env, Runtime::current())
    }

    /// Reads through `get` so tests need not touch the process environment.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        runtime: Runtime,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_lookup(&get)?,
            limits: api_limits(&get)?,
            verify: verify(&get)?,
            callers: CallerPolicy::from_lookup(&get, runtime)?,
            verifier_queue_url: get.set("VERIFIER_QUEUE_URL"),
            event_bus: get.set("EVENT_BUS_NAME"),
            receipts: receipts(&get)?,
            local: match runtime {
                Runtime::Lambda => None,
                Runtime::Local => Some(LocalServer::from_lookup(&get)?),
            },
        })
    }
}

impl LocalServer {
    fn from_lookup(get: &impl Lookup) -> Result<Self, ConfigError> {
        let listen_raw = get("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen_addr = listen_raw.parse().map_err(|_| ConfigError::Invalid {
            name: "LISTEN_ADDR",
            value: listen_raw.clone(),
            reason: "must be host:port, e.g. 127.0.0.1:3000".into(),
        })?;
        Ok(Self {
            listen_addr,
            web_dir: get.set("WEB_DIR").unwrap_or_else(|| "web".into()).into(),
            sweep_interval: get.secs(
                "SWEEP_INTERVAL_SECONDS",
                Duration::from_secs(60),
                1,
                86_400,
            )?,
            webhooks: delivery(get)?,
            caller_header: caller_header(get)?,
        })
    }
}

/// `LOCAL_CALLER_HEADER`, a header name (e.g. `x-local-caller`).
fn caller_header(get: &impl Lookup) -> Result<Option<axum::http::HeaderName>, ConfigError> {
    let Some(raw) = get.set("LOCAL_CALLER_HEADER") else {
        return Ok(None);
    };
    axum::http::HeaderName::try_from(raw.trim().to_ascii_lowercase())
        .map(Some)
        .map_err(|_| ConfigError::Invalid {
            name: "LOCAL_CALLER_HEADER",
            value: raw.clone(),
            reason: "must be an HTTP header name, e.g. x-local-caller".into(),
        })
}
