//! Saved hashing progress, sealed: a paused verification stores SHA-256's internal state in the
//! table, and the next run continues from it. Trusted as read, a table writer could put there
//! the state of bytes of their choosing and have the receipt sign the digest of *those* bytes
//! followed by the object's tail. So the process that hashed the bytes signs the state with the
//! receipt key (which only hashing functions may use), bound to the upload, the pinned version
//! and the byte count; a run that finds the seal missing or wrong hashes again from byte 0.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::EncodedPoint;
use p256::{FieldBytes, NistP256};

use super::{EcPoint, Receipts};
use crate::domain::{Progress, UploadRecord};
use crate::ports::PortError;

/// What a seal vouches for: this progress of this upload, on this version of its object.
pub struct Sealed<'a> {
    pub record: &'a UploadRecord,
    pub etag: &'a str,
    pub version_id: Option<&'a str>,
    pub progress: &'a Progress,
}

impl Sealed<'_> {
    /// The signed message: each field prefixed with its length, so no two field lists encode
    /// alike (keys may hold any character). Its line break keeps it apart from a JWS signing
    /// input (base64url and one dot), so a seal can never pass for a receipt, nor one for a seal.
    fn message(&self) -> Vec<u8> {
        let id = self.record.upload_id.to_string();
        let hashed = self.progress.hashed.to_string();
        let state = hex::encode(&self.progress.state);
        let fields = [
            id.as_str(),
            self.record.key.as_str(),
            self.version_id.unwrap_or(""),
            self.etag,
            hashed.as_str(),
            state.as_str(),
        ];
        let mut out = b"verified-uploads progress v2\n".to_vec();
        for f in fields {
            out.extend_from_slice(format!("{}:{f};", f.len()).as_bytes());
        }
        out
    }
}

impl Receipts {
    /// The seal of `sealed`'s progress: an ES256 signature by the receipt key.
    pub async fn seal(&self, sealed: &Sealed<'_>) -> Result<[u8; 64], PortError> {
        self.signer.sign(&sealed.message()).await
    }

    /// Whether `sealed`'s progress carries a seal made by the signing key. Not a retired one:
    /// whoever may still use a retired key must not steer what the current one signs, and a
    /// seal only matters between two runs (a rotation costs at most one re-hash). `Err` only
    /// when the key cannot be read (an upstream fault, not a verdict on the seal).
    pub async fn is_sealed(&self, sealed: &Sealed<'_>) -> Result<bool, PortError> {
        let Some(seal) = sealed.progress.seal.as_ref() else {
            return Ok(false);
        };
        let Ok(signature) = Signature::from_slice(seal) else {
            return Ok(false);
        };
        let key = self.signer.public_key().await?;
        Ok(verifying_key(&key).is_some_and(|k| k.verify(&sealed.message(), &signature).is_ok()))
    }
}

pub(super) fn verifying_key(point: &EcPoint) -> Option<VerifyingKey> {
    let encoded = EncodedPoint::<NistP256>::from_affine_coordinates(
        FieldBytes::from_slice(&point.x),
        FieldBytes::from_slice(&point.y),
        false,
    );
    VerifyingKey::from_encoded_point(&encoded).ok()
}
