//! Receipts: a verdict `verified` signed as a compact JWS (ES256), checkable offline by anyone
//! with the published keys. It is signed once, when the verdict is reached, by the process that
//! hashed the bytes (`service::receipt::sign_verdict`), and stored with the verdict; everything
//! after serves the stored one. Signing on demand from the table would let anyone who can write
//! the table get a forged record signed. A retired key stays published for what it signed.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::Digest as _;

use vu_contract::receipt::{ALG, Claims, Header, Jwk, Jwks, TYPE};

use crate::domain::{Status, UploadRecord};
use crate::ports::PortError;

mod progress;
pub use progress::Sealed;
pub use segment::SealedEnd;
mod segment;

/// A P-256 public key: the point's affine coordinates, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcPoint {
    pub x: [u8; 32],
    pub y: [u8; 32],
}

impl EcPoint {
    /// The key as a JWK, named by its thumbprint.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: B64URL.encode(self.x),
            y: B64URL.encode(self.y),
            kid: self.thumbprint(),
            alg: ALG.into(),
            use_: "sig".into(),
        }
    }

    /// RFC 7638's JWK thumbprint: SHA-256 of the required members in lexicographic order, no
    /// whitespace, base64url. Derived from the key alone, so the same key gets the same `kid`
    /// in AWS KMS, the emulator's KMS and tests, with nothing to configure.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            B64URL.encode(self.x),
            B64URL.encode(self.y)
        );
        B64URL.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }
}

/// Signs receipts: AWS KMS in `vu-aws` (the emulator's KMS under `make dev`), a key in memory in
/// tests. No SDK type crosses it.
#[async_trait]
pub trait ReceiptSigner: Send + Sync {
    /// The public half of the key that signs now.
    async fn public_key(&self) -> Result<EcPoint, PortError>;
    /// The public halves of keys that signed before a rotation: still published, so their
    /// receipts stay checkable.
    async fn retired_keys(&self) -> Result<Vec<EcPoint>, PortError>;
    /// The ES256 signature of `message` (ECDSA P-256 over its SHA-256) as JWS wants it: `r || s`,
    /// 32 bytes each.
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], PortError>;
}

/// What issues receipts: the signer and the `iss` every receipt names.
#[derive(Clone)]
pub struct Receipts {
    signer: Arc<dyn ReceiptSigner>,
    issuer: String,
}

impl Receipts {
    pub fn new(signer: Arc<dyn ReceiptSigner>, issuer: impl Into<String>) -> Self {
        Self {
            signer,
            issuer: issuer.into(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What a receipt of `record` states; `None` unless it is `verified` (a failed or in-flight
    /// upload has no receipt).
    pub fn claims(&self, record: &UploadRecord) -> Option<Claims> {
        if record.status() != Status::Verified {
            return None;
        }
        let verified_at = record.verified_at()?;
        let iat = time::OffsetDateTime::parse(
            verified_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?
        .unix_timestamp();
        Some(Claims {
            iss: self.issuer.clone(),
            sub: record.upload_id.to_string(),
            iat,
            upload_id: record.upload_id.to_string(),
            owner: record.owner.clone(),
            bucket: record.bucket.clone(),
            key: record.key.as_str().to_owned(),
            version_id: record.version_id().map(str::to_owned),
            size: record.size()?,
            sha256: record.sha256()?,
            etag: record.etag()?.to_owned(),
            verified_at: verified_at.to_owned(),
        })
    }

    /// The receipt of a verified `record` as a compact JWS; `Ok(None)` when it has none.
    pub async fn issue(&self, record: &UploadRecord) -> Result<Option<String>, PortError> {
        let Some(claims) = self.claims(record) else {
            return Ok(None);
        };
        let header = Header {
            alg: ALG.into(),
            typ: TYPE.into(),
            kid: self.signer.public_key().await?.thumbprint(),
        };
        let input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        let signature = self.signer.sign(input.as_bytes()).await?;
        Ok(Some(format!("{input}.{}", B64URL.encode(signature))))
    }

    /// The key set to publish: the signing key first, then the retired ones (each once).
    pub async fn jwks(&self) -> Result<Jwks, PortError> {
        let mut keys = vec![self.signer.public_key().await?.jwk()];
        for retired in self.signer.retired_keys().await? {
            let jwk = retired.jwk();
            if !keys.iter().any(|k| k.kid == jwk.kid) {
                keys.push(jwk);
            }
        }
        Ok(Jwks { keys })
    }
}

/// base64url of the JSON of a header or claims: serde's field order is the struct's, so the
/// same record always encodes the same way.
fn encode_json(value: &impl serde::Serialize) -> String {
    // Serializing these plain structs (strings and integers) cannot fail.
    B64URL.encode(serde_json::to_vec(value).unwrap_or_default())
}
