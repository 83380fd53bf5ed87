//! Single objects: the form POST that uploads one, its HEAD, its deletion.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

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
        // A 403 is ambiguous: S3 answers a missing key's HEAD with 403 to a caller it will not
        // tell whether the key exists, and a present object's with 403 when access to it (or to
        // its KMS key) is denied, or the request's clock is skewed. Only an absence is a verdict,
        // so the listing (which the functions may do under `uploads/`) decides.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            match listed(s3, key, version_id).await {
                Ok(false) => {
                    tracing::info!(key, "HEAD answered 403 and the listing has no such object");
                    Ok(None)
                }
                Ok(true) => Err(PortError::unavailable(
                    Upstream::S3,
                    format!("HEAD refused (403 {}) though the object exists", code(&e)),
                )),
                Err(listing) => {
                    tracing::warn!(key, error = %listing, "the listing after a 403 failed too");
                    Err(port_error(e))
                }
            }
        }
        Err(e) => match port_error(e) {
            PortError::NotFound => Ok(None),
            other => Err(other),
        },
    }
}

fn code<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    e.code().unwrap_or("AccessDenied").to_owned()
}

/// Whether the bucket lists `key` (its current version, or `version_id`) as an object: a delete
/// marker, or no entry at all, is an absence.
async fn listed(s3: &S3Objects, key: &str, version_id: Option<&str>) -> Result<bool, PortError> {
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    // One key's versions; a key with thousands of versions is not one this service made.
    for _ in 0..10 {
        let page = s3
            .client
            .list_object_versions()
            .bucket(&s3.bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(port_error)?;
        let found = page.versions().iter().any(|v| {
            v.key() == Some(key)
                && match version_id {
                    Some(id) => v.version_id() == Some(id),
                    None => v.is_latest() == Some(true),
                }
        });
        if found {
            return Ok(true);
        }
        if page.is_truncated() != Some(true) {
            return Ok(false);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    Err(PortError::unavailable(
        Upstream::S3,
        "too many versions under the key to tell whether it exists",
    ))
}

/// The tag the bucket's lifecycle expires versions by (template.yaml,
/// `expire-versions-marked-for-removal`): nothing else expires.
pub const REMOVAL_TAG: (&str, &str) = ("vu-remove", "1");

/// Tags `version_id` of `key` (or the current version) for removal by the bucket's lifecycle.
pub(super) async fn mark_for_removal(
    s3: &S3Objects,
    key: &str,
    version_id: Option<&str>,
) -> Result<(), PortError> {
    let tag = aws_sdk_s3::types::Tag::builder()
        .key(REMOVAL_TAG.0)
        .value(REMOVAL_TAG.1)
        .build()
        .map_err(|e| PortError::unavailable(Upstream::S3, e))?;
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(tag)
        .build()
        .map_err(|e| PortError::unavailable(Upstream::S3, e))?;
    s3.client
        .put_object_tagging()
        .bucket(&s3.bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .tagging(tagging)
        .send()
        .await
        .map_err(port_error)?;
    Ok(())
}

/// Deletes a version the service decided goes, tagging it first so that if the delete is lost
/// the lifecycle still removes it a day later. The tag is only that safety net: a version
/// already gone, or a tagging refused, does not hold the delete back. Deleting the current
/// object (`None`) only hides it behind a delete marker, so nothing is tagged.
pub(super) async fn delete(
    s3: &S3Objects,
    key: &str,
    version_id: Option<&str>,
) -> Result<(), PortError> {
    if version_id.is_some() {
        match mark_for_removal(s3, key, version_id).await {
            Ok(()) | Err(PortError::NotFound) => {}
            Err(e) => {
                tracing::warn!(key, error = %e, "could not tag a version for removal; deleting it anyway")
            }
        }
    }
    delete_untagged(s3, key, version_id).await
}

/// Deletes a version with no tag first: a delete marker, which holds no bytes and cannot be
/// tagged.
pub(super) async fn delete_untagged(
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
