//! `DELETE /uploads/{id}`: a pending session ends `aborted`, and S3 lets go of its bytes. And a
//! pending session whose multipart upload S3 no longer holds ends `aborted` too.

use super::Uploads;
use super::parts::gone;
use crate::domain::{Change, Guard, Kind, Status, UploadId, UploadRecord, timestamp_now};
use crate::error::{Action, Conflict, Error, chain};
use crate::ports::PortError;

impl Uploads {
    /// A pending multipart session whose upload S3 answered `NoSuchUpload` for (the bucket's
    /// lifecycle aborts incomplete uploads after a day): it can never complete or resume, so it
    /// ends `aborted` and gives its reservation back (`settled`), as the owner's abort would,
    /// instead of holding it until its TTL. Returns what the caller answers: `gone`.
    pub(super) async fn close_gone(&self, record: &UploadRecord) -> Error {
        if record.status() != Status::Pending || record.kind == Kind::Post {
            return gone();
        }
        let guard = Guard::status(Status::Pending);
        match self
            .sessions
            .transition(record.upload_id, guard, Change::Aborted, &timestamp_now())
            .await
        {
            Ok(mut aborted) => {
                tracing::warn!(upload_id = %record.upload_id, "S3 no longer holds the multipart upload: the session is aborted");
                self.settled(&mut aborted).await;
            }
            // Moved on meanwhile (a racing complete or abort), or not written: the sweep
            // closes it later.
            Err(e) => {
                tracing::warn!(upload_id = %record.upload_id, error = %chain(&e), "could not close a session whose multipart upload is gone")
            }
        }
        gone()
    }

    pub async fn abort(&self, owner: &str, id: UploadId) -> Result<(), Error> {
        let record = self.get(owner, id).await?;
        match record.status() {
            Status::Pending => {
                // Claim the record first, so a racing `complete` cannot start on it.
                let guard = Guard::status(Status::Pending);
                match self
                    .sessions
                    .transition(id, guard, Change::Aborted, &timestamp_now())
                    .await
                {
                    Ok(mut aborted) => self.settled(&mut aborted).await,
                    Err(PortError::PreconditionFailed) => {
                        return Box::pin(self.abort(owner, id)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // Aborting again retries the S3 side, which may have failed the first time.
            Status::Aborted => {}
            other => {
                let status = other;
                return Err(Conflict::WrongState {
                    action: Action::Abort,
                    status,
                }
                .into());
            }
        }
        // A posted object that arrived before the abort is unverified: it goes too.
        let s3_side = match &record.kind {
            Kind::Multipart { s3_upload_id, .. } => {
                self.objects
                    .abort_multipart(record.key.as_str(), s3_upload_id)
                    .await
            }
            Kind::Post => self
                .objects
                .purge(record.key.as_str(), None)
                .await
                .map(|_| ()),
        };
        match s3_side {
            Ok(()) | Err(PortError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
