//! `GET /uploads/{id}/receipt` and `GET /.well-known/jwks.json`: a verified upload's signed
//! receipt, and the keys anyone checks it with.

use std::sync::Arc;

use vu_contract::receipt::Jwks;

use super::Uploads;
use crate::domain::{
    ObjectVersion, Progress, Sha256, State, Status, UploadId, UploadRecord, Verified,
};
use crate::error::{Conflict, Error, chain};
use crate::ports::{ObjectInfo, PortError};
use crate::receipt::{Receipts, Sealed};

impl Uploads {
    /// The same service, issuing receipts with `receipts`.
    pub fn with_receipts(mut self, receipts: Receipts) -> Self {
        self.receipts = Some(Arc::new(receipts));
        self
    }

    /// What issues receipts, when this service does.
    pub fn receipts(&self) -> Option<&Receipts> {
        self.receipts.as_deref()
    }

    /// The receipt signed with the verdict of `owner`'s upload `id`: a `NotVerified` conflict
    /// unless it is `verified` (in flight: wait; failed: never); `None` when none was signed
    /// (the service issued none when it was verified). It is read, never signed here: a
    /// receipt signed from the table would vouch for whatever a table writer put there.
    pub async fn receipt(&self, owner: &str, id: UploadId) -> Result<Option<String>, Error> {
        let record = self.get(owner, id).await?;
        if record.status() != Status::Verified {
            return Err(Conflict::NotVerified {
                status: record.status(),
            }
            .into());
        }
        Ok(record.receipt().map(str::to_owned))
    }

    /// The receipt of the verdict `verified` about to be written for `record` over `info`:
    /// signed by the process that hashed the bytes, from what it computed, before the verdict
    /// is stored (`None` when this service issues no receipts). A signer that fails (KMS) is an
    /// upstream fault like any other: no verdict is written, the completion is retried.
    pub(super) async fn sign_verdict(
        &self,
        record: &UploadRecord,
        sha256: Sha256,
        info: &ObjectInfo,
        verified_at: &str,
    ) -> Result<Option<String>, PortError> {
        let Some(receipts) = &self.receipts else {
            return Ok(None);
        };
        let verdict = UploadRecord {
            state: State::Verified(Verified {
                sha256,
                object: ObjectVersion {
                    etag: info.etag.clone(),
                    version_id: info.version_id.clone(),
                },
                verified_at: verified_at.to_owned(),
                bytes: info.size,
                announced: false,
                receipt: None,
            }),
            // The bucket this process read the bytes from, not the one the table names.
            bucket: self.objects.bucket().to_owned(),
            ..record.clone()
        };
        receipts.issue(&verdict).await
    }

    /// `progress`, paused on `info`, sealed by this process (which hashed those bytes) when this
    /// service issues receipts. A signer that fails leaves it unsealed: the next run hashes
    /// again from byte 0, and no verdict can be signed meanwhile anyway.
    pub(super) async fn seal_progress(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        mut progress: Progress,
    ) -> Progress {
        let Some(receipts) = &self.receipts else {
            return progress;
        };
        let sealed = Sealed {
            record,
            etag: &info.etag,
            version_id: info.version_id.as_deref(),
            progress: &progress,
        };
        match receipts.seal(&sealed).await {
            Ok(seal) => progress.seal = Some(seal),
            Err(e) => tracing::warn!(
                hashed = progress.hashed,
                error = chain(&e),
                "progress saved unsealed: the next run hashes from byte 0"
            ),
        }
        progress
    }

    /// The saved `progress` of `record` to continue from: `None` (hash from byte 0) when this
    /// service issues receipts and its seal is missing or not this upload's, version's and
    /// count's, so a receipt never signs a digest that rests on a state someone wrote into the
    /// table. Keys that cannot be read are an upstream fault: the lease is released.
    pub(super) async fn unsealed(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        progress: &Progress,
    ) -> Result<Option<Progress>, Error> {
        let Some(receipts) = &self.receipts else {
            return Ok(Some(progress.clone()));
        };
        // Bound to the object this run reads, as it was sealed over the object that run read.
        let sealed = Sealed {
            record,
            etag: &info.etag,
            version_id: info.version_id.as_deref(),
            progress,
        };
        match receipts.is_sealed(&sealed).await {
            Ok(true) => Ok(Some(progress.clone())),
            Ok(false) => {
                tracing::warn!(
                    hashed = progress.hashed,
                    "saved progress without this process's seal: hashing again from byte 0"
                );
                Ok(None)
            }
            Err(e) => {
                let err = Error::from(e);
                self.release(record, &err).await;
                Err(err)
            }
        }
    }

    /// The published keys: none when this service issues no receipts.
    pub async fn jwks(&self) -> Result<Jwks, Error> {
        match &self.receipts {
            Some(receipts) => Ok(receipts.jwks().await?),
            None => Ok(Jwks::default()),
        }
    }
}
