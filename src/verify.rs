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
use crate::ports::{ObjectInfo, ObjectStore, Pin, PortError};

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

/// How many bytes a serialized SHA-256 state has taken in: sha2 0.11 writes the eight state
/// words (32 bytes), the count of whole 64-byte blocks (u64, little-endian), then the buffered
/// tail's length (one byte) and the tail (`serialized_state_counts_the_bytes_it_took` pins this).
fn state_count(state: &[u8]) -> Option<u64> {
    let blocks = u64::from_le_bytes(state.get(32..40)?.try_into().ok()?);
    let buffered = u64::from(*state.get(40)?);
    blocks.checked_mul(64)?.checked_add(buffered)
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
    if state_count(&p.state) != Some(p.hashed) {
        return Err(corrupt("the byte count differs from the state's own"));
    }
    let state = p
        .state
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("state length"))?;
    let h = sha2::Sha256::deserialize(state).map_err(|_| corrupt("state"))?;
    Ok((p.hashed, h))
}

/// Continues (or starts) hashing `object` (a version of `key`), every read pinned to its version
/// and ETag: never two objects mixed (`PreconditionFailed` if the ETag stops matching). Stops
/// after the range in flight once `deadline` passes, so every run makes progress.
pub async fn sha256_object(
    store: &dyn ObjectStore,
    key: &str,
    object: &ObjectInfo,
    cfg: VerifyConfig,
    resume: Option<&Progress>,
    deadline: Option<Instant>,
) -> Result<Hashed, VerifyError> {
    let size = object.size;
    let pin = Pin {
        etag: &object.etag,
        version_id: object.version_id.as_deref(),
    };
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
        .map(|(at, len)| store.get_range(key, at, len, pin))
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

#[cfg(test)]
mod tests {
    use sha2::Digest as _;
    use sha2::digest::common::hazmat::SerializableState;

    use super::*;

    #[test]
    fn serialized_state_counts_the_bytes_it_took() {
        for len in [0usize, 1, 63, 64, 65, 1000, 4096 + 17] {
            let mut h = sha2::Sha256::new();
            h.update(vec![7u8; len]);
            assert_eq!(state_count(&h.serialize()), Some(len as u64), "{len}");
        }
        assert_eq!(state_count(&[0u8; 10]), None);
    }

    #[test]
    fn progress_whose_count_disagrees_with_its_state_is_refused() {
        let mut h = sha2::Sha256::new();
        h.update([1u8; 100]);
        let state = h.serialize().to_vec();
        let honest = Progress {
            hashed: 100,
            state: state.clone(),
        };
        assert!(resume_from(Some(&honest), 200).is_ok());
        for (hashed, state) in [(164, state.clone()), (36, state), (100, vec![0u8; 105])] {
            let lying = Progress { hashed, state };
            assert!(
                matches!(
                    resume_from(Some(&lying), 200),
                    Err(VerifyError::CorruptProgress(_))
                ),
                "{}",
                lying.hashed
            );
        }
    }
}
