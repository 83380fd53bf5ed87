//! What a use case can answer instead of its result. Mapped to HTTP once, in `http::problem`.

use crate::domain::{AllowedContentTypes, ContentType, Invalid, PartsError, Sha256, UploadRecord};
use crate::ports::{BoxError, OwnerLimit, PortError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such upload")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("size {size} exceeds the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    /// The declared content type is not on `ALLOWED_CONTENT_TYPES`.
    #[error(
        "content type {} is not allowed; uploads may be {allowed} (an upload that declares no type is application/octet-stream)",
        .declared.as_str()
    )]
    ContentTypeNotAllowed {
        declared: ContentType,
        allowed: AllowedContentTypes,
    },
    /// The caller's open sessions would pass one of its limits.
    #[error("{}", over_limit(.0))]
    OverLimit(OwnerLimit),
    /// The parts S3 holds cannot complete the upload.
    #[error(transparent)]
    Parts(#[from] PartsError),
    /// A digest declared for an upload already verified differs from the one recorded.
    #[error("the declared sha256 {declared} differs from the recorded {recorded}")]
    DigestMismatch { declared: Sha256, recorded: Sha256 },
    #[error("verification failed: {}", .0.error.as_deref().unwrap_or("digest mismatch"))]
    VerificationFailed(Box<UploadRecord>),
    #[error("storage request failed")]
    Upstream(#[source] PortError),
    /// A fault of this service's own (a bug), never of the client or an upstream.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

fn over_limit(limit: &OwnerLimit) -> String {
    match limit {
        OwnerLimit::OpenSessions(max) => format!(
            "you have {max} uploads open (MAX_OPEN_SESSIONS_PER_OWNER): complete or abort one first"
        ),
        OwnerLimit::PendingBytes(max) => format!(
            "your open uploads would hold more than {max} bytes (MAX_PENDING_BYTES_PER_OWNER): complete or abort some first"
        ),
    }
}

impl From<PortError> for Error {
    fn from(e: PortError) -> Self {
        match e {
            PortError::NotFound => Self::NotFound,
            other => Self::Upstream(other),
        }
    }
}

/// The error and every cause beneath it, for logs (never for clients).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
