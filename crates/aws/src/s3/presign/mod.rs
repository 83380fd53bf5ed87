//! SigV4 query-string pre-signing for S3 (`UNSIGNED-PAYLOAD`).
//!
//! Written against the SigV4 spec rather than through the SDK's presigner for two reasons: we
//! must control exactly which headers are signed (`content-length`, `x-amz-checksum-sha256` —
//! the SDK has dropped checksum headers from pre-signed requests before, aws-sdk-rust#1103), and
//! a batch of up to 10,000 URLs should derive the signing key once, not once per URL.
//!
//! Here the endpoint a bucket is addressed at and the signing key a batch derives once; `url`
//! signs query-string URLs with it, `post` browser form POST policies.

mod post;
mod url;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4's rule).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Same for paths, but '/' separates key segments and stays.
const PATH: &AsciiSet = &QUERY.remove(b'/');

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("invalid S3 endpoint URL {0:?}")]
    Url(String),
    #[error(
        "bucket {0:?} cannot use Transfer Acceleration: its name must be DNS-compatible without dots (3-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit)"
    )]
    NotAccelerable(String),
}

/// Whether S3 Transfer Acceleration can address `bucket`: a DNS label, so no dots (the
/// accelerate endpoint is virtual-hosted only, and a dot would break its TLS wildcard).
pub fn accelerable(bucket: &str) -> bool {
    let b = bucket.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(|c| *c != b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// Where a bucket's objects are addressed.
#[derive(Debug, Clone)]
pub struct Presigner {
    scheme: String,
    host: String,
    /// Path prefix before the key: `/{bucket}` for path-style, empty for virtual-hosted.
    prefix: String,
    region: String,
    bucket: String,
}

impl Presigner {
    /// With an endpoint override (a local emulator, LocalStack, MinIO) objects are addressed
    /// path-style, as the SDK client is configured; otherwise virtual-hosted on AWS.
    pub fn new(endpoint: Option<&str>, region: &str, bucket: &str) -> Result<Self, EndpointError> {
        let bucket_path = utf8_percent_encode(bucket, PATH).to_string();
        match endpoint {
            Some(url) => {
                let (scheme, rest) = url
                    .split_once("://")
                    .filter(|(s, _)| *s == "http" || *s == "https")
                    .ok_or_else(|| EndpointError::Url(url.to_owned()))?;
                let (host, base) = match rest.find('/') {
                    Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
                    None => (rest, ""),
                };
                if host.is_empty() {
                    return Err(EndpointError::Url(url.to_owned()));
                }
                Ok(Self {
                    scheme: scheme.to_owned(),
                    host: host.to_owned(),
                    prefix: format!("{base}/{bucket_path}"),
                    region: region.to_owned(),
                    bucket: bucket.to_owned(),
                })
            }
            None => Ok(Self {
                scheme: "https".into(),
                host: format!("{bucket}.s3.{region}.amazonaws.com"),
                prefix: String::new(),
                region: region.to_owned(),
                bucket: bucket.to_owned(),
            }),
        }
    }

    /// The same bucket on its Transfer Acceleration endpoint, `{bucket}.s3-accelerate.amazonaws.com`
    /// (virtual-hosted; the signing scope keeps the bucket's region). Only for what clients send
    /// to S3 themselves: the service's own requests stay on the regional endpoint.
    pub fn accelerated(&self) -> Result<Self, EndpointError> {
        if !accelerable(&self.bucket) {
            return Err(EndpointError::NotAccelerable(self.bucket.clone()));
        }
        Ok(Self {
            scheme: "https".into(),
            host: format!("{}.s3-accelerate.amazonaws.com", self.bucket),
            prefix: String::new(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
        })
    }

    /// Starts a batch of URLs signed at `now` that stay valid for `expires`.
    pub fn batch<'a>(
        &'a self,
        creds: &'a Credentials,
        now: time::OffsetDateTime,
        expires: Duration,
    ) -> Batch<'a> {
        let now = now.to_offset(time::UtcOffset::UTC);
        let date = format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let amz_date = format!(
            "{date}T{:02}{:02}{:02}Z",
            now.hour(),
            now.minute(),
            now.second()
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let mut key = hmac(
            format!("AWS4{}", creds.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [self.region.as_bytes(), b"s3", b"aws4_request"] {
            key = hmac(&key, part);
        }
        let signer = HmacSha256::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        let raw_credential = format!("{}/{scope}", creds.access_key_id);
        let credential = utf8_percent_encode(&raw_credential, QUERY).to_string();
        let token = creds
            .session_token
            .as_deref()
            .map(|t| utf8_percent_encode(t, QUERY).to_string());
        let expires = expires.as_secs().clamp(1, 604_800);
        Batch {
            presigner: self,
            signer,
            amz_date,
            scope,
            credential,
            raw_credential,
            token,
            raw_token: creds.session_token.clone(),
            expires,
            expiration: now + time::Duration::seconds(expires as i64),
        }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// URLs signed with one derived key; cheap to sign many.
pub struct Batch<'a> {
    presigner: &'a Presigner,
    signer: HmacSha256,
    amz_date: String,
    scope: String,
    credential: String,
    raw_credential: String,
    token: Option<String>,
    raw_token: Option<String>,
    expires: u64,
    expiration: time::OffsetDateTime,
}

#[cfg(test)]
mod tests;
