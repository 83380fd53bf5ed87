//! Configuration from the environment, read and validated once per cold start.

use std::net::SocketAddr;
use std::time::Duration;

use vu_core::domain::{AllowedContentTypes, MAX_PART_SIZE, MIN_PART_SIZE, S3_MAX_OBJECT_BYTES};
pub use vu_core::settings::{Limits, VerifyConfig};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
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

/// How the verifier reads objects back: `VERIFY_CONCURRENCY`, `VERIFY_RANGE_BYTES`,
/// `VERIFY_PREFETCH`, `VERIFY_STALL_SECONDS`.
pub fn verify_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<VerifyConfig, ConfigError> {
    {
        let v = VerifyConfig::default();
        Ok(VerifyConfig {
            concurrency: number(&get, "VERIFY_CONCURRENCY", v.concurrency as u64, 1, 64)? as usize,
            range_bytes: number(
                &get,
                "VERIFY_RANGE_BYTES",
                v.range_bytes,
                64 * 1024,
                256 * MIB,
            )?,
            prefetch: number(&get, "VERIFY_PREFETCH", v.prefetch as u64, 1, 64)? as usize,
            stall_timeout: Duration::from_secs(number(
                &get,
                "VERIFY_STALL_SECONDS",
                v.stall_timeout.as_secs(),
                1,
                600,
            )?),
        })
    }
}

fn flag(get: impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            value: other.to_owned(),
            reason: "must be true or false".into(),
        }),
    }
}

