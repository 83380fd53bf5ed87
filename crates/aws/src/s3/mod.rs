//! The `ObjectStore` on S3: multipart uploads, SigV4 pre-signed part URLs, POST forms and
//! downloads, and version-pinned reads.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use tokio::sync::RwLock;

pub use presign::EndpointError;
use presign::{Credentials, Presigner};
use vu_core::domain::{ContentType, PartNumber};
use vu_core::ports::{
    ListedPart, NewMultipart, ObjectInfo, ObjectStore, PartToSign, Pin, PortError, PostForm,
    SignedPart, Upstream,
};

pub mod presign;
mod read;
mod versions;

/// How often a ranged GET whose body breaks mid-way is resumed from the byte it reached.
const BODY_RESUMES: u32 = 3;

pub struct S3Objects {
    client: Client,
    bucket: String,
    presigner: Presigner,
    credentials: Option<SharedCredentialsProvider>,
    cached: RwLock<Option<(Credentials, Option<SystemTime>)>>,
    stall_timeout: Duration,
    /// SSE-KMS key new objects are encrypted under, with an S3 bucket key (`KMS_KEY_ARN`);
    /// `None`: the bucket's default encryption (SSE-S3).
    kms_key: Option<String>,
    /// An endpoint override (an emulator) is addressed path-style and has no accelerate host.
    endpoint_override: bool,
}

impl S3Objects {
    /// `stall_timeout`: how long a ranged GET's body may send nothing before it is resumed on a
    /// new connection (`VerifyConfig::stall_timeout`).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        stall_timeout: Duration,
    ) -> Result<Self, EndpointError> {
        let bucket = bucket.into();
        // One endpoint for the client and the pre-signer: part URLs address the S3 that holds the
        // multipart upload, even when S3's endpoint differs from the other services'.
        let endpoint = s3_endpoint(sdk);
        // Emulators and S3-compatible stores address buckets by path, not by host name.
        // A connection that never opens, or a response whose headers never come, fails in time
        // for a deadline to hold; a body that stalls is resumed (`get_range`).
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(stall_timeout)
            .build();
        let mut conf = aws_sdk_s3::config::Builder::from(sdk);
        conf.set_endpoint_url(endpoint.clone());
        let conf = conf
            .force_path_style(endpoint.is_some())
            .timeout_config(timeouts)
            .build();
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        Ok(Self {
            client: Client::from_conf(conf),
            presigner: Presigner::new(endpoint.as_deref(), region, &bucket)?,
            bucket,
            credentials: sdk.credentials_provider(),
            cached: RwLock::new(None),
            stall_timeout,
            kms_key: None,
            endpoint_override: endpoint.is_some(),
        })
    }

    /// New objects encrypted with SSE-KMS under `key` (an S3 bucket key cuts KMS requests),
    /// requested where the service creates them (CreateMultipartUpload, form POST fields), so
    /// clients send no encryption header: part PUTs inherit it from the multipart upload.
    pub fn with_kms_key(mut self, key: Option<String>) -> Self {
        self.kms_key = key;
        self
    }

    /// Part URLs, form POSTs and downloads on the bucket's Transfer Acceleration endpoint; the
    /// service's own requests (create, list, complete, verification reads) stay regional. With an
    /// endpoint override it is ignored with a warning: an emulator has no accelerate host.
    pub fn accelerated(mut self) -> Result<Self, EndpointError> {
        if self.endpoint_override {
            tracing::warn!(
                "S3_ACCELERATE ignored: S3 is reached through an endpoint override (AWS_ENDPOINT_URL), which has no accelerate endpoint"
            );
            return Ok(self);
        }
        self.presigner = self.presigner.accelerated()?;
        Ok(self)
    }

    /// Credentials for pre-signing, cached until five minutes before they expire.
    async fn credentials(&self) -> Result<Credentials, PortError> {
        let fresh = |exp: &Option<SystemTime>| {
            exp.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300))
        };
        if let Some((c, exp)) = self.cached.read().await.as_ref()
            && fresh(exp)
        {
            return Ok(c.clone());
        }
        let provider = self.credentials.as_ref().ok_or_else(|| {
            PortError::unavailable(
                Upstream::Credentials,
                "no AWS credentials provider is configured",
            )
        })?;
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| PortError::unavailable(Upstream::Credentials, e))?;
        let creds = Credentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().map(str::to_owned),
        };
        *self.cached.write().await = Some((creds.clone(), c.expiry()));
        Ok(creds)
    }
}

