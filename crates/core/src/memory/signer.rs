//! A receipt signer holding its P-256 key in memory (RustCrypto's `p256`): for tests, and for
//! rotations within them (`rotated`).

use async_trait::async_trait;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::Digest as _;

use super::{Call, Faults};
use crate::ports::PortError;
use crate::receipt::{EcPoint, ReceiptSigner};

pub struct MemorySigner {
    key: SigningKey,
    retired: Vec<VerifyingKey>,
    pub faults: Faults,
}

impl MemorySigner {
    /// A key derived from `seed`, so a test names its keys ("A", "B") and gets the same ones.
    pub fn from_seed(seed: &str) -> Self {
        let scalar = sha2::Sha256::digest(seed.as_bytes());
        let bytes: [u8; 32] = scalar.into();
        // A SHA-256 output is a valid P-256 scalar but with negligible probability; for the
        // seeds tests use it always is.
        let key = SigningKey::from_bytes(&bytes.into())
            .unwrap_or_else(|_| unreachable!("a test seed gave an invalid P-256 scalar"));
        Self {
            key,
            retired: Vec::new(),
            faults: Faults::default(),
        }
    }

    /// This signer after a rotation to the key of `seed`: the current key is retired, still
    /// published.
    pub fn rotated(self, seed: &str) -> Self {
        let mut next = Self::from_seed(seed);
        next.retired = self.retired;
        next.retired.push(*self.key.verifying_key());
        next
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    pub fn point(key: &VerifyingKey) -> EcPoint {
        let encoded = key.to_encoded_point(false);
        let mut point = EcPoint {
            x: [0; 32],
            y: [0; 32],
        };
        if let (Some(x), Some(y)) = (encoded.x(), encoded.y()) {
            point.x.copy_from_slice(x);
            point.y.copy_from_slice(y);
        }
        point
    }
}

#[async_trait]
impl ReceiptSigner for MemorySigner {
    async fn public_key(&self) -> Result<EcPoint, PortError> {
        Ok(Self::point(self.key.verifying_key()))
    }

    async fn retired_keys(&self) -> Result<Vec<EcPoint>, PortError> {
        Ok(self.retired.iter().map(Self::point).collect())
    }

    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], PortError> {
        self.faults.enter(Call::Sign).await?;
        let signature: Signature = self.key.sign(message);
        Ok(signature.to_bytes().into())
    }
}
