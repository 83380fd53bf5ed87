//! `GET /uploads/{id}/object`: a download of exactly the version that was verified.

use super::Uploads;
use crate::domain::{ContentType, Filename, Sha256, Status, UploadId, UploadRecord, timestamp};
use crate::error::{Conflict, Error};

/// A pre-signed GET of the verified version, and what the client should find in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub url: String,
    pub expires_at: String,
    pub version_id: Option<String>,
    pub sha256: Sha256,
    pub size: u64,
    pub content_type: ContentType,
    pub filename: Filename,
}

impl Uploads {
    pub async fn download(&self, owner: &str, id: UploadId) -> Result<Download, Error> {
        let record = self.get(owner, id).await?;
        let (Status::Verified, Some(sha256), Some(size)) =
            (record.status(), record.sha256(), record.size())
        else {
            let status = record.status();
            return Err(Conflict::NotVerified { status }.into());
        };
        let version_id = record.version_id().map(str::to_owned);
        let UploadRecord {
            key,
            content_type,
            filename,
            ..
        } = record;
        let expiry = self.limits.url_expiry;
        let url = self
            .objects
            .presign_get(
                key.as_str(),
                version_id.as_deref(),
                filename.as_str(),
                expiry,
            )
            .await?;
        let expires_at = time::OffsetDateTime::now_utc() + expiry;
        Ok(Download {
            url,
            expires_at: timestamp(expires_at),
            version_id,
            sha256,
            size,
            content_type,
            filename,
        })
    }
}
