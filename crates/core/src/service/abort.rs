//! `DELETE /uploads/{id}`: a pending session ends `aborted`, and S3 lets go of its bytes.

use super::Uploads;
use crate::domain::{Change, Guard, Kind, Status, UploadId, timestamp_now};
use crate::error::{Action, Conflict, Error};
use crate::ports::PortError;

impl Uploads {
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
