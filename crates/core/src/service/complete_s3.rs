//! Completing the multipart upload in S3 for a completion this caller holds: a retried
//! completion recognises its own object; an object not made of its parts stays untouched.

use super::Uploads;
use crate::domain::{Kind, ListedPart, UploadRecord, multipart_etag};
use crate::error::{Conflict, Error};
use crate::ports::PortError;

impl Uploads {
    pub(super) async fn complete_in_s3(
        &self,
        record: &UploadRecord,
        parts: &[ListedPart],
    ) -> Result<(), Error> {
        let Kind::Multipart { s3_upload_id, .. } = &record.kind else {
            return Ok(());
        };
        match self
            .objects
            .complete_multipart(record.key.as_str(), s3_upload_id, parts)
            .await
        {
            // NotFound: an earlier attempt completed it; the object tells the rest.
            Ok(()) | Err(PortError::NotFound) => Ok(()),
            // `If-None-Match: *` refused to replace an object under the key: a retried
            // completion whose first attempt landed finds its own (the ETag these parts make);
            // anything else is not this upload's, and stays untouched.
            Err(PortError::PreconditionFailed) => {
                let expected = multipart_etag(parts);
                match self.objects.head(record.key.as_str(), None).await {
                    Ok(Some(info)) if expected.as_deref() == Some(info.etag.as_str()) => Ok(()),
                    Ok(found) => {
                        tracing::warn!(
                            etag = found.map(|i| i.etag),
                            ?expected,
                            "an object not made of this upload's parts is under its key"
                        );
                        self.reopen(record).await;
                        Err(Conflict::KeyTaken.into())
                    }
                    Err(e) => {
                        self.release(record, &e).await;
                        Err(e.into())
                    }
                }
            }
            Err(PortError::Rejected(reason)) => {
                // S3's own words are logged, never echoed.
                tracing::warn!(%reason, "S3 refused to complete the multipart upload");
                self.reopen(record).await;
                Err(Conflict::PartRejected.into())
            }
            Err(e) => {
                self.release(record, &e).await;
                Err(e.into())
            }
        }
    }
}
