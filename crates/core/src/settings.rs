//! The values the use cases are configured with. The entry points read them from their
//! environment (`vu-functions`' `config`); the defaults are the deployed ones.

use std::time::Duration;

use crate::domain::AllowedContentTypes;

const MIB: u64 = 1024 * 1024;

/// What the upload service enforces; independent of where it runs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_object_bytes: u64,
    /// Sessions one owner may have open (not yet final) at once.
    pub max_open_sessions_per_owner: u64,
    /// Bytes one owner's open sessions may hold (sized: their size; unsized: their reservation).
    pub max_pending_bytes_per_owner: u64,
    /// What a session of unknown size (Uppy's multipart, a form POST) reserves and may hold.
    pub unsized_session_max_bytes: u64,
    /// Whether a multipart session may be created without a size (`ALLOW_UNSIZED_SESSIONS`,
    /// off by default): its part URLs sign no length, so until S3 holds its parts nothing but
    /// the number of URLs bounds what it stores (SECURITY.md). Form POSTs, bounded by their
    /// policy, are not unsized sessions in this sense.
    pub unsized_sessions: bool,
    pub default_part_size: u64,
    pub url_expiry: Duration,
    /// How long a form POST policy stays valid: short, since a form can be replayed until then.
    pub post_form_expiry: Duration,
    pub session_ttl: Duration,
    /// How long a completion holds a record before another caller may take it over.
    pub completion_lease: Duration,
    /// How long a `complete` waits for another one's result (from its own start) before
    /// answering 202 with the record still running.
    pub completion_wait: Duration,
    /// Larger objects are verified by the `verifier` function after `complete` answers 202, so
    /// the API stays inside API Gateway's ~30 s timeout.
    pub verify_inline_max_bytes: u64,
    /// How long the API hashes inline before it saves its progress and hands over (202).
    pub verify_inline_budget: Duration,
    /// Content types an upload may declare (`ALLOWED_CONTENT_TYPES`; empty: all); others get 415.
    pub allowed_content_types: AllowedContentTypes,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_object_bytes: 5 * 1024 * 1024 * MIB,
            max_open_sessions_per_owner: 100,
            max_pending_bytes_per_owner: 1024 * 1024 * 1024 * MIB,
            unsized_session_max_bytes: 5 * 1024 * MIB,
            unsized_sessions: false,
            default_part_size: 16 * MIB,
            url_expiry: Duration::from_secs(3600),
            post_form_expiry: Duration::from_secs(900),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            completion_lease: Duration::from_secs(900),
            completion_wait: Duration::from_secs(20),
            verify_inline_max_bytes: 1024 * MIB,
            verify_inline_budget: Duration::from_secs(20),
            allowed_content_types: AllowedContentTypes::default(),
        }
    }
}

/// How the verifier reads objects back.
#[derive(Debug, Clone, Copy)]
pub struct VerifyConfig {
    /// Ranged GETs fetched ahead of the hasher (in flight, or arrived out of order).
    pub concurrency: usize,
    pub range_bytes: u64,
    /// Fetched ranges queued for the hasher: what lets it start the next range the moment it
    /// finishes one. Memory: `(concurrency + prefetch + 1) × range_bytes`.
    pub prefetch: usize,
    /// A ranged GET whose body sends nothing for this long is resumed on a new connection.
    pub stall_timeout: Duration,
    /// Verifier runs fan a claim's segments (`part_states`) out over the verifier's queue, one
    /// message each, rather than hashing them all in one run (`VERIFY_FAN_OUT`).
    pub fan_out: bool,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            // Measured (docs/benchmarks.md): hash-bound from a local server like 6 × 4 MiB, but
            // with a 24 MiB bound instead of 32 (the pipeline does fill its bound): ~46-59 MiB
            // peak RSS for the verifier. Six connections for S3's per-connection throughput.
            concurrency: 6,
            range_bytes: 3 * MIB,
            prefetch: 1,
            stall_timeout: Duration::from_secs(20),
            fan_out: true,
        }
    }
}
