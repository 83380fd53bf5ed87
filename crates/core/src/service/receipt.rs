//! `GET /uploads/{id}/receipt` and `GET /.well-known/jwks.json`: a verified upload's signed
//! receipt, and the keys anyone checks it with.

use std::sync::Arc;

use vu_contract::receipt::Jwks;

use super::Uploads;
use crate::domain::UploadId;
use crate::error::{Conflict, Error};
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

    /// The receipt of `owner`'s upload `id`: `None` when this service issues none; a
    /// `NotVerified` conflict unless it is `verified` (in flight: wait; failed: never).
    pub async fn receipt(&self, owner: &str, id: UploadId) -> Result<Option<String>, Error> {
        let record = self.get(owner, id).await?;
        let Some(receipts) = &self.receipts else {
            return Ok(None);
        };
        match receipts.issue(&record).await? {
            Some(receipt) => Ok(Some(receipt)),
            None => Err(Conflict::NotVerified {
                status: record.status(),
            }
            .into()),
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
