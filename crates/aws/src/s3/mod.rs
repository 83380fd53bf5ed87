//! The `ObjectStore` on S3: multipart uploads, SigV4 pre-signed part URLs, POST forms and
//! downloads, and version-pinned reads.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use tokio::sync::RwLock;

pub use objects::REMOVAL_TAG;
pub use presign::EndpointError;
use presign::{Credentials, Presigner};
use vu_core::domain::ContentType;
use vu_core::ports::{
    ListedPart, NewMultipart, ObjectInfo, ObjectStore, PartToSign, Pin, PortError, PostForm,
    SignedPart, Upstream,
};

mod multipart;
mod objects;
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
        // Absence, the only upstream answer that is a verdict: of the key, of the pinned
        // version, or of the multipart upload.
        (Some("NoSuchUpload" | "NoSuchKey" | "NoSuchVersion" | "NotFound"), _)
        | (None, Some(404)) => PortError::NotFound,
        (Some("PreconditionFailed"), _) | (_, Some(412)) => PortError::PreconditionFailed,
        (Some("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "BadDigest"), _) => {
            PortError::Rejected(e.message().unwrap_or("S3 refused the parts").to_owned())
        }
        _ => PortError::unavailable(Upstream::S3, e),
    }
}

/// For calls on a multipart upload (ListParts): only S3's `NoSuchUpload` says the upload is
/// gone, which ends its session; a 404 without that code (a wrong endpoint, a proxy's page) is
/// not S3 speaking about this upload, so it is an upstream fault, never a reason to close.
fn upload_error<E>(e: SdkError<E, aws_smithy_runtime_api::http::Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e.code() {
        Some("NoSuchUpload") => PortError::NotFound,
        None | Some("NotFound" | "NoSuchKey" | "NoSuchVersion") => {
            PortError::unavailable(Upstream::S3, e)
        }
        _ => port_error(e),
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
        multipart::create(self, req).await
    }

    async fn presign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartToSign],
        expires: Duration,
    ) -> Result<Vec<SignedPart>, PortError> {
        multipart::presign_parts(self, key, upload_id, parts, expires).await
    }

    async fn presign_post(
        &self,
        key: &str,
        content_type: &ContentType,
        max_len: u64,
        expires: Duration,
    ) -> Result<PostForm, PortError> {
        objects::presign_post(self, key, content_type, max_len, expires).await
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, PortError> {
        multipart::list_parts(self, key, upload_id).await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), PortError> {
        multipart::complete(self, key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError> {
        multipart::abort(self, key, upload_id).await
    }

    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, PortError> {
        objects::head(self, key, version_id).await
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
        objects::delete(self, key, version_id).await
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
        versions::presign_get(self, key, version_id, filename, expires).await
    }
}

impl S3Objects {
    /// Tags a version (or the current object) for removal by the bucket's lifecycle, as every
    /// delete of this adapter does first.
    pub async fn mark_for_removal(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(), PortError> {
        objects::mark_for_removal(self, key, version_id).await
    }
}

#[cfg(test)]
mod tests;
