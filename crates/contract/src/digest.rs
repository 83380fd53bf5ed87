//! A SHA-256 digest as the wire carries it: lower-case hex in JSON, base64 in S3 checksum headers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Invalid;

/// A SHA-256 digest. Shown as lower-case hex; S3 checksum headers carry it as base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    pub fn parse_hex(s: &str) -> Result<Self, Invalid> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| {
            Invalid::new(
                "sha256",
                "must be 64 hexadecimal characters (a SHA-256 digest)",
            )
        })?;
        Ok(Self(out))
    }

    pub fn parse_base64(s: &str) -> Result<Self, Invalid> {
        let bytes = B64.decode(s).map_err(|_| {
            Invalid::new("sha256", "must be a base64 SHA-256 digest (44 characters)")
        })?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Invalid::new("sha256", "must decode to 32 bytes (a SHA-256 digest)"))?;
        Ok(Self(arr))
    }

    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(data).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        Self::parse_hex(&hex).map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document: a named string schema, lower-case hex.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Sha256 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A hex SHA-256 digest."))
            .pattern(Some("^[0-9a-f]{64}$"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Sha256 {
    fn name() -> std::borrow::Cow<'static, str> {
        "Sha256Hex".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_round_trips_hex_and_base64() {
        let d = Sha256::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256::parse_hex(&d.to_hex().to_uppercase()), Ok(d));
        assert_eq!(Sha256::parse_base64(&d.to_base64()), Ok(d));
        assert!(Sha256::parse_hex("abc").is_err());
        assert!(Sha256::parse_base64("YWJj").is_err());
    }
}