/// S3's endpoint override, resolved as `aws_sdk_s3::config::Builder::from(sdk)` resolves it: one
/// set in code wins; otherwise S3's own setting (`AWS_ENDPOINT_URL_S3`, a profile's `services`
/// section), then the shared one (`AWS_ENDPOINT_URL`, `endpoint_url`).
fn s3_endpoint(sdk: &aws_config::SdkConfig) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_owned);
    }
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build();
    key.ok()
        .and_then(|key| sdk.service_config()?.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

fn port_error<E>(e: SdkError<E, aws_smithy_runtime_api::http::Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code(), status) {
        (Some("NoSuchUpload" | "NoSuchKey" | "NotFound"), _) | (None, Some(404)) => {
            PortError::NotFound
        }
        (Some("PreconditionFailed"), _) | (_, Some(412)) => PortError::PreconditionFailed,
        (Some("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "BadDigest"), _) => {
            PortError::Rejected(e.message().unwrap_or("S3 refused the parts").to_owned())
        }
        _ => PortError::unavailable(Upstream::S3, e),
    }
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

#[async_trait]
impl ObjectStore for S3Objects {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn create_multipart(&self, req: &NewMultipart<'_>) -> Result<String, PortError> {
        let metadata: HashMap<String, String> = req.metadata.as_map().clone().into_iter().collect();
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(req.key)
            .content_type(req.content_type.as_str())
            .set_metadata((!metadata.is_empty()).then_some(metadata))
            .set_checksum_algorithm(req.part_checksums.then_some(ChecksumAlgorithm::Sha256))
            .set_server_side_encryption(self.kms_key.as_ref().map(|_| ServerSideEncryption::AwsKms))
            .set_ssekms_key_id(self.kms_key.clone())
            .set_bucket_key_enabled(self.kms_key.as_ref().map(|_| true))
            .send()
            .await
            .map_err(port_error)?;
        out.upload_id.ok_or_else(|| {
            PortError::unavailable(
                Upstream::S3,
                "CreateMultipartUpload answered without an UploadId",
            )
        })
    }

    async fn presign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartToSign],
        expires: Duration,
    ) -> Result<Vec<SignedPart>, PortError> {
        let creds = self.credentials().await?;
        let batch = self
            .presigner
            .batch(&creds, time::OffsetDateTime::now_utc(), expires);
        Ok(parts
            .iter()
            .map(|p| {
                let number = p.part_number.to_string();
                let len = p.len.map(|l| l.to_string());
                let checksum = p.sha256.map(|s| s.to_base64());
                let mut headers = Vec::with_capacity(2);
                if let Some(l) = &len {
                    headers.push(("content-length", l.as_str()));
                }
                if let Some(c) = &checksum {
                    headers.push(("x-amz-checksum-sha256", c.as_str()));
                }
                let url = batch.sign(
                    "PUT",
                    key,
                    &[("partNumber", &number), ("uploadId", upload_id)],
                    &headers,
                );
                SignedPart {
                    part_number: p.part_number,
                    url,
                    headers: headers
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                }
            })
            .collect())
    }

    async fn presign_post(
        &self,
        key: &str,
        content_type: &ContentType,
        max_len: u64,
        expires: Duration,
    ) -> Result<PostForm, PortError> {
        let creds = self.credentials().await?;
        // Explicit, as at CreateMultipartUpload, rather than left to the bucket's default; pinned
        // by the policy, so a client can neither drop them nor pick another key.
        let sse: Vec<(&str, &str)> = match &self.kms_key {
            Some(k) => vec![
                ("x-amz-server-side-encryption", "aws:kms"),
                ("x-amz-server-side-encryption-aws-kms-key-id", k),
                ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
            ],
            None => Vec::new(),
        };
        Ok(self
            .presigner
            .batch(&creds, time::OffsetDateTime::now_utc(), expires)
            .post_form(key, content_type.as_str(), 0..=max_len, &sse))
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, PortError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(port_error)?;
            for p in page.parts() {
                let (Some(n), Some(size)) = (p.part_number(), p.size()) else {
                    continue;
                };
                let Ok(part_number) = PartNumber::new(u64::try_from(n).unwrap_or(0)) else {
                    continue;
                };
                parts.push(ListedPart {
                    part_number,
                    size: u64::try_from(size).unwrap_or(0),
                    etag: unquote(p.e_tag().unwrap_or_default()),
                    checksum_sha256: p.checksum_sha256().map(str::to_owned),
                });
            }
            match (page.is_truncated(), page.next_part_number_marker()) {
                (Some(true), Some(next)) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), PortError> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(i32::from(p.part_number.get()))
                    .e_tag(format!("\"{}\"", p.etag))
                    .set_checksum_sha256(p.checksum_sha256.clone())
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            // Never over an object already under the key: S3 answers 412 instead.
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, PortError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                // Never guessed: a wrong size could verify the wrong bytes.
                size: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        PortError::unavailable(Upstream::S3, "HEAD answered without a length")
                    })?,
                etag: unquote(out.e_tag().unwrap_or_default()),
                // Unversioned buckets answer "null" (or nothing).
                version_id: out.version_id().filter(|v| *v != "null").map(str::to_owned),
            })),
            // Without `s3:ListBucket`, S3 answers a missing key's HEAD with 403: not there yet.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                tracing::warn!(key, "HEAD answered 403; taken as not there yet");
                Ok(None)
            }
            Err(e) => match port_error(e) {
                PortError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
        pin: Pin<'_>,
    ) -> Result<Vec<Bytes>, PortError> {
        read::range(self, key, start..start + len, pin).await
    }

    async fn delete(&self, key: &str, version_id: Option<&str>) -> Result<(), PortError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(port_error)?;
        Ok(())
    }

    async fn purge(&self, key: &str, keep: Option<&str>) -> Result<usize, PortError> {
        versions::purge(self, key, keep).await
    }

    async fn presign_get(
        &self,
        key: &str,
        version_id: Option<&str>,
        filename: &str,
        expires: Duration,
    ) -> Result<String, PortError> {
        let creds = self.credentials().await?;
        let disposition = versions::attachment(filename);
        let mut query = vec![("response-content-disposition", disposition.as_str())];
        if let Some(v) = version_id {
            query.push(("versionId", v));
        }
        Ok(self
            .presigner
            .batch(&creds, time::OffsetDateTime::now_utc(), expires)
            .sign("GET", key, &query, &[]))
    }
}

#[cfg(test)]
mod tests;
