//! Receipts: a verified upload's verdict as a compact JWS (RFC 7515) signed with ES256 (ECDSA on
//! P-256 with SHA-256), and the JSON Web Key Set (RFC 7517) its public keys are published in.
//! The shapes both sides agree on; the service signs (`vu-core`), the CLI checks (`vu_cli`), and
//! any JOSE library does too (docs/receipts.md).

use serde::{Deserialize, Serialize};

use crate::Sha256;

/// The JWS `alg` every receipt is signed with.
pub const ALG: &str = "ES256";

/// The JWS `typ` of a receipt (explicit typing, RFC 8725 §3.11): a receipt is no access token.
pub const TYPE: &str = "vu-receipt+jwt";

/// Where the API publishes the keys receipts are checked with.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The protected header of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    pub typ: String,
    /// The RFC 7638 thumbprint of the signing key: its `kid` in the published key set.
    pub kid: String,
}

/// What a receipt states: the service verified these exact bytes. A pure function of the
/// verified record and the issuer, so it reads the same however often it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claims {
    /// Who issued it: the service's `RECEIPT_ISSUER` (its API's URL, by default in the template).
    pub iss: String,
    /// The upload id (JWT's subject).
    pub sub: String,
    /// When the upload was verified, in epoch seconds (the record's `verified_at`).
    pub iat: i64,
    pub upload_id: String,
    /// The caller that created the upload (the token's `sub`, or `anonymous`).
    pub owner: String,
    pub bucket: String,
    pub key: String,
    /// The S3 version hashed; `null` in a bucket without versioning.
    pub version_id: Option<String>,
    /// Bytes.
    pub size: u64,
    /// The SHA-256 of the object's bytes, lowercase hex.
    pub sha256: Sha256,
    /// S3's ETag of that version, quotes included.
    pub etag: String,
    /// The record's `verified_at` (RFC 3339, UTC, milliseconds).
    pub verified_at: String,
}

/// A public key as a JWK (RFC 7517/7518): always EC on P-256, for ES256 signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The point's coordinates, base64url without padding (32 bytes each).
    pub x: String,
    pub y: String,
    /// The key's RFC 7638 thumbprint: receipts name their key by it.
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// `GET /.well-known/jwks.json`: the key signing now first, then retired keys, whose receipts
/// stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The key a receipt names.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}
