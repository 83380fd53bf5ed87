//! Verification by segments: the object's SHA-256 checked from the client's chaining values
//! (`part_states`), segment by segment and several at once, with the same verdict as one
//! sequential stream.
//!
//! Why it is exact: segment 1 starts from SHA-256's initial state, which is true. If a segment
//! starts from the true state, hashing its bytes gives the true state at its end; when that equals
//! the declared state there, the next segment also starts from the true state. By induction,
//! when every link holds, the last segment (which pads with the whole length) gives the object's
//! SHA-256. Where a link breaks, the declared state after it is false: the segments after it are
//! hashed again from the true state (only those whose declared start is not the true one), so the
//! digest is always the object's own, whatever the client declared. States are claims, never
//! trusted.

use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use std::time::Instant;

use crate::hash::VerifyError;
use crate::ports::{ObjectInfo, ObjectStore, Pin, PortError, Upstream};
use crate::settings::VerifyConfig;
use vu_contract::{Chain, ChainState, PartPlan, PartStates, Sha256};

/// At most this many states are kept with a claim: at most 128 segments, so that fanned out one
/// per verifier function (~75 MB/s each) a 1 TiB object verifies in ~2 minutes, and a 5 TiB one's
/// segments (~40 GiB) each fit in one 15-minute invocation. The record stays a few KB (far
/// from DynamoDB's 400 KB item limit; 10,000 states would be 340 KB even in binary).
pub const MAX_KEPT_STATES: usize = 127;

/// Bytes `[start, end)`: parts `first_part..` of the object, hashed from the declared state
/// before them; `declared_end` is the state declared after them (`None` for the last segment,
/// which ends in the digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub first_part: u16,
    pub start: u64,
    pub end: u64,
    pub declared_start: ChainState,
    pub declared_end: Option<ChainState>,
}

/// What verification by segments found: the object's SHA-256 (always its own), how many
/// independently hashed segments it rests on, and where the declared chain first broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainVerdict {
    pub digest: Sha256,
    pub segments: u32,
    /// The first part of the first segment whose bytes, from the true state before them, do not
    /// give the declared state after them (or, for the last segment, the declared digest). Set
    /// only when the digest is not the expected one: a wrong state with right bytes still
    /// verifies. With a state at every part boundary this is exactly the part to look at.
    pub mismatch_part: Option<u16>,
}

/// The segments `states` cut `plan` into: one per declared boundary, plus the last.
pub fn segments(plan: &PartPlan, states: &PartStates) -> Vec<Segment> {
    let mut out = Vec::with_capacity(states.len() + 1);
    let (mut first_part, mut start, mut declared_start) = (1u16, 0u64, ChainState::INITIAL);
    for (n, state) in states.iter() {
        let end = u64::from(n) * plan.part_size();
        if end <= start || end >= plan.size() {
            continue;
        }
        out.push(Segment {
            first_part,
            start,
            end,
            declared_start,
            declared_end: Some(state),
        });
        (first_part, start, declared_start) = (n + 1, end, state);
    }
    out.push(Segment {
        first_part,
        start,
        end: plan.size(),
        declared_start,
        declared_end: None,
    });
    out
}

/// What the client claimed about the object: its parts, the chaining values between them, and
/// its digest.
#[derive(Debug, Clone, Copy)]
pub struct Claimed<'a> {
    pub plan: &'a PartPlan,
    pub states: &'a PartStates,
    pub expected: Option<Sha256>,
}

/// Hashes `object` by the segments of `states`, up to `cfg.concurrency` at once, every read
/// pinned to its version and ETag; then walks the chain, re-hashing from the true state after a
/// broken link. `None` when `deadline` passed first (the caller verifies sequentially instead).
pub async fn verify_by_segments(
    store: &dyn ObjectStore,
    key: &str,
    object: &ObjectInfo,
    claimed: Claimed<'_>,
    cfg: VerifyConfig,
    deadline: Option<Instant>,
) -> Result<Option<ChainVerdict>, VerifyError> {
    let segs = segments(claimed.plan, claimed.states);
    let span = |s: &Segment, from: ChainState| {
        // Boxed as `Send`: the futures are polled together from a stream.
        hash_span(store, key, object, cfg, s.start, s.end, from, deadline).boxed()
    };
    let started: Vec<_> = segs.iter().map(|s| span(s, s.declared_start)).collect();
    let hashed: Vec<Option<Chain>> = futures::stream::iter(started)
        .buffered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut ends = Vec::with_capacity(segs.len());
    for (seg, chain) in segs.iter().zip(hashed) {
        match chain {
            Some(chain) => ends.push(end_of(seg, chain)?),
            None => return Ok(None),
        }
    }
    walk(&segs, &ends, claimed.expected, span).await
}

