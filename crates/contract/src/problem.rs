//! Every problem `type` the API answers with (RFC 9457 documents, `application/problem+json`):
//! `type` is `/problems/<slug>`, and `GET /problems/<slug>` serves the page each carries.

use serde::{Deserialize, Serialize};

/// The media type of every error answer.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Every problem `type` the API can answer with, as `/problems/<slug>`, each with the page
/// `GET /problems/<slug>` serves: what happened and what to do.
macro_rules! slugs {
    ($($variant:ident => $slug:literal, $title:literal, $what:literal, $todo:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemType { $($variant,)+ }

        impl ProblemType {
            pub const ALL: &'static [ProblemType] = &[$(ProblemType::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(ProblemType::$variant => $slug,)+ }
            }

            /// The page's title, what happened and what to do.
            pub fn page(self) -> (&'static str, &'static str, &'static str) {
                match self { $(ProblemType::$variant => ($title, $what, $todo),)+ }
            }
        }
    };
}

slugs! {
    InvalidField => "invalid-field", "Invalid request field",
        "A field of the request (named by `field`) is missing, of the wrong type or out of range, or a path parameter is not a valid upload id.",
        "Correct the named field as `detail` says; the API documentation (/openapi.json) gives every field's constraints.";
    MalformedBody => "malformed-body", "Malformed JSON body",
        "The body is not JSON of the expected shape: unreadable, unknown fields, or a value of the wrong type (`field` names where).",
        "Send a JSON object with only the documented fields.";
    InvalidQuery => "invalid-query", "Invalid query string",
        "The query string could not be read: a required parameter is missing or has the wrong form.",
        "Send the documented query parameters.";
    InvalidPath => "invalid-path", "Invalid path parameter",
        "A path segment could not be decoded (bad percent-encoding, say).",
        "Send the upload id as the API returned it.";
    Unauthenticated => "unauthenticated", "Authentication required",
        "The API runs behind a JWT authorizer and the request carries no caller identity (the token's `sub` claim).",
        "Send `Authorization: Bearer <token>` with a token whose claims include `sub`.";
    NotFound => "not-found", "No such upload",
        "No upload with this id belongs to the caller (or, on Uppy's routes, the `key` is not the upload's key).",
        "Check the id (and key); uploads are visible only to the caller who created them.";
    NoRoute => "no-route", "No such route",
        "The API serves nothing at this path.",
        "See /openapi.json (or /docs under `make dev`) for the routes.";
    NoReceipt => "no-receipt", "No receipt for this upload",
        "The upload is `verified`, but no receipt was signed with its verdict: the service issued none when it was verified (`RECEIPT_KEY_ID` was unset). A receipt is signed only with the verdict, by the process that hashed the bytes, never later from the stored record.",
        "Check the file against the record's `sha256` and `size` (`GET /uploads/{id}`), or upload it again to get a verdict with a receipt.";
    MethodNotAllowed => "method-not-allowed", "Method not allowed",
        "The route exists but does not take this HTTP method.",
        "Use one of the methods the route documents.";
    WrongState => "wrong-state", "Not allowed in the upload's state",
        "The upload's state no longer allows this request (`status` says where it is): it was completed, aborted, or is being completed. (Another call completing the same upload is no conflict: `complete` waits for it, then answers `202` with the record.)",
        "Read the upload (`GET /uploads/{id}`); to send the file again, start a new upload.";
    SessionExpired => "session-expired", "Upload session expired",
        "The session's time ran out before it was completed, or S3 no longer holds its multipart upload (aborted, or expired by the bucket's lifecycle).",
        "Start a new upload; nothing of this one can be completed.";
    NoParts => "no-parts", "A form upload has no parts",
        "The upload is a single form POST (`kind: post`): it has no parts to sign or list.",
        "POST the form the upload was created with.";
    NotVerified => "not-verified", "Not verified",
        "Only a verified upload can be downloaded or has a receipt. While it is `completing` or `verifying` the answer carries `Retry-After` (and `retry_after`, seconds); a `failed` or `aborted` one never will be.",
        "Retry after `retry_after` seconds while the upload is in flight; otherwise upload the file again.";
    KeyTaken => "key-taken", "Another object holds the upload's key",
        "An object that is not made of this upload's parts is already under its key; the upload is pending again and nothing was overwritten.",
        "Nothing to retry here: start a new upload.";
    PartRejected => "part-rejected", "S3 refused a part",
        "S3 refused to complete the upload: a part it holds is not the one listed (its checksum or ETag differs). The upload is pending again.",
        "Sign and upload that part again, then complete again.";
    DeclaredTooLate => "declared-too-late", "Digest declared after verification began",
        "The upload's verification started before this `sha256` was declared, so it runs without it. The answer carries `Retry-After`.",
        "Poll the upload after `retry_after` seconds and compare its `sha256` with yours once it is final.";
    NotArrived => "not-arrived", "The object has not arrived",
        "A form upload's object is not in S3 yet, or its verification has just started. The answer carries `Retry-After`.",
        "POST the form first, then retry after `retry_after` seconds.";
    InProgress => "in-progress", "Being verified",
        "Another caller is verifying this upload right now. The answer carries `Retry-After`.",
        "Retry after `retry_after` seconds, or read the upload.";
    UploadIncomplete => "upload-incomplete", "Parts are missing",
        "`complete` found parts missing; `missing_parts` lists the first ones. The session stays pending.",
        "Upload the missing parts (sign them again if their URLs expired), then complete again.";
    PartSizeMismatch => "part-size-mismatch", "A part has the wrong size",
        "A part S3 holds is not the size the session's plan gives it.",
        "Upload that part again with exactly the signed length, then complete again.";
    TooLarge => "too-large", "Object too large",
        "The declared size (or what an upload of undeclared size holds) is over the service's limit.",
        "Upload a smaller object, or declare the file's size.";
    SizeRequired => "size-required", "The file's size is required",
        "A multipart upload was asked for without the file's size (on Uppy's routes: `POST /s3/multipart` without the metadata entry `size`), and this service takes no upload of undeclared size (`ALLOW_UNSIZED_SESSIONS` is off): its part URLs could sign no length. Nothing was created or reserved. A session created without a size while they were allowed is signed no more part URLs (it can still be completed or aborted).",
        "Send the file's size, in bytes, as Uppy metadata `size`, as the example page (`/uppy.html`) does: `onBeforeFileAdded: (file) => ({ ...file, meta: { ...file.meta, size: file.data.size } })`. Or create the upload with `POST /uploads` and its `size`. Small files sent as one form POST (`GET /s3/params`) need none.";
    BodyTooLarge => "body-too-large", "Request body too large",
        "The request body is over 64 KiB.",
        "Send fewer items per call (at most 100 part numbers).";
    UnsupportedMediaType => "unsupported-media-type", "Request body must be JSON",
        "A JSON route received a body without `Content-Type: application/json`.",
        "Send the body as JSON with that content type (an empty body needs none).";
    ContentTypeNotAllowed => "content-type-not-allowed", "Content type not allowed",
        "The upload declares a content type (`content_type`, or Uppy's `type`) that the service does not accept (`ALLOWED_CONTENT_TYPES`); an upload that declares none is `application/octet-stream`. Form POSTs are held to the declared type by S3 too.",
        "Upload a file of a type `allowed_content_types` lists (`type/*` stands for any subtype), declaring its type.";
    OverLimit => "over-limit", "Too many open uploads",
        "The caller's open uploads would pass its limit on open sessions or pending bytes (`detail` names which).",
        "Complete or abort some open uploads first.";
    VerificationFailed => "verification-failed", "Verification failed",
        "The object's SHA-256 is not the declared one (or the object changed while being read); the record is `failed` (in `upload`) and the object was deleted.",
        "Upload the file again, and check that the declared digest is the file's.";
    Sha256Mismatch => "sha256-mismatch", "Declared digest differs from the recorded one",
        "A `sha256` declared at `complete` differs from the digest already recorded for the upload.",
        "Compare your file with the recorded digest; the record is unchanged.";
    Internal => "internal", "Internal error",
        "The service itself failed (a bug); the cause is logged, never echoed.",
        "Retry the request; report it if it persists.";
    UpstreamUnavailable => "upstream-unavailable", "Storage service failed",
        "S3 or DynamoDB did not answer as expected (502 for S3, 503 for DynamoDB).",
        "Retry the request, with backoff.";
}

impl ProblemType {
    /// The `type` member of a document of this problem.
    pub fn uri(self) -> String {
        format!("/problems/{}", self.as_str())
    }

    /// The problem a document's `type` names (`/problems/<slug>`, or a URL ending in it).
    pub fn parse(uri: &str) -> Option<Self> {
        let slug = uri.rsplit('/').next()?;
        Self::ALL.iter().copied().find(|t| t.as_str() == slug)
    }
}

/// A problem document as a client reads it; members beside these (`field`, `upload`,
/// `missing_parts`, …) stay in the raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default)]
    pub detail: String,
}

impl Problem {
    /// The problem type, when the document names one this contract knows.
    pub fn problem_type(&self) -> Option<ProblemType> {
        ProblemType::parse(&self.kind)
    }
}
