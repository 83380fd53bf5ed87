//! Multipart uploads on S3: created, their parts' URLs signed, listed, completed, aborted.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};

use super::{S3Objects, port_error, unquote, upload_error};
use vu_core::domain::PartNumber;
use vu_core::ports::{ListedPart, NewMultipart, PartToSign, PortError, SignedPart, Upstream};

pub(super) async fn create(s3: &S3Objects, req: &NewMultipart<'_>) -> Result<String, PortError> {
    let metadata: HashMap<String, String> = req.metadata.as_map().clone().into_iter().collect();
    let out = s3
        .client
        .create_multipart_upload()
        .bucket(&s3.bucket)
        .key(req.key)
        .content_type(req.content_type.as_str())
        .set_metadata((!metadata.is_empty()).then_some(metadata))
        .set_checksum_algorithm(req.part_checksums.then_some(ChecksumAlgorithm::Sha256))
        .set_server_side_encryption(s3.kms_key.as_ref().map(|_| ServerSideEncryption::AwsKms))
        .set_ssekms_key_id(s3.kms_key.clone())
        .set_bucket_key_enabled(s3.kms_key.as_ref().map(|_| true))
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

pub(super) async fn presign_parts(
    s3: &S3Objects,
    key: &str,
    upload_id: &str,
    parts: &[PartToSign],
    expires: Duration,
) -> Result<Vec<SignedPart>, PortError> {
    let creds = s3.credentials().await?;
    let batch = s3
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

pub(super) async fn list_parts(
    s3: &S3Objects,
    key: &str,
    upload_id: &str,
) -> Result<Vec<ListedPart>, PortError> {
    let mut parts = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = s3
            .client
            .list_parts()
            .bucket(&s3.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.take())
            .send()
            .await
            .map_err(upload_error)?;
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

pub(super) async fn complete(
    s3: &S3Objects,
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
    s3.client
        .complete_multipart_upload()
        .bucket(&s3.bucket)
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

pub(super) async fn abort(s3: &S3Objects, key: &str, upload_id: &str) -> Result<(), PortError> {
    s3.client
        .abort_multipart_upload()
        .bucket(&s3.bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(port_error)?;
    Ok(())
}