/// The 32 bytes a segment hashed from its declared start ends in: the chaining value after it
/// (a part boundary, whole blocks), or, for the last segment, the digest (padded with the whole
/// length). What a fanned-out segment records.
pub fn end_of(seg: &Segment, chain: Chain) -> Result<[u8; 32], VerifyError> {
    match seg.declared_end {
        None => Ok(chain.finish().to_bytes()),
        Some(_) => chain
            .state()
            .map(ChainState::to_bytes)
            .ok_or(VerifyError::CorruptProgress(
                "a segment ended mid-block: the part size is not whole blocks",
            )),
    }
}

/// Walks the chain over every segment's end (`ends[i]`: what segment `i` gave from its declared
/// start, `end_of`): where a segment's declared start is not the true state, it is hashed
/// again from the true one (`rehash`), so the digest is the object's whatever was declared.
/// One walk for segments hashed in one process and for segments fanned out over the queue:
/// the same verdict, bit for bit. `None` when a re-hash met its deadline.
pub async fn walk<F, Fut>(
    segs: &[Segment],
    ends: &[[u8; 32]],
    expected: Option<Sha256>,
    mut rehash: F,
) -> Result<Option<ChainVerdict>, VerifyError>
where
    F: FnMut(&Segment, ChainState) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Chain>, VerifyError>>,
{
    if ends.len() != segs.len() {
        return Err(VerifyError::CorruptProgress("not one end per segment"));
    }
    let mut first_break = None;
    let mut truth = ChainState::INITIAL;
    for (seg, &end) in segs.iter().zip(ends) {
        let mut end = end;
        // This segment started from a false state: only now is the true one known.
        if seg.declared_start != truth {
            match rehash(seg, truth).await? {
                Some(again) => end = end_of(seg, again)?,
                None => return Ok(None),
            }
        }
        let Some(declared_end) = seg.declared_end else {
            let digest = Sha256::from_bytes(end);
            let mismatch = expected.is_some_and(|e| e != digest);
            let mismatch_part = mismatch.then(|| first_break.unwrap_or(seg.first_part));
            return Ok(Some(ChainVerdict {
                digest,
                segments: u32::try_from(segs.len()).unwrap_or(u32::MAX),
                mismatch_part,
            }));
        };
        truth = ChainState::from_bytes(end);
        if truth != declared_end && first_break.is_none() {
            first_break = Some(seg.first_part);
        }
    }
    Err(VerifyError::CorruptProgress("no last segment"))
}

/// Bytes `[start, end)` absorbed into a SHA-256 holding `from` after `start` bytes, range by
/// range (each hashed off the tokio workers). `None` when the deadline passed first.
#[allow(clippy::too_many_arguments)]
pub async fn hash_span(
    store: &dyn ObjectStore,
    key: &str,
    object: &ObjectInfo,
    cfg: VerifyConfig,
    start: u64,
    end: u64,
    from: ChainState,
    deadline: Option<Instant>,
) -> Result<Option<Chain>, VerifyError> {
    let pin = Pin {
        etag: &object.etag,
        version_id: object.version_id.as_deref(),
    };
    let mut chain = Chain::resume(from, start)
        .map_err(|_| VerifyError::CorruptProgress("a segment starts mid-block"))?;
    let range = cfg.range_bytes.max(1);
    let mut at = start;
    while at < end {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        let len = range.min(end - at);
        let chunks: Vec<Bytes> = store.get_range(key, at, len, pin).await?;
        // A short body would shift every later byte of the chain: not these bytes, an error.
        if chunks.iter().map(|c| c.len() as u64).sum::<u64>() != len {
            let short = PortError::unavailable(Upstream::S3, "a ranged GET returned a short body");
            return Err(VerifyError::Read(short));
        }
        chain = tokio::task::spawn_blocking(move || {
            for c in &chunks {
                chain.update(c);
            }
            chain
        })
        .await
        .map_err(VerifyError::Hasher)?;
        at += len;
    }
    Ok(Some(chain))
}

#[cfg(test)]
#[path = "segments_tests.rs"]
mod tests;
