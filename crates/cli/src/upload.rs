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

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use sha2::Digest as _;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Error;
use super::api::{Api, ApiError, Completion, HeldPart, Record, backoff, network};
use super::progress::{FileProgress, Progress};
use super::state::{Fingerprint, Saved, StateDir};
use vu_contract::{PartPlan, Sha256, Status};

/// Attempts per part (the first included), each with a fresh signature.
const PART_ATTEMPTS: u32 = 5;
/// How often a `verifying` record is polled.
const POLL: Duration = Duration::from_secs(1);
/// How often a record stuck in `completing` is completed again. Another completion holds it
/// (perhaps one whose client was interrupted, and whose local server dropped it): the service
/// answers 202 with the record (older releases: 409) while that completion's lease runs, and
/// takes it over once the lease ends.
const RECLAIM: Duration = Duration::from_secs(30);

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

/// The session a re-run found.
enum Resumed {
    Pending {
        saved: Saved,
        held: HashMap<u64, HeldPart>,
        expected_on_record: bool,
    },
    /// Completed already (or being completed): the record, and this file's digest.
    Settled(Box<Record>, Sha256),
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
        let digest = self.send_parts(f.path.clone(), &saved, held, bar).await?;
        bar.message("verifying");
        // Declared here unless the session already holds the digest the file must have.
        let declared = (!expected_on_record).then(|| digest.to_hex());
        let record = match api.complete(&saved.upload_id, declared.as_deref()).await? {
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

    /// What became of the session this file started: still open (with the parts S3 holds),
    /// settled, or gone (`None`: start over).
    async fn resume(
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

    async fn create(&self, path: &Path, f: &Fingerprint) -> Result<Saved, Error> {
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
    async fn settle(
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
                match self.api.complete(&record.upload_id, declared).await {
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

    /// Sends every part S3 does not hold; the whole file's SHA-256.
    async fn send_parts(
        &self,
        path: PathBuf,
        saved: &Saved,
        held: HashMap<u64, HeldPart>,
        bar: &Arc<FileProgress>,
    ) -> Result<Sha256, Error> {
        let (tx, mut rx) = mpsc::channel::<(u64, Bytes)>(1);
        // The plan the API gave, in the contract's arithmetic (the same the service signs with).
        let plan = PartPlan::stored(saved.size, saved.part_size)
            .ok()
            .filter(|p| p.part_count() == saved.part_count)
            .ok_or_else(|| {
                Error::Input(format!(
                    "the API's part plan ({} bytes in {} parts of {}) does not add up",
                    saved.size, saved.part_count, saved.part_size
                ))
            })?;
        let reader = tokio::task::spawn_blocking(move || read_parts(&path, plan, &tx));
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
        let mut failure = None;
        'feed: while let Some((n, bytes)) = rx.recv().await {
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = joined(done) {
                    failure = Some(e);
                    break 'feed;
                }
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let part = Part {
                api: self.api.clone(),
                upload_id: saved.upload_id.clone(),
                number: n,
                bytes,
                held: held.get(&n).cloned(),
                bar: bar.clone(),
            };
            tasks.spawn(async move {
                let _slot = slot;
                part.send().await
            });
        }
        // Stops the reader if the loop ended early.
        drop(rx);
        if failure.is_none() {
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = joined(done) {
                    failure = Some(e);
                    break;
                }
            }
        }
        tasks.abort_all();
        let whole = reader
            .await
            .map_err(|e| Error::Input(format!("reading the file failed: {e}")))?;
        match failure {
            Some(e) => Err(e),
            None => whole,
        }
    }
}

fn joined(r: Result<Result<(), Error>, tokio::task::JoinError>) -> Result<(), Error> {
    r.map_err(|e| Error::Input(format!("a part upload stopped: {e}")))?
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

/// Reads the file once, in order: feeds the whole-file SHA-256 and hands each part over.
fn read_parts(
    path: &Path,
    plan: PartPlan,
    tx: &mpsc::Sender<(u64, Bytes)>,
) -> Result<Sha256, Error> {
    let shown = path.display();
    let changed = || {
        Error::Input(format!(
            "{shown} changed while it was being read; run again"
        ))
    };
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let mut whole = sha2::Sha256::new();
    for n in plan.parts() {
        let len = usize::try_from(plan.part_len(n))
            .map_err(|_| Error::Input("part size too large for this machine".into()))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                changed()
            } else {
                Error::io(format!("cannot read {shown}"), e)
            }
        })?;
        whole.update(&buf);
        if tx
            .blocking_send((u64::from(n.get()), Bytes::from(buf)))
            .is_err()
        {
            return Err(Error::Input("stopped".into()));
        }
    }
    let mut more = [0u8; 1];
    if file
        .read(&mut more)
        .map_err(|e| Error::io(format!("cannot read {shown}"), e))?
        > 0
    {
        return Err(changed());
    }
    Ok(Sha256::from_bytes(whole.finalize().into()))
}

/// One part on its way to S3.
struct Part {
    api: Api,
    upload_id: String,
    number: u64,
    bytes: Bytes,
    held: Option<HeldPart>,
    bar: Arc<FileProgress>,
}

impl Part {
    async fn send(self) -> Result<(), Error> {
        let n = self.number;
        let size = self.bytes.len() as u64;
        let body = self.bytes.clone();
        let digest = tokio::task::spawn_blocking(move || Sha256::of(&body))
            .await
            .map_err(|e| Error::Input(format!("hashing part {n} stopped: {e}")))?
            .to_base64();
        if let Some(h) = &self.held {
            let other_checksum = h.checksum_sha256.as_ref().is_some_and(|c| *c != digest);
            if h.size != size || other_checksum {
                return Err(Error::Input(format!(
                    "part {n} in S3 is not this file's ({} bytes held, {size} here{}); \
                     run with --abort to drop the interrupted upload",
                    h.size,
                    if other_checksum {
                        ", another SHA-256"
                    } else {
                        ""
                    }
                )));
            }
            self.bar.skip(size);
            return Ok(());
        }
        let mut last = String::new();
        for attempt in 0..PART_ATTEMPTS {
            if attempt > 0 {
                tracing::debug!(part = n, attempt, error = %last, "retrying part");
                tokio::time::sleep(backoff(attempt)).await;
            }
            // Signed per attempt: an expired URL (403) gets a fresh one.
            let signed = self.api.sign(&self.upload_id, n, &digest).await?;
            let mut req = self.api.http().put(&signed.url).body(self.bytes.clone());
            for (k, v) in &signed.headers {
                if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
                    req = req.header(k, v);
                }
            }
            match req.send().await {
                Ok(res) if res.status().is_success() => {
                    self.bar.add(size);
                    return Ok(());
                }
                Ok(res) => {
                    let status = res.status().as_u16();
                    let text = res.text().await.unwrap_or_default();
                    if status == 400
                        && (text.contains("BadDigest") || text.contains("InvalidDigest"))
                    {
                        return Err(Error::Input(format!(
                            "S3 refused part {n}: its SHA-256 does not match (the file changed while uploading)"
                        )));
                    }
                    last = format!("S3 answered {status} for part {n}");
                }
                Err(e) => last = network(&format!("PUT part {n}"), &e).to_string(),
            }
        }
        Err(ApiError::Network(format!("{last} (gave up after {PART_ATTEMPTS} attempts)")).into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(size: u64, part_size: u64) -> PartPlan {
        PartPlan::stored(size, part_size).unwrap()
    }

    #[tokio::test]
    async fn the_reader_hashes_the_whole_file_and_hands_over_every_part() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let data: Vec<u8> = (0..12_345u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let digest =
            tokio::task::spawn_blocking(move || read_parts(&file, plan(12_345, 5000), &tx))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(digest, Sha256::of(&data));
        let mut joined = Vec::new();
        while let Some((_, b)) = rx.recv().await {
            joined.extend_from_slice(&b);
        }
        assert_eq!(joined, data);
    }

    #[tokio::test]
    async fn a_file_that_grew_since_it_was_measured_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![1u8; 101]).unwrap();
        let (tx, _rx) = mpsc::channel(100);
        let r = tokio::task::spawn_blocking(move || read_parts(&file, plan(100, 50), &tx))
            .await
            .unwrap();
        assert!(matches!(r, Err(Error::Input(m)) if m.contains("changed")));
    }
}