/// An optional whole number within `min..=max`, `default` when unset or empty.
pub(crate) fn number(
    get: impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(name).filter(|s| !s.trim().is_empty()) else {
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

/// How objects are written and addressed in S3.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `KMS_KEY_ARN`: objects are encrypted with SSE-KMS under this key (with an S3 bucket key);
    /// `None`: SSE-S3, the bucket's default.
    pub kms_key_arn: Option<String>,
    /// `S3_ACCELERATE=true`: part URLs, forms and downloads use the bucket's Transfer
    /// Acceleration endpoint (ignored, with a warning, under an endpoint override).
    pub accelerate: bool,
}

impl S3Options {
    fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        bucket: &str,
    ) -> Result<Self, ConfigError> {
        let kms_key_arn = get("KMS_KEY_ARN")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if let Some(arn) = &kms_key_arn
            && !is_kms_key_arn(arn)
        {
            return Err(ConfigError::Invalid {
                name: "KMS_KEY_ARN",
                value: arn.clone(),
                // IAM grants a key by its ARN; an alias or bare id would not match the policy.
                reason: "must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (not an alias or a bare key id)".into(),
            });
        }
        let accelerate = flag(&get, "S3_ACCELERATE")?;
        if accelerate && !vu_aws::presign::accelerable(bucket) {
            return Err(ConfigError::Invalid {
                name: "S3_ACCELERATE",
                value: "true".into(),
                reason: format!(
                    "BUCKET_NAME {bucket:?} cannot use Transfer Acceleration: it needs a DNS-compatible name without dots"
                ),
            });
        }
        Ok(Self {
            kms_key_arn,
            accelerate,
        })
    }
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID`.
fn is_kms_key_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "kms", region, account, resource]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("key/").is_some_and(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
    )
}

/// `ALLOWED_CONTENT_TYPES`, parsed once: a bad entry stops the start, never a request.
fn allowed_content_types(
    get: impl Fn(&str) -> Option<String>,
) -> Result<AllowedContentTypes, ConfigError> {
    let raw = get("ALLOWED_CONTENT_TYPES").unwrap_or_default();
    AllowedContentTypes::parse(&raw).map_err(|e| ConfigError::Invalid {
        name: "ALLOWED_CONTENT_TYPES",
        value: raw.clone(),
        reason: format!("{:?}: {}", e.field, e.reason),
    })
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bucket: String,
    pub table: String,
    pub limits: Limits,
    pub verify: VerifyConfig,
    pub listen_addr: SocketAddr,
    /// The upload page the local server serves at `/` (`WEB_DIR`, default `web`).
    pub web_dir: std::path::PathBuf,
    /// `AUTH_REQUIRED=true` behind the JWT authorizer: requests without a `sub` claim get 401.
    pub auth_required: bool,
    /// `ALLOW_ANONYMOUS=true`: deployed without an authorizer on purpose (`in_lambda`).
    pub allow_anonymous: bool,
    /// The verifier's queue (`VERIFIER_QUEUE_URL`): every hand-over is sent to it, and S3's
    /// notifications arrive in it. The local server also consumes it, as Lambda does in AWS.
    pub verifier_queue_url: Option<String>,
    /// How often the local server sweeps for sessions whose lease ran out
    /// (`SWEEP_INTERVAL_SECONDS`, default 60); in AWS a schedule in the template does.
    pub sweep_interval: std::time::Duration,
    /// The EventBridge bus every verdict is announced on (`EVENT_BUS_NAME`; unset: none).
    pub event_bus: Option<String>,
    /// `KMS_KEY_ARN`, `S3_ACCELERATE`.
    pub s3: S3Options,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Deployed (in Lambda), an API that requires no authorizer lets anyone list, sign and abort
    /// everyone's uploads: that must be asked for (`ALLOW_ANONYMOUS=true`), never a default.
    pub fn in_lambda(self) -> Result<Self, ConfigError> {
        if self.auth_required || self.allow_anonymous {
            return Ok(self);
        }
        Err(ConfigError::Invalid {
            name: "ALLOW_ANONYMOUS",
            value: String::new(),
            reason: "no authorizer is required (AUTH_REQUIRED is not true), so every caller would be anonymous; deploy with JwtIssuer, or set ALLOW_ANONYMOUS=true (template parameter AllowAnonymous) to allow it on purpose".into(),
        })
    }

    /// Reads through `get` so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let d = Limits::default();
        let num = |name, default, min, max| number(&get, name, default, min, max);
        let secs = |name, default: Duration, min, max| {
            num(name, default.as_secs(), min, max).map(Duration::from_secs)
        };
        let listen_raw = get("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen_addr = listen_raw.parse().map_err(|_| ConfigError::Invalid {
            name: "LISTEN_ADDR",
            value: listen_raw.clone(),
            reason: "must be host:port, e.g. 127.0.0.1:3000".into(),
        })?;
        let limits = Limits {
            max_object_bytes: num(
                "MAX_OBJECT_BYTES",
                d.max_object_bytes,
                1,
                S3_MAX_OBJECT_BYTES,
            )?,
            max_open_sessions_per_owner: num(
                "MAX_OPEN_SESSIONS_PER_OWNER",
                d.max_open_sessions_per_owner,
                1,
                // An owner's reservations share one DynamoDB item (400 KB at most).
                2_000,
            )?,
            max_pending_bytes_per_owner: num(
                "MAX_PENDING_BYTES_PER_OWNER",
                d.max_pending_bytes_per_owner,
                1,
                u64::MAX / 2,
            )?,
            unsized_session_max_bytes: num(
                "UNSIZED_SESSION_MAX_BYTES",
                d.unsized_session_max_bytes,
                1,
                S3_MAX_OBJECT_BYTES,
            )?,
            default_part_size: num(
                "DEFAULT_PART_SIZE",
                d.default_part_size,
                MIN_PART_SIZE,
                MAX_PART_SIZE,
            )?,
            // SigV4 pre-signed URLs live at most 7 days.
            url_expiry: secs("URL_EXPIRY_SECONDS", d.url_expiry, 60, 604_800)?,
            post_form_expiry: secs("POST_FORM_EXPIRY_SECONDS", d.post_form_expiry, 60, 604_800)?,
            session_ttl: secs("SESSION_TTL_SECONDS", d.session_ttl, 300, 365 * 86_400)?,
            completion_lease: secs("COMPLETION_LEASE_SECONDS", d.completion_lease, 30, 86_400)?,
            completion_wait: secs("COMPLETION_WAIT_SECONDS", d.completion_wait, 0, 28)?,
            verify_inline_max_bytes: num(
                "VERIFY_INLINE_MAX_BYTES",
                d.verify_inline_max_bytes,
                0,
                S3_MAX_OBJECT_BYTES,
            )?,
            verify_inline_budget: secs("VERIFY_INLINE_SECONDS", d.verify_inline_budget, 0, 28)?,
            allowed_content_types: allowed_content_types(&get)?,
        };
        // A form still valid after its session expired would leave an object no session owns.
        if limits.post_form_expiry > limits.session_ttl {
            return Err(ConfigError::Invalid {
                name: "POST_FORM_EXPIRY_SECONDS",
                value: limits.post_form_expiry.as_secs().to_string(),
                reason: format!(
                    "must be at most SESSION_TTL_SECONDS ({})",
                    limits.session_ttl.as_secs()
                ),
            });
        }
        // A holder that outlives its lease would be taken over while it still runs.
        let timeout = secs("FUNCTION_TIMEOUT_SECONDS", Duration::ZERO, 0, 900)?;
        if limits.completion_lease < timeout {
            return Err(ConfigError::Invalid {
                name: "COMPLETION_LEASE_SECONDS",
                value: limits.completion_lease.as_secs().to_string(),
                reason: format!(
                    "must be at least the function's timeout (FUNCTION_TIMEOUT_SECONDS={})",
                    timeout.as_secs()
                ),
            });
        }
        let bucket = required("BUCKET_NAME")?;
        Ok(Self {
            s3: S3Options::from_lookup(&get, &bucket)?,
            bucket,
            table: required("TABLE_NAME")?,
            limits,
            verify: verify_from_lookup(&get)?,
            listen_addr,
            web_dir: get("WEB_DIR")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "web".into())
                .into(),
            auth_required: flag(&get, "AUTH_REQUIRED")?,
            allow_anonymous: flag(&get, "ALLOW_ANONYMOUS")?,
            verifier_queue_url: get("VERIFIER_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            event_bus: get("EVENT_BUS_NAME").filter(|v| !v.trim().is_empty()),
            sweep_interval: std::time::Duration::from_secs(number(
                &get,
                "SWEEP_INTERVAL_SECONDS",
                60,
                1,
                86_400,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn requires_bucket_and_table_and_applies_defaults() {
        assert!(matches!(cfg(&[]), Err(ConfigError::Missing("BUCKET_NAME"))));
        assert!(matches!(
            cfg(&[("BUCKET_NAME", "b")]),
            Err(ConfigError::Missing("TABLE_NAME"))
        ));
        let c = cfg(&[("BUCKET_NAME", "b"), ("TABLE_NAME", "t")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.limits.default_part_size, 16 * MIB);
        assert_eq!(c.listen_addr.port(), 3000);
    }

    #[test]
    fn refuses_out_of_range_values() {
        let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
        let with = |k, v| {
            let mut p = base.to_vec();
            p.push((k, v));
            cfg(&p)
        };
        assert!(with("MAX_OBJECT_BYTES", "60000000000000").is_err());
        assert!(with("DEFAULT_PART_SIZE", "1024").is_err());
        assert!(with("URL_EXPIRY_SECONDS", "ten").is_err());
        assert!(with("LISTEN_ADDR", "nope").is_err());
        assert!(with("FUNCTION_TIMEOUT_SECONDS", "901").is_err());
        assert!(with("POST_FORM_EXPIRY_SECONDS", "3600").is_ok());
        let outliving = cfg(&[
            ("BUCKET_NAME", "b"),
            ("TABLE_NAME", "t"),
            ("SESSION_TTL_SECONDS", "600"),
        ]);
        assert!(
            matches!(
                outliving,
                Err(ConfigError::Invalid {
                    name: "POST_FORM_EXPIRY_SECONDS",
                    ..
                })
            ),
            "{outliving:?}"
        );
        let short = cfg(&[
            ("BUCKET_NAME", "b"),
            ("TABLE_NAME", "t"),
            ("FUNCTION_TIMEOUT_SECONDS", "900"),
            ("COMPLETION_LEASE_SECONDS", "600"),
        ]);
        assert!(
            matches!(
                short,
                Err(ConfigError::Invalid {
                    name: "COMPLETION_LEASE_SECONDS",
                    ..
                })
            ),
            "{short:?}"
        );
        assert!(with("FUNCTION_TIMEOUT_SECONDS", "900").is_ok());
        assert_eq!(
            with("MAX_OBJECT_BYTES", "1000")
                .map(|c| c.limits.max_object_bytes)
                .ok(),
            Some(1000)
        );
    }

    #[test]
    fn verify_read_ahead_is_bounded_and_configurable() {
        let verify = |pairs: &[(&str, &str)]| {
            let env: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
            verify_from_lookup(|k| env.get(k).cloned())
        };
        let d = verify(&[]).unwrap_or_else(|e| panic!("{e}"));
        // The default bound, (concurrency + prefetch + 1) × range, stays small for Lambda.
        let bound = (d.concurrency + d.prefetch + 1) as u64 * d.range_bytes;
        assert!(bound <= 32 * MIB, "{bound}");
        let p = verify(&[("VERIFY_PREFETCH", "3")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.prefetch, 3);
        assert!(verify(&[("VERIFY_PREFETCH", "0")]).is_err());
        assert!(verify(&[("VERIFY_PREFETCH", "65")]).is_err());
    }

    #[test]
    fn in_lambda_an_anonymous_api_must_be_asked_for() {
        let base = [("BUCKET_NAME", "b"), ("TABLE_NAME", "t")];
        let deployed = |pairs: &[(&str, &str)]| cfg(pairs).and_then(Config::in_lambda);
        match deployed(&base) {
            Err(e) => assert!(e.to_string().contains("ALLOW_ANONYMOUS"), "{e}"),
            Ok(_) => panic!("an anonymous API started in Lambda"),
        }
        let mut anonymous = base.to_vec();
        anonymous.push(("ALLOW_ANONYMOUS", "true"));
        assert!(deployed(&anonymous).is_ok());
        let mut jwt = base.to_vec();
        jwt.push(("AUTH_REQUIRED", "true"));
        assert!(deployed(&jwt).is_ok());
    }

    #[test]
    fn kms_acceleration_and_content_types_are_checked_at_load() {
        let base = [("BUCKET_NAME", "vu-123-us-east-1-abc"), ("TABLE_NAME", "t")];
        let with = |extra: &[(&str, &str)]| {
            let mut p = base.to_vec();
            p.extend_from_slice(extra);
            cfg(&p)
        };
        let c = with(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.s3.kms_key_arn.is_none() && !c.s3.accelerate);
        assert!(c.limits.allowed_content_types.allows_all());

        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let c = with(&[("KMS_KEY_ARN", arn), ("S3_ACCELERATE", "true")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.s3.kms_key_arn.as_deref(), Some(arn));
        assert!(c.s3.accelerate);
        assert!(with(&[("KMS_KEY_ARN", " ")]).is_ok_and(|c| c.s3.kms_key_arn.is_none()));
        for not_a_key_arn in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/uploads",
            "arn:aws:kms:eu-west-1:123456789012:alias/uploads",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:1234:key/x",
        ] {
            assert!(
                matches!(
                    with(&[("KMS_KEY_ARN", not_a_key_arn)]),
                    Err(ConfigError::Invalid {
                        name: "KMS_KEY_ARN",
                        ..
                    })
                ),
                "{not_a_key_arn}"
            );
        }

        // Acceleration needs a DNS-compatible bucket name without dots.
        let dotted = cfg(&[
            ("BUCKET_NAME", "uploads.example.com"),
            ("TABLE_NAME", "t"),
            ("S3_ACCELERATE", "true"),
        ]);
        match dotted {
            Err(
                e @ ConfigError::Invalid {
                    name: "S3_ACCELERATE",
                    ..
                },
            ) => assert!(e.to_string().contains("without dots"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(
            cfg(&[("BUCKET_NAME", "uploads.example.com"), ("TABLE_NAME", "t")]).is_ok(),
            "dots are fine without acceleration"
        );
        assert!(with(&[("S3_ACCELERATE", "yes")]).is_err());

        let c = with(&[("ALLOWED_CONTENT_TYPES", "image/*,application/pdf")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.limits.allowed_content_types.to_string(),
            "image/*, application/pdf"
        );
        match with(&[("ALLOWED_CONTENT_TYPES", "image/*,pdf")]) {
            Err(
                e @ ConfigError::Invalid {
                    name: "ALLOWED_CONTENT_TYPES",
                    ..
                },
            ) => assert!(e.to_string().contains("\"pdf\""), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
