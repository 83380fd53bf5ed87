//! The upload of one file: reads it once, in order, on a blocking thread that feeds the
//! whole-file SHA-256 and hands each part over; each part's own SHA-256 is signed into its URL
//! (S3 refuses a body that does not match) and the part is PUT, at most `concurrency` at a time,
//! with a fresh signature per attempt (an expired URL is simply signed again). Memory stays
//! within about `(concurrency + 2) × part size`: the parts in flight, one waiting in the
//! hand-over, one being read.
//!
//! Resuming: the session is saved (`state`) before any part is sent; a re-run of the same
//! unchanged file asks S3 which parts it holds and sends only the others, after checking that
//! each held part has this file's size (and SHA-256, where S3 lists it), as the upload page does.
//!
//! Here the run of one file; `session`: the session created, or resumed, and settled; `parts`:
//! the file read once and its parts sent.

mod parts;
mod session;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::Error;
use super::api::{Api, ApiError, Completion, Record};
use super::progress::{FileProgress, Progress};
use super::state::{Fingerprint, StateDir};
use session::Resumed;
use vu_contract::Sha256;

#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    /// Bytes per part; the service's default when `None`.
    pub part_size: Option<u64>,
    /// The digest the file must have, declared at creation.
    pub expected: Option<Sha256>,
    pub content_type: Option<String>,
}

/// How one file's upload ended.
#[derive(Debug)]
pub enum Outcome {
    /// The service's verdict (`verified` or `failed`); `computed` is the digest read here
    /// (`None` when a re-run found the upload already settled).
    Settled {
        record: Box<Record>,
        computed: Option<Sha256>,
        resumed_parts: u64,
    },
    /// `--abort`: the interrupted upload was aborted.
    Aborted { upload_id: String },
}

pub struct Uploader<'a> {
    pub api: &'a Api,
    pub state: &'a StateDir,
    pub progress: &'a Progress,
    pub options: &'a Options,
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl Uploader<'_> {
    /// Uploads `path` (resuming its interrupted upload, if any) and waits for the verdict.
    pub async fn upload(&self, path: &Path) -> Result<Outcome, Error> {
        let f = Fingerprint::of(path)?;
        let bar = Arc::new(self.progress.file(&display_name(path), f.size));
        let result = self.run(path, &f, &bar).await;
        bar.finish();
        result
    }

    /// Aborts the interrupted upload of `path` and forgets it.
    pub async fn abort(&self, path: &Path) -> Result<Outcome, Error> {
        let f = Fingerprint::of(path)?;
        let Some(saved) = self.state.load(self.api.base(), &f) else {
            return Err(Error::Input(format!(
                "{}: no interrupted upload of this file to abort",
                path.display()
            )));
        };
        match self.api.abort(&saved.upload_id).await {
            Ok(()) | Err(ApiError::Problem { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.state.remove(self.api.base(), &f);
        Ok(Outcome::Aborted {
            upload_id: saved.upload_id,
        })
    }

    async fn run(
        &self,
        path: &Path,
        f: &Fingerprint,
        bar: &Arc<FileProgress>,
    ) -> Result<Outcome, Error> {
        let api = self.api;
        let resumed = match self.state.load(api.base(), f) {
            Some(saved) => self.resume(saved, f, bar).await?,
            None => None,
        };
        let (saved, held, expected_on_record) = match resumed {
            Some(Resumed::Settled(record, digest)) => {
                self.state.remove(api.base(), f);
                return Ok(Outcome::Settled {
                    record,
                    computed: Some(digest),
                    resumed_parts: 0,
                });
            }
            Some(Resumed::Pending {
                saved,
                held,
                expected_on_record,
            }) => (saved, held, expected_on_record),
            None => (
                self.create(path, f).await?,
                HashMap::new(),
                self.options.expected.is_some(),
            ),
        };
        if held.is_empty() {
            bar.message(&format!("uploading {} parts", saved.part_count));
        } else {
            bar.message(&format!(
                "resuming upload {}: {} of {} parts already in S3",
                saved.upload_id,
                held.len(),
                saved.part_count
            ));
        }
        let resumed_parts = held.len() as u64;
        let parts::Hashed { digest, states } =
            self.send_parts(f.path.clone(), &saved, held, bar).await?;
        bar.message("verifying");
        // Declared here unless the session already holds the digest the file must have.
        let declared = (!expected_on_record).then(|| digest.to_hex());
        let record = match api
            .complete(&saved.upload_id, declared.as_deref(), &states)
            .await?
        {
            Completion::Settled(r) => r,
            Completion::Verifying(r) => self.settle(r, declared.as_deref(), bar).await?,
        };
        self.state.remove(api.base(), f);
        Ok(Outcome::Settled {
            record: Box::new(record),
            computed: Some(digest),
            resumed_parts,
        })
    }
}
