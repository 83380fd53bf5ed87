//! Single objects: the form POST that uploads one, its HEAD, its deletion.

use std::time::Duration;

use super::{S3Objects, port_error, unquote};
use vu_core::domain::ContentType;
use vu_core::ports::{ObjectInfo, PortError, PostForm, Upstream};

pub(super) async fn presign_post(
    s3: &S3Objects,
    key: &str,
    content_type: &ContentType,
    max_len: u64,
    expires: Duration,
) -> Result<PostForm, PortError> {
    let creds = s3.credentials().await?;
    // Explicit, as at CreateMultipartUpload, rather than left to the bucket's default; pinned
    // by the policy, so a client can neither drop them nor pick another key.
    let sse: Vec<(&str, &str)> = match &s3.kms_key {
        Some(k) => vec![
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", k),
            ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
        ],
        None => Vec::new(),
    };
    Ok(s3
        .presigner
        .batch(&creds, time::OffsetDateTime::now_utc(), expires)
        .post_form(key, content_type.as_str(), 0..=max_len, &sse))
}

pub(super) async fn head(
    s3: &S3Objects,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<ObjectInfo>, PortError> {
    match s3
        .client
        .head_object()
        .bucket(&s3.bucket)
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

pub(super) async fn delete(
    s3: &S3Objects,
    key: &str,
    version_id: Option<&str>,
) -> Result<(), PortError> {
    s3.client
        .delete_object()
        .bucket(&s3.bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(port_error)?;
    Ok(())
}
