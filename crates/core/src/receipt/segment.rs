//! Segment ends, sealed: a worker of a fan-out records what its segment of the pinned object
//! ended in, and the worker that completes the set walks the chain from those ends to the
//! verdict the receipt key signs. Trusted as read, a table writer could plant ends that walk to
//! a digest of their choosing. So the worker that hashed the segment signs its end with the
//! receipt key, bound to the upload, the pinned version, the segment (index, byte range and
//! the state it was hashed from) and the end; an end whose seal is missing or wrong counts as
//! not found, and its segment is hashed again.

use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier as _;

use super::Receipts;
use super::progress::verifying_key;
use crate::domain::UploadRecord;
use crate::ports::PortError;
use crate::segments::Segment;

/// What a segment seal vouches for: segment `index` (`segment`) of this upload, on this version
/// of its object, hashed from its declared start, ended in `end`.
pub struct SealedEnd<'a> {
    pub record: &'a UploadRecord,
    pub etag: &'a str,
    pub version_id: Option<&'a str>,
    pub index: u16,
    pub segment: &'a Segment,
    pub end: &'a [u8; 32],
}

impl SealedEnd<'_> {
    /// The signed message: each field prefixed with its length (keys may hold any character),
    /// under a first line of its own, so it never reads as a progress seal's message, nor, with
    /// its line break, as a JWS signing input (base64url and one dot).
    pub(crate) fn message(&self) -> Vec<u8> {
        let id = self.record.upload_id.to_string();
        let index = self.index.to_string();
        let start = self.segment.start.to_string();
        let end_at = self.segment.end.to_string();
        let from = hex::encode(self.segment.declared_start.to_bytes());
        let end = hex::encode(self.end);
        let fields = [
            id.as_str(),
            self.record.key.as_str(),
            self.version_id.unwrap_or(""),
            self.etag,
            index.as_str(),
            start.as_str(),
            end_at.as_str(),
            from.as_str(),
            end.as_str(),
        ];
        let mut out = b"verified-uploads segment v1\n".to_vec();
        for f in fields {
            out.extend_from_slice(format!("{}:{f};", f.len()).as_bytes());
        }
        out
    }
}

impl Receipts {
    /// The seal of `sealed`'s end: an ES256 signature by the receipt key.
    pub async fn seal_end(&self, sealed: &SealedEnd<'_>) -> Result<[u8; 64], PortError> {
        self.signer.sign(&sealed.message()).await
    }

    /// Whether `seal` is the signing key's seal of `sealed` (not a retired key's, as for
    /// progress: a rotation costs at most the segments re-hashed). `Err` only when the key
    /// cannot be read (an upstream fault, not a verdict on the seal).
    pub async fn is_sealed_end(
        &self,
        sealed: &SealedEnd<'_>,
        seal: Option<&[u8; 64]>,
    ) -> Result<bool, PortError> {
        let Some(Ok(signature)) = seal.map(|s| Signature::from_slice(s)) else {
            return Ok(false);
        };
        let key = self.signer.public_key().await?;
        Ok(verifying_key(&key).is_some_and(|k| k.verify(&sealed.message(), &signature).is_ok()))
    }
}
