//! Part URLs for a session still taking parts, and the parts S3 already holds (for resuming).

use super::Uploads;
use crate::domain::{Invalid, Kind, ListedPart, PartNumber, Sha256, UploadId, UploadRecord};
use crate::error::{Action, Conflict, Error};
use crate::ports::{PartToSign, PortError, SignedPart};

/// Most URLs signed in one response: 10,000 URLs carrying Lambda session tokens would pass
/// Lambda's 6 MB response limit.
pub const MAX_URLS_PER_CALL: usize = 100;

pub(super) fn gone() -> Error {
    Conflict::MultipartGone.into()
}

fn no_parts() -> Error {
    Conflict::NoParts.into()
}

impl Uploads {
    pub async fn sign_parts(
        &self,
        owner: &str,
        id: UploadId,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        self.sign_parts_of(&self.get(owner, id).await?, parts).await
    }

    /// `sign_parts` for a record the caller has already read (and owns).
    pub async fn sign_parts_of(
        &self,
        record: &UploadRecord,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        self.require_active(record, Action::SignParts)?;
        if let (None, Kind::Multipart { s3_upload_id, .. }) = (record.plan, &record.kind) {
            // No length is signed without a size. Unless the operator allows such sessions, one
            // created while they were allowed is signed nothing more (it may still complete
            // with the parts S3 holds).
            if !self.limits.unsized_sessions {
                return Err(Error::SizeRequired);
            }
            // At most as many part numbers as the reservation holds at S3's minimum part size:
            // S3 keeps one part per number, so what the session can store before S3 holds any
            // of it is that many parts of up to 5 GiB (not 10,000).
            let limit = self.unsized_part_limit();
            if let Some((n, _)) = parts.iter().find(|(n, _)| u64::from(n.get()) > limit) {
                return Err(Invalid::new(
                    "part_numbers",
                    format!(
                        "part {n} is outside 1..={limit}: an upload of undeclared size may hold {} bytes, at most {limit} parts of S3's minimum part size",
                        self.unsized_reservation()
                    ),
                )
                .into());
            }
            // Once the parts S3 holds reach the session's reservation, no more URLs.
            let held: u64 = match self
                .objects
                .list_parts(record.key.as_str(), s3_upload_id)
                .await
            {
                Err(PortError::NotFound) => return Err(self.close_gone(record).await),
                listed => listed?.iter().map(|p| p.size).sum(),
            };
            if held >= self.unsized_reservation() {
                return Err(Error::TooLarge {
                    size: held,
                    max: self.unsized_reservation(),
                });
            }
        }
        self.sign(record, parts).await
    }

    pub(super) async fn sign(
        &self,
        record: &UploadRecord,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        let Kind::Multipart {
            s3_upload_id,
            part_checksums,
        } = &record.kind
        else {
            return Err(no_parts());
        };
        let mut to_sign = Vec::with_capacity(parts.len());
        for &(n, sha256) in parts {
            if let Some(plan) = record.plan.filter(|p| !p.contains(n)) {
                return Err(Invalid::new(
                    "part_numbers",
                    format!("part {n} is outside 1..={}", plan.part_count()),
                )
                .into());
            }
            let why = match (part_checksums, sha256) {
                (true, None) => {
                    "this upload was created with part_checksums: every part needs its SHA-256"
                }
                (false, Some(_)) => {
                    "this upload was created without part_checksums; S3 would refuse a part checksum"
                }
                _ => "",
            };
            if !why.is_empty() {
                return Err(Invalid::new(format!("sha256.{n}"), why).into());
            }
            to_sign.push(PartToSign {
                part_number: n,
                len: record.plan.map(|p| p.part_len(n)),
                sha256,
            });
        }
        Ok(self
            .objects
            .presign_parts(
                record.key.as_str(),
                s3_upload_id,
                &to_sign,
                self.limits.url_expiry,
            )
            .await?)
    }

    /// The parts S3 holds, for a client resuming an upload.
    pub async fn list_parts(&self, owner: &str, id: UploadId) -> Result<Vec<ListedPart>, Error> {
        self.list_parts_of(&self.get(owner, id).await?).await
    }

    /// `list_parts` for a record the caller has already read (and owns).
    pub async fn list_parts_of(&self, record: &UploadRecord) -> Result<Vec<ListedPart>, Error> {
        self.require_active(record, Action::ListParts)?;
        let Kind::Multipart { s3_upload_id, .. } = &record.kind else {
            return Err(no_parts());
        };
        match self
            .objects
            .list_parts(record.key.as_str(), s3_upload_id)
            .await
        {
            Err(PortError::NotFound) => Err(self.close_gone(record).await),
            other => Ok(other?),
        }
    }
}
