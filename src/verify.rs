//! Streams an object back from S3 through SHA-256 in constant memory.
//!
//! Several ranged GETs are in flight at once (network-bound), while one thread outside the
//! tokio workers hashes the ranges strictly in order (CPU-bound). Memory is bounded by
//! `(concurrency + 1) × range_bytes` whatever the object's size. A run can stop at a deadline and
//! hand back its progress (bytes hashed and the serialized SHA-256 state), from which a later run
//! continues: an object of any size verifies across as many invocations as it takes.

use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

use crate::config::VerifyConfig;
pub use crate::domain::Progress;
use crate::domain::Sha256;
use crate::ports::{ObjectStore, PortError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hashed {
    Done(Sha256),
    /// The deadline came first.
    Paused(Progress),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the object failed; `PreconditionFailed` when its ETag changed mid-way.
    #[error(transparent)]
    Read(#[from] PortError),
    /// The saved progress cannot be continued from; only a fresh start can verify the object.
    #[error("unusable verification progress: {0}")]
    CorruptProgress(&'static str),
    /// The hashing thread died.
    #[error("hashing failed")]
    Hasher(#[source] tokio::task::JoinError),
}

/// The byte to continue from and the hasher holding everything before it.
fn resume_from(resume: Option<&Progress>, size: u64) -> Result<(u64, sha2::Sha256), VerifyError> {
    let corrupt = VerifyError::CorruptProgress;
    let Some(p) = resume else {
        return Ok((0, sha2::Sha256::new()));
    };
    if p.hashed > size {
        return Err(corrupt("more bytes than the object holds"));
    }
    let state = p
        .state
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("state length"))?;
    let h = sha2::Sha256::deserialize(state).map_err(|_| corrupt("state"))?;
    Ok((p.hashed, h))
}

/// Continues (or starts) hashing `size` bytes of `key`, refusing (`PreconditionFailed`) to mix
/// two objects if the object's ETag stops being `etag` mid-way. Stops after the range in flight
/// once `deadline` passes, so every run makes progress.
pub async fn sha256_object(
    store: &dyn ObjectStore,
    key: &str,
    size: u64,
    etag: &str,
    cfg: VerifyConfig,
    resume: Option<&Progress>,
    deadline: Option<Instant>,
) -> Result<Hashed, VerifyError> {
    let (start, hasher) = resume_from(resume, size)?;
    let range = cfg.range_bytes.max(1);
    let ranges = (0..(size - start).div_ceil(range)).map(move |i| {
        let at = start + i * range;
        (at, range.min(size - at))
    });

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(1);
    let hashing = tokio::task::spawn_blocking(move || {
        let mut h = hasher;
        let mut hashed = 0u64;
        while let Some(chunks) = rx.blocking_recv() {
            for c in chunks {
                hashed += c.len() as u64;
                h.update(&c);
            }
        }
        (h, hashed)
    });

    let mut fetched = stream::iter(ranges)
        .map(|(at, len)| store.get_range(key, at, len, etag))
        .buffered(cfg.concurrency.max(1));
    let fed = async {
        while let Some(chunks) = fetched.try_next().await? {
            if tx.send(chunks).await.is_err() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Ok::<_, PortError>(())
    }
    .await;
    drop(fetched);
    drop(tx);
    let joined = hashing.await;
    fed?;
    let (h, hashed) = joined.map_err(VerifyError::Hasher)?;
    let total = start + hashed;
    if total == size {
        return Ok(Hashed::Done(Sha256::from_bytes(h.finalize().into())));
    }
    Ok(Hashed::Paused(Progress {
        hashed: total,
        state: h.serialize().to_vec(),
    }))
}
