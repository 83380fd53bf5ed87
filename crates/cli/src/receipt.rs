//! Receipts checked offline: a compact JWS (ES256) whose signature must verify with the key its
//! `kid` names in a saved key set (RustCrypto's `p256`, the JWK's point checked to be on the curve), and,
//! given the file, whose size and SHA-256 must be the file's.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

use vu_contract::receipt::{ALG, Claims, Header, Jwks, TYPE};

use super::Error;

/// Why a receipt is refused: each is exit status 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("not a compact JWS (three base64url parts)")]
    Malformed,
    #[error("signed with {alg:?} as {typ:?}; a receipt is ES256 {TYPE}")]
    NotAReceipt { alg: String, typ: String },
    #[error("signed by key {0:?}, which the key set does not hold")]
    UnknownKey(String),
    #[error("the key {0:?} in the key set is no P-256 public key")]
    BadKey(String),
    #[error("the signature does not verify: the receipt was changed, or another key signed it")]
    BadSignature,
    #[error("the file is not the one the receipt names: {0}")]
    OtherFile(String),
}

fn part<T: serde::de::DeserializeOwned>(encoded: &str) -> Result<T, Refused> {
    let bytes = B64URL.decode(encoded).map_err(|_| Refused::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Refused::Malformed)
}

/// The claims of `receipt` once its signature verified with the key set `keys`.
pub fn check(receipt: &str, keys: &Jwks) -> Result<Claims, Refused> {
    let receipt = receipt.trim();
    let mut parts = receipt.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed);
    };
    let h: Header = part(header)?;
    if h.alg != ALG || h.typ != TYPE {
        return Err(Refused::NotAReceipt {
            alg: h.alg,
            typ: h.typ,
        });
    }
    let jwk = keys
        .find(&h.kid)
        .ok_or_else(|| Refused::UnknownKey(h.kid.clone()))?;
    let key = verifying_key(jwk).ok_or_else(|| Refused::BadKey(h.kid.clone()))?;
    let signature = B64URL
        .decode(signature)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or(Refused::BadSignature)?;
    let signed = &receipt[..header.len() + 1 + payload.len()];
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| Refused::BadSignature)?;
    part(payload)
}

/// An EC P-256 JWK as a key: its point, checked to be on the curve.
fn verifying_key(jwk: &vu_contract::receipt::Jwk) -> Option<VerifyingKey> {
    if jwk.kty != "EC" || jwk.crv != "P-256" {
        return None;
    }
    let (x, y) = (B64URL.decode(&jwk.x).ok()?, B64URL.decode(&jwk.y).ok()?);
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let sec1: Vec<u8> = [&[4u8][..], &x, &y].concat();
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// Whether `claims` name exactly the bytes of the file at `path` (size, then SHA-256).
pub async fn check_file(claims: &Claims, path: &Path) -> Result<Result<(), Refused>, Error> {
    let context = || format!("cannot read {}", path.display());
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(context(), e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| Error::io(context(), e))?
        .len();
    if size != claims.size {
        return Ok(Err(Refused::OtherFile(format!(
            "{size} bytes, the receipt's {}",
            claims.size
        ))));
    }
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::io(context(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let got = hex::encode(hasher.finalize());
    if got != claims.sha256.to_hex() {
        return Ok(Err(Refused::OtherFile(format!(
            "SHA-256 {got}, the receipt's {}",
            claims.sha256
        ))));
    }
    Ok(Ok(()))
}

/// A key set from a file, or from an `http(s)://` URL.
pub async fn load_keys(http: &reqwest::Client, source: &str) -> Result<Jwks, Error> {
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let res = http
            .get(source)
            .send()
            .await
            .map_err(|e| super::api::network(&format!("GET {source}"), &e))?;
        if !res.status().is_success() {
            return Err(super::api::ApiError::Network(format!(
                "GET {source} answered {}",
                res.status().as_u16()
            ))
            .into());
        }
        res.text()
            .await
            .map_err(|e| super::api::network(&format!("GET {source}"), &e))?
    } else {
        tokio::fs::read_to_string(source)
            .await
            .map_err(|e| Error::io(format!("cannot read the key set {source}"), e))?
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{source} is not a JSON Web Key Set: {e}")))
}

#[cfg(test)]
mod tests;
