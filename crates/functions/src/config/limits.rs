//! What the upload service is configured with (`vu_core::settings`): the API reads all of its
//! limits, the verifier only the leases, and both how objects are read back.

use std::time::Duration;

use vu_core::domain::{AllowedContentTypes, MAX_PART_SIZE, MIN_PART_SIZE, S3_MAX_OBJECT_BYTES};
use vu_core::settings::{Limits, VerifyConfig};

use super::{ConfigError, Lookup};

const MIB: u64 = 1024 * 1024;

/// How long sessions and completions hold: what every binary that verifies needs, since a
/// verification claims a session under a lease and re-opens it when it gives up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Leases {
    /// `SESSION_TTL_SECONDS`.
    pub session_ttl: Duration,
    /// `COMPLETION_LEASE_SECONDS`, at least `FUNCTION_TIMEOUT_SECONDS`.
    pub completion_lease: Duration,
}

impl Leases {
    pub(super) fn from_lookup(get: &impl Lookup) -> Result<Self, ConfigError> {
        let d = Limits::default();
        let leases = Self {
            session_ttl: get.secs("SESSION_TTL_SECONDS", d.session_ttl, 300, 365 * 86_400)?,
            completion_lease: get.secs(
                "COMPLETION_LEASE_SECONDS",
                d.completion_lease,
                30,
                86_400,
            )?,
        };
        // A holder that outlives its lease would be taken over while it still runs.
        let timeout = get.secs("FUNCTION_TIMEOUT_SECONDS", Duration::ZERO, 0, 900)?;
        if leases.completion_lease < timeout {
            return Err(ConfigError::Invalid {
                name: "COMPLETION_LEASE_SECONDS",
                value: leases.completion_lease.as_secs().to_string(),
                reason: format!(
                    "must be at least the function's timeout (FUNCTION_TIMEOUT_SECONDS={})",
                    timeout.as_secs()
                ),
            });
        }
        Ok(leases)
    }

    /// The limits of a service that only verifies (the verifier function): the leases as read,
    /// the rest at their defaults, since they bound what the API accepts (sizes, parts, URLs,
    /// quotas, content types, inline verification) and no verification consults them.
    pub(super) fn verifying_only(self) -> Limits {
        Limits {
            session_ttl: self.session_ttl,
            completion_lease: self.completion_lease,
            ..Limits::default()
        }
    }
}

/// Every limit the API enforces.
pub(super) fn api_limits(get: &impl Lookup) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let Leases {
        session_ttl,
        completion_lease,
    } = Leases::from_lookup(get)?;
    let limits = Limits {
        max_object_bytes: get.number(
            "MAX_OBJECT_BYTES",
            d.max_object_bytes,
            1,
            S3_MAX_OBJECT_BYTES,
        )?,
        max_open_sessions_per_owner: get.number(
            "MAX_OPEN_SESSIONS_PER_OWNER",
            d.max_open_sessions_per_owner,
            1,
            // An owner's reservations are sharded over at most 100 items of ≤ 1,000 entries each
            // (~58 KB, well under DynamoDB's 400 KB): docs/scale.md, "Quota".
            100_000,
        )?,
        max_pending_bytes_per_owner: get.number(
            "MAX_PENDING_BYTES_PER_OWNER",
            d.max_pending_bytes_per_owner,
            1,
            u64::MAX / 2,
        )?,
        unsized_session_max_bytes: get.number(
            "UNSIZED_SESSION_MAX_BYTES",
            d.unsized_session_max_bytes,
            1,
            S3_MAX_OBJECT_BYTES,
        )?,
        unsized_sessions: get.flag("ALLOW_UNSIZED_SESSIONS")?,
        default_part_size: get.number(
            "DEFAULT_PART_SIZE",
            d.default_part_size,
            MIN_PART_SIZE,
            MAX_PART_SIZE,
        )?,
        // SigV4 pre-signed URLs live at most 7 days.
        url_expiry: get.secs("URL_EXPIRY_SECONDS", d.url_expiry, 60, 604_800)?,
        post_form_expiry: get.secs("POST_FORM_EXPIRY_SECONDS", d.post_form_expiry, 60, 604_800)?,
        session_ttl,
        completion_lease,
        completion_wait: get.secs("COMPLETION_WAIT_SECONDS", d.completion_wait, 0, 28)?,
        verify_inline_max_bytes: get.number(
            "VERIFY_INLINE_MAX_BYTES",
            d.verify_inline_max_bytes,
            0,
            S3_MAX_OBJECT_BYTES,
        )?,
        verify_inline_budget: get.secs("VERIFY_INLINE_SECONDS", d.verify_inline_budget, 0, 28)?,
        allowed_content_types: allowed_content_types(get)?,
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
    Ok(limits)
}

/// `ALLOWED_CONTENT_TYPES`, parsed once: a bad entry stops the start, never a request.
fn allowed_content_types(get: &impl Lookup) -> Result<AllowedContentTypes, ConfigError> {
    let raw = get("ALLOWED_CONTENT_TYPES").unwrap_or_default();
    AllowedContentTypes::parse(&raw).map_err(|e| ConfigError::Invalid {
        name: "ALLOWED_CONTENT_TYPES",
        value: raw.clone(),
        reason: format!("{:?}: {}", e.field, e.reason),
    })
}

/// How the verifier reads objects back: `VERIFY_CONCURRENCY`, `VERIFY_RANGE_BYTES`,
/// `VERIFY_PREFETCH`, `VERIFY_STALL_SECONDS`, `VERIFY_FAN_OUT` (on unless `false`).
pub(super) fn verify(get: &impl Lookup) -> Result<VerifyConfig, ConfigError> {
    let v = VerifyConfig::default();
    Ok(VerifyConfig {
        concurrency: get.number("VERIFY_CONCURRENCY", v.concurrency as u64, 1, 64)? as usize,
        range_bytes: get.number("VERIFY_RANGE_BYTES", v.range_bytes, 64 * 1024, 256 * MIB)?,
        prefetch: get.number("VERIFY_PREFETCH", v.prefetch as u64, 1, 64)? as usize,
        stall_timeout: get.secs("VERIFY_STALL_SECONDS", v.stall_timeout, 1, 600)?,
        fan_out: match get("VERIFY_FAN_OUT").as_deref().map(str::trim) {
            None | Some("") => v.fan_out,
            _ => get.flag("VERIFY_FAN_OUT")?,
        },
    })
}
