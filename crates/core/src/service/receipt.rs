//! `GET /uploads/{id}/receipt` and `GET /.well-known/jwks.json`: a verified upload's signed
//! receipt, and the keys anyone checks it with.

use std::sync::Arc;

use vu_contract::receipt::Jwks;

use super::Uploads;
use crate::domain::{ObjectVersion, Sha256, State, Status, UploadId, UploadRecord, Verified};
use crate::error::{Conflict, Error};
use crate::ports::{ObjectInfo, PortError};
use crate::receipt::Receipts;

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
            ..record.clone()
        };
        receipts.issue(&verdict).await
    }

    /// The published keys: none when this service issues no receipts.
    pub async fn jwks(&self) -> Result<Jwks, Error> {
        match &self.receipts {
            Some(receipts) => Ok(receipts.jwks().await?),
            None => Ok(Jwks::default()),
        }
    }
}
