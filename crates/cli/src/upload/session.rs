//! The session of one file: created (and saved before any part is sent), resumed from what a
//! re-run finds, and polled until the service settles it.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sha2::Digest as _;

use super::{Uploader, display_name};
use crate::Error;
use crate::api::{ApiError, Completion, HeldPart, Record};
use crate::progress::FileProgress;
use crate::state::{Fingerprint, Saved};
use vu_contract::{Sha256, Status};

/// How often a `verifying` record is polled.
const POLL: Duration = Duration::from_secs(1);
/// How often a record stuck in `completing` is completed again. Another completion holds it
/// (perhaps one whose client was interrupted, and whose local server dropped it): the service
/// answers 202 with the record (older releases: 409) while that completion's lease runs, and
/// takes it over once the lease ends.
const RECLAIM: Duration = Duration::from_secs(30);

/// The session a re-run found.
pub(super) enum Resumed {
    Pending {
        saved: Saved,
        held: HashMap<u64, HeldPart>,
        expected_on_record: bool,
    },
    /// Completed already (or being completed): the record, and this file's digest.
    Settled(Box<Record>, Sha256),
}

impl Uploader<'_> {
    /// What became of the session this file started: still open (with the parts S3 holds),
    /// settled, or gone (`None`: start over).
    pub(super) async fn resume(
        &self,
        saved: Saved,
        f: &Fingerprint,
        bar: &FileProgress,
    ) -> Result<Option<Resumed>, Error> {
        let id = saved.upload_id.clone();
        match self.api.record(&id).await {
            Ok(r) if r.status == Status::Pending => {
                let held = self.api.held_parts(&id).await?;
                Ok(Some(Resumed::Pending {
                    expected_on_record: r.expected_sha256.is_some(),
                    held: held.into_iter().map(|p| (p.part_number, p)).collect(),
                    saved,
                }))
            }
            // Completed by an earlier run (or being completed): this file's digest, read here,
            // is what the verdict is compared with.
            Ok(r) if r.unsettled() || matches!(r.status, Status::Verified | Status::Failed) => {
                bar.message("completed by an earlier run: reading this file's SHA-256");
                let digest = hash_file(f.path.clone()).await?;
                let declared = r.expected_sha256.is_none().then(|| digest.to_hex());
                let record = self.settle(r, declared.as_deref(), bar).await?;
                Ok(Some(Resumed::Settled(Box::new(record), digest)))
            }
            // Aborted, expired or unknown: start over.
            Ok(_) | Err(ApiError::Problem { status: 404, .. }) => {
                tracing::info!(upload_id = %id, "saved session is gone; starting over");
                self.state.remove(self.api.base(), f);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn create(&self, path: &Path, f: &Fingerprint) -> Result<Saved, Error> {
        let o = self.options;
        let mut body = json!({
            "filename": display_name(path),
            "size": f.size,
            "part_checksums": true,
        });
        if let Some(d) = o.expected {
            body["sha256"] = json!(d.to_hex());
        }
        if let Some(p) = o.part_size {
            body["part_size"] = json!(p);
        }
        if let Some(t) = &o.content_type {
            body["content_type"] = json!(t);
        }
        let created = self.api.create(&body).await?;
        let saved = Saved {
            upload_id: created.upload_id,
            api: self.api.base().to_owned(),
            path: f.path.display().to_string(),
            size: f.size,
            part_size: created.part_size,
            part_count: created.part_count,
        };
        self.state.save(f, &saved)?;
        tracing::info!(upload_id = %saved.upload_id, parts = saved.part_count, "created");
        Ok(saved)
    }

    /// Polls a `completing`/`verifying` record until it settles; one stuck in `completing` is
    /// completed again every `RECLAIM`, declaring `declared` (hex) when given.
    pub(super) async fn settle(
        &self,
        mut record: Record,
        declared: Option<&str>,
        bar: &FileProgress,
    ) -> Result<Record, Error> {
        let mut claimed = std::time::Instant::now();
        while record.unsettled() {
            bar.message(&format!(
                "{}: {} bytes checked",
                record.status, record.verified_bytes
            ));
            tokio::time::sleep(POLL).await;
            if record.status == Status::Completing && claimed.elapsed() >= RECLAIM {
                claimed = std::time::Instant::now();
                // The states went with the first `complete`; the session's claim keeps them.
                let none = vu_contract::PartStates::default();
                match self.api.complete(&record.upload_id, declared, &none).await {
                    Ok(Completion::Settled(r)) => return Ok(r),
                    Ok(Completion::Verifying(r)) => {
                        record = r;
                        continue;
                    }
                    // Still held by the other completion.
                    Err(ApiError::Problem { status: 409, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            record = self.api.record(&record.upload_id).await?;
        }
        Ok(record)
    }
}

/// The SHA-256 of the file at `path`, read in 1 MiB blocks off the runtime.
async fn hash_file(path: PathBuf) -> Result<Sha256, Error> {
    tokio::task::spawn_blocking(move || {
        let shown = path.display();
        let mut file =
            std::fs::File::open(&path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
            if n == 0 {
                return Ok(Sha256::from_bytes(h.finalize().into()));
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| Error::Input(format!("hashing the file stopped: {e}")))?
}
