//! Streams an object back from S3 through SHA-256 in constant memory.
//!
//! A pipeline: up to `concurrency` ranged GETs are fetched ahead (network-bound), and are
//! handed in order, through a queue of `prefetch` ranges, to one thread outside the tokio workers
//! that hashes them (CPU-bound). The GETs are read on while the queue is full, so neither stage
//! waits on the other while there is room. Memory is bounded by
//! `(concurrency + prefetch + 1) × range_bytes` whatever the object's size. A run can stop at a
//! deadline and hand back its progress (bytes hashed and the serialized SHA-256 state), from
//! which a later run continues: an object of any size verifies across as many invocations as it
//! takes.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;
use tokio::sync::mpsc;

pub use crate::domain::Progress;
use crate::domain::Sha256;
use crate::ports::{ObjectInfo, ObjectStore, Pin, PortError};
use crate::settings::VerifyConfig;

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

    let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(cfg.prefetch.max(1));
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

    let fetch = |at, len| store.get_range(key, at, len, pin);
    let fed = fetch_in_order(ranges, cfg.concurrency.max(1), fetch, &tx, deadline).await;
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
        // Sealed by the service, which knows the upload and the version.
        seal: None,
    }))
}

/// Fetches `ranges` (`(start, len)`, in order) with `fetch`, and hands each one's chunks to `tx`
/// strictly in order. At most `ahead` ranges are fetched and not yet handed over (in flight, or
/// arrived before an earlier one); the GETs in flight are polled while `tx` is full, so a
/// connection is drained as its bytes arrive, never held up by the hasher. Stops after the range
/// handed over once `deadline` passes, at the first failed range (its error), or when `tx`'s
/// receiver is gone; dropping the GETs still in flight cancels them.
async fn fetch_in_order<F, Fut>(
    ranges: impl Iterator<Item = (u64, u64)>,
    ahead: usize,
    fetch: F,
    tx: &mpsc::Sender<Vec<Bytes>>,
    deadline: Option<Instant>,
) -> Result<(), PortError>
where
    F: Fn(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<Bytes>, PortError>>,
{
    let mut ranges = ranges.enumerate();
    let mut in_flight = FuturesUnordered::new();
    let mut arrived: BTreeMap<usize, Vec<Bytes>> = BTreeMap::new();
    // Index of the next range to hand over; every range before `started` has been started.
    let (mut next, mut started) = (0usize, 0usize);
    loop {
        while started - next < ahead {
            let Some((i, (at, len))) = ranges.next() else {
                break;
            };
            in_flight.push(fetch(at, len).map(move |r| (i, r)));
            started = i + 1;
        }
        let head_arrived = arrived.contains_key(&next);
        if !head_arrived && in_flight.is_empty() {
            return Ok(());
        }
        tokio::select! {
            // Handing over first keeps the hasher busy; the GETs are polled meanwhile.
            biased;
            room = tx.reserve(), if head_arrived => {
                let Ok(room) = room else {
                    return Ok(());
                };
                if let Some(chunks) = arrived.remove(&next) {
                    room.send(chunks);
                }
                next += 1;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
            }
            Some((i, got)) = in_flight.next(), if !in_flight.is_empty() => {
                arrived.insert(i, got?);
            }
            // Unreachable (one branch is always enabled); stopping early only pauses the run.
            else => return Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use sha2::Digest as _;
    use sha2::digest::common::hazmat::SerializableState;

    use super::*;
    use crate::ports::Upstream;

    /// `n` one-byte ranges: range `i` starts at `i` and holds the byte `i`.
    fn one_byte_ranges(n: u64) -> impl Iterator<Item = (u64, u64)> {
        (0..n).map(|i| (i, 1))
    }

    fn byte_of(chunks: &[Bytes]) -> u8 {
        assert_eq!(chunks.len(), 1);
        chunks[0][0]
    }

    #[tokio::test]
    async fn ranges_arriving_out_of_order_are_handed_over_in_order() {
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(1);
        // Later ranges often arrive first.
        let fetch = |at: u64, _| async move {
            tokio::time::sleep(Duration::from_millis((at * 7) % 5)).await;
            Ok(vec![Bytes::from(vec![at as u8])])
        };
        let (fed, got) = tokio::join!(
            fetch_in_order(one_byte_ranges(40), 6, fetch, &tx, None),
            async {
                let mut got = Vec::new();
                for _ in 0..40 {
                    got.push(byte_of(&rx.recv().await.unwrap()));
                }
                got
            }
        );
        fed.unwrap();
        assert_eq!(got, (0..40).collect::<Vec<u8>>());
    }

    #[tokio::test]
    async fn the_gets_ahead_are_bounded_and_read_on_while_the_hasher_is_busy() {
        let ahead = 4;
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(1);
        let (started, finished, taken) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let most_held = AtomicUsize::new(0);
        let fetch = |at: u64, _| {
            started.fetch_add(1, SeqCst);
            // Ranges held: started and not yet taken by the hasher.
            most_held.fetch_max(started.load(SeqCst) - taken.load(SeqCst), SeqCst);
            let finished = &finished;
            async move {
                tokio::task::yield_now().await;
                finished.fetch_add(1, SeqCst);
                Ok(vec![Bytes::from(vec![at as u8])])
            }
        };
        let hasher = async {
            // Busy at first: nothing is taken, yet the GETs ahead are read to their end.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                started.load(SeqCst),
                1 + ahead,
                "one queued, `ahead` fetched ahead"
            );
            assert_eq!(
                finished.load(SeqCst),
                1 + ahead,
                "read on while the queue was full"
            );
            for i in 0..30u8 {
                let chunks = rx.recv().await.unwrap();
                taken.fetch_add(1, SeqCst);
                assert_eq!(byte_of(&chunks), i);
                if i % 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        let (fed, ()) = tokio::join!(
            fetch_in_order(one_byte_ranges(30), ahead, fetch, &tx, None),
            hasher
        );
        fed.unwrap();
        assert_eq!(started.load(SeqCst), 30);
        // Never more than `ahead` fetched ahead of the hand-over, plus the one queued.
        assert_eq!(most_held.load(SeqCst), ahead + 1);
    }

    #[tokio::test]
    async fn a_failed_range_mid_way_stops_the_pipeline_with_its_error() {
        let ahead = 3;
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(1);
        let started = AtomicUsize::new(0);
        let fetch = |at: u64, _| {
            started.fetch_add(1, SeqCst);
            async move {
                tokio::task::yield_now().await;
                if at == 7 {
                    return Err(PortError::unavailable(Upstream::S3, "range 7 broke"));
                }
                Ok(vec![Bytes::from(vec![at as u8])])
            }
        };
        let fed = tokio::time::timeout(Duration::from_secs(5), async {
            let (fed, got) = tokio::join!(
                async {
                    let fed = fetch_in_order(one_byte_ranges(100), ahead, fetch, &tx, None).await;
                    drop(tx);
                    fed
                },
                async {
                    let mut got = Vec::new();
                    while let Some(chunks) = rx.recv().await {
                        got.push(byte_of(&chunks));
                    }
                    got
                }
            );
            // Only ranges before the broken one, in order, reached the hasher.
            assert!(
                got.iter().copied().eq(0..u8::try_from(got.len()).unwrap()),
                "{got:?}"
            );
            assert!(got.len() <= 7, "{got:?}");
            fed
        })
        .await
        .expect("the pipeline stopped");
        assert!(matches!(fed, Err(PortError::Unavailable { .. })), "{fed:?}");
        assert!(
            started.load(SeqCst) <= 7 + 1 + ahead,
            "{}",
            started.load(SeqCst)
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_hands_over_one_range_then_stops() {
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(4);
        let fetch = |at: u64, _| async move { Ok(vec![Bytes::from(vec![at as u8])]) };
        let past = Some(Instant::now());
        fetch_in_order(one_byte_ranges(10), 4, fetch, &tx, past)
            .await
            .unwrap();
        drop(tx);
        assert_eq!(byte_of(&rx.recv().await.unwrap()), 0);
        assert!(rx.recv().await.is_none());
    }

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
            seal: None,
        };
        assert!(resume_from(Some(&honest), 200).is_ok());
        for (hashed, state) in [(164, state.clone()), (36, state), (100, vec![0u8; 105])] {
            let lying = Progress {
                hashed,
                state,
                seal: None,
            };
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
