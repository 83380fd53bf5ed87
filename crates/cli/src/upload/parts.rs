//! The parts of one file: read once, in order, and each PUT to its signed URL, at most
//! `concurrency` at a time.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Uploader;
use crate::Error;
use crate::api::{Api, ApiError, HeldPart, backoff, network};
use crate::progress::FileProgress;
use crate::state::Saved;
use vu_contract::{BLOCK, Chain, PartPlan, PartStates, Sha256};

/// Attempts per part (the first included), each with a fresh signature.
const PART_ATTEMPTS: u32 = 5;

impl Uploader<'_> {
    /// Sends every part S3 does not hold; the whole file's SHA-256 and its chaining values at
    /// the part boundaries.
    pub(super) async fn send_parts(
        &self,
        path: PathBuf,
        saved: &Saved,
        held: HashMap<u64, HeldPart>,
        bar: &Arc<FileProgress>,
    ) -> Result<Hashed, Error> {
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

/// What reading the file once gave: its SHA-256, and the chaining value after each part but
/// the last (none when the part size is not whole 64-byte blocks), which let the service verify
/// the parts in parallel.
#[derive(Debug)]
pub(super) struct Hashed {
    pub digest: Sha256,
    pub states: PartStates,
}

/// Reads the file once, in order: feeds the whole-file SHA-256 (noting its chaining value at
/// each part boundary) and hands each part over.
fn read_parts(
    path: &Path,
    plan: PartPlan,
    tx: &mpsc::Sender<(u64, Bytes)>,
) -> Result<Hashed, Error> {
    let shown = path.display();
    let changed = || {
        Error::Input(format!(
            "{shown} changed while it was being read; run again"
        ))
    };
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let mut whole = Chain::new();
    let mut states = PartStates::default();
    let whole_blocks = plan.part_size().is_multiple_of(BLOCK);
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
        if whole_blocks
            && u64::from(n.get()) < plan.part_count()
            && let Some(state) = whole.state()
        {
            states.insert(n.get(), state);
        }
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
    Ok(Hashed {
        digest: whole.finish(),
        states,
    })
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
        let hashed =
            tokio::task::spawn_blocking(move || read_parts(&file, plan(12_345, 5056), &tx))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(hashed.digest, Sha256::of(&data));
        // Parts of 5056 bytes (79 blocks): a state after parts 1 and 2, none after the last.
        let states: Vec<_> = hashed.states.iter().collect();
        assert_eq!(states.len(), 2);
        for (n, state) in states {
            let mut c = Chain::new();
            c.update(&data[..usize::from(n) * 5056]);
            assert_eq!(c.state(), Some(state), "part {n}");
        }
        let mut joined = Vec::new();
        while let Some((_, b)) = rx.recv().await {
            joined.extend_from_slice(&b);
        }
        assert_eq!(joined, data);
    }

    #[tokio::test]
    async fn parts_that_are_not_whole_blocks_declare_no_states() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![3u8; 12_345]).unwrap();
        let (tx, _rx) = mpsc::channel(100);
        let hashed =
            tokio::task::spawn_blocking(move || read_parts(&file, plan(12_345, 5000), &tx))
                .await
                .unwrap()
                .unwrap();
        assert!(hashed.states.is_empty());
        assert_eq!(hashed.digest, Sha256::of(&[3u8; 12_345]));
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
