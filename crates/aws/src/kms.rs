//! The `ReceiptSigner` on AWS KMS: an asymmetric key (ECC_NIST_P256, SIGN_VERIFY) signs with
//! `kms:Sign`, and `kms:GetPublicKey` gives the public halves to publish. Under `make dev` the
//! emulator's KMS does both, so the same code signs locally.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::Digest as _;
use tokio::sync::OnceCell;

use vu_core::ports::{BoxError, EcPoint, PortError, ReceiptSigner, Upstream};

/// KMS signs a `RAW` message of up to 4096 bytes itself (SHA-256, then ECDSA); a longer one is
/// sent as its `DIGEST`. Receipts stay under it (an S3 key is at most 1024 bytes), and moto's KMS
/// implements only `RAW`.
const KMS_RAW_MAX: usize = 4096;

pub struct KmsSigner {
    client: Client,
    key_id: String,
    retired: Vec<String>,
    /// The public keys, read once per cold start: a key's public half never changes (a rotation
    /// is a new key id in the configuration, so a new start). The retired ones only when
    /// published (the API), so the functions that only sign need no access to them.
    current: OnceCell<EcPoint>,
    retired_keys: OnceCell<Vec<EcPoint>>,
}

impl KmsSigner {
    /// Signs with `key_id` (a key id or ARN); `retired` are the keys rotated out, still
    /// published.
    pub fn new(sdk: &aws_config::SdkConfig, key_id: String, retired: Vec<String>) -> Self {
        Self {
            client: Client::new(sdk),
            key_id,
            retired,
            current: OnceCell::new(),
            retired_keys: OnceCell::new(),
        }
    }

    async fn public_key_of(&self, key_id: &str) -> Result<EcPoint, PortError> {
        let out = self
            .client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(kms)?;
        let der = out
            .public_key()
            .ok_or_else(|| kms(format!("GetPublicKey of {key_id} answered no key")))?;
        point(der.as_ref()).map_err(|e| kms(format!("the public key of {key_id}: {e}")))
    }
}

fn kms(e: impl Into<BoxError>) -> PortError {
    PortError::unavailable(Upstream::Kms, e)
}

/// A DER SubjectPublicKeyInfo (what `GetPublicKey` answers) as a P-256 point.
fn point(der: &[u8]) -> Result<EcPoint, BoxError> {
    let key = p256::PublicKey::from_public_key_der(der)
        .map_err(|e| format!("not a P-256 public key: {e}"))?;
    let encoded = key.to_encoded_point(false);
    let (Some(x), Some(y)) = (encoded.x(), encoded.y()) else {
        return Err("the point is the identity".into());
    };
    let mut point = EcPoint {
        x: [0; 32],
        y: [0; 32],
    };
    point.x.copy_from_slice(x);
    point.y.copy_from_slice(y);
    Ok(point)
}

/// KMS's DER ECDSA signature as JWS wants it: `r || s`, with `s` in its low form (either
/// verifies; the low one is what strict verifiers ask for).
fn jws_signature(der: &[u8]) -> Result<[u8; 64], BoxError> {
    let signature = p256::ecdsa::Signature::from_der(der)
        .map_err(|e| format!("KMS answered a signature that is not DER ECDSA: {e}"))?;
    let signature = signature.normalize_s().unwrap_or(signature);
    Ok(signature.to_bytes().into())
}

#[async_trait]
impl ReceiptSigner for KmsSigner {
    async fn public_key(&self) -> Result<EcPoint, PortError> {
        self.current
            .get_or_try_init(|| self.public_key_of(&self.key_id))
            .await
            .copied()
    }

    async fn retired_keys(&self) -> Result<Vec<EcPoint>, PortError> {
        self.retired_keys
            .get_or_try_init(|| async {
                let mut keys = Vec::with_capacity(self.retired.len());
                for id in &self.retired {
                    keys.push(self.public_key_of(id).await?);
                }
                Ok(keys)
            })
            .await
            .cloned()
    }

    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], PortError> {
        let (message_type, message) = if message.len() <= KMS_RAW_MAX {
            (MessageType::Raw, Blob::new(message))
        } else {
            let digest = sha2::Sha256::digest(message);
            (MessageType::Digest, Blob::new(digest.to_vec()))
        };
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(message)
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(kms)?;
        let der = out
            .signature()
            .ok_or_else(|| kms("Sign answered no signature"))?;
        jws_signature(der.as_ref()).map_err(kms)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey as _;

    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
    }

    #[test]
    fn a_der_signature_becomes_the_jws_one_and_still_verifies() {
        let key = key();
        let sig: Signature = key.sign(b"message");
        let high_s = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        for der in [sig.to_der(), high_s.to_der()] {
            let raw = jws_signature(der.as_bytes()).unwrap();
            let back = Signature::from_slice(&raw).unwrap();
            assert!(back.normalize_s().is_none(), "s is in its low form");
            key.verifying_key().verify(b"message", &back).unwrap();
        }
        assert!(jws_signature(b"not der").is_err());
    }

    #[test]
    fn a_spki_public_key_becomes_its_point() {
        let key = key();
        let der = key.verifying_key().to_public_key_der().unwrap();
        let p = point(der.as_bytes()).unwrap();
        let encoded = key.verifying_key().to_encoded_point(false);
        assert_eq!(&p.x[..], encoded.x().unwrap().as_slice());
        assert_eq!(&p.y[..], encoded.y().unwrap().as_slice());
        assert!(point(b"junk").is_err());
    }
}
