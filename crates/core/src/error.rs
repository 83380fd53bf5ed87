//! What a use case can answer instead of its result. Mapped to HTTP once, in `http::problem`.

use crate::domain::{
    AllowedContentTypes, ContentType, Invalid, PartsError, Sha256, Status, UploadRecord,
};
use crate::ports::{BoxError, OwnerLimit, PortError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such upload")]
    NotFound,
    /// The upload's state refuses the request; the variant says why and so what to do.
    #[error(transparent)]
    Conflict(#[from] Conflict),
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
    /// A multipart upload of undeclared size, which the service does not take
    /// (`ALLOW_UNSIZED_SESSIONS` off): at create, nothing was created or reserved; for a session
    /// created while they were allowed, no part URL is signed.
    #[error(
        "this service takes no multipart upload of undeclared size (ALLOW_UNSIZED_SESSIONS is off): start one that declares the file's size (Uppy: the metadata entry `size`)"
    )]
    SizeRequired,
    /// The caller's open sessions would pass one of its limits.
    #[error("{}", over_limit(.0))]
    OverLimit(OwnerLimit),
    /// The parts S3 holds cannot complete the upload.
    #[error(transparent)]
    Parts(#[from] PartsError),
    /// A digest declared for an upload already verified differs from the one recorded.
    #[error("the declared sha256 {declared} differs from the recorded {recorded}")]
    DigestMismatch { declared: Sha256, recorded: Sha256 },
    #[error("verification failed: {}", .0.error().unwrap_or("digest mismatch"))]
    VerificationFailed(Box<UploadRecord>),
    #[error("storage request failed")]
    Upstream(#[source] PortError),
    /// A fault of this service's own (a bug), never of the client or an upstream.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// Why an upload's state refuses a request. Each is its own problem type, and carries what a
/// client needs to decide between waiting, fixing and giving up, as data rather than prose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The session no longer takes this request (`status` is where it is now). Read the record.
    #[error("cannot {action}: the upload is {status}")]
    WrongState { action: Action, status: Status },
    /// The session's TTL passed before it was completed. Start a new upload.
    #[error("cannot {action}: the upload session has expired")]
    Expired { action: Action },
    /// S3 no longer holds the multipart upload (aborted, or expired by lifecycle). Start anew.
    #[error("the multipart upload no longer exists in S3 (aborted or expired)")]
    MultipartGone,
    /// A form POST has no parts to sign or list.
    #[error("this upload is a form POST; it has no parts")]
    NoParts,
    /// Only a verified upload can be downloaded or has a receipt; `status` says whether to wait
    /// (in flight).
    #[error("only a verified upload can be downloaded or has a receipt; this one is {status}")]
    NotVerified { status: Status },
    /// An object not made of this upload's parts is under its key. Nothing to retry.
    #[error("an object that is not this upload's is already under its key")]
    KeyTaken,
    /// S3 refused to complete: a part it holds is not the one listed. Re-send it, complete again.
    #[error(
        "S3 refused to complete the upload: a part S3 holds is not the one listed (re-send it, then complete again)"
    )]
    PartRejected,
    /// A digest declared after verification began (`status`): compare with the record's
    /// `sha256` once it is final.
    #[error(
        "the upload is {status} without the declared digest; compare with the record's sha256 once it is final"
    )]
    DeclaredTooLate { status: Status },
    /// A form POST whose object S3 does not hold yet (or is being verified). Retry after a while.
    #[error("the object has not arrived in S3 yet (POST the form first), or is being verified")]
    NotArrived,
    /// A live holder is verifying this form; its event is handled after the lease (verifier
    /// only: the queue redelivers it).
    #[error("a live holder is verifying this form; its event is handled after the lease")]
    HolderBusy,
}

/// What a client asked for, in a `Conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignParts,
    ListParts,
    Complete,
    Abort,
    Verify,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SignParts => "sign parts",
            Self::ListParts => "list parts",
            Self::Complete => "complete",
            Self::Abort => "abort",
            Self::Verify => "verify",
        })
    }
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
