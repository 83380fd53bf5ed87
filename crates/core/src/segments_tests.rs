#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::*;
use crate::hash::{Hashed, sha256_object};
use crate::memory::MemoryObjects;

const KEY: &str = "k";

/// A small deterministic generator; a failing case names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn cfg() -> VerifyConfig {
    VerifyConfig {
        concurrency: 3,
        // Several ranges per segment, and ranges that do not divide parts.
        range_bytes: 100,
        ..VerifyConfig::default()
    }
}

/// The chaining value after each part boundary of `data`, as an honest client declares them.
fn honest_states(data: &[u8], plan: &PartPlan) -> PartStates {
    let mut states = PartStates::default();
    let mut chain = Chain::new();
    for n in 1..plan.part_count() {
        let (a, b) = ((n - 1) * plan.part_size(), n * plan.part_size());
        chain.update(&data[a as usize..b as usize]);
        states.insert(n as u16, chain.state().unwrap());
    }
    states
}

async fn stored(data: &[u8]) -> (Arc<MemoryObjects>, ObjectInfo) {
    let objects = MemoryObjects::new();
    let version = objects.put_object(KEY, data);
    let info = objects.head(KEY, Some(&version)).await.unwrap().unwrap();
    (objects, info)
}

async fn verify(
    objects: &MemoryObjects,
    info: &ObjectInfo,
    plan: &PartPlan,
    states: &PartStates,
    expected: Sha256,
) -> ChainVerdict {
    verify_by_segments(
        objects,
        KEY,
        info,
        Claimed {
            plan,
            states,
            expected: Some(expected),
        },
        cfg(),
        None,
    )
    .await
    .unwrap()
    .expect("no deadline")
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Five parts of 256 bytes and a last of 77.
fn five_parts() -> (Vec<u8>, PartPlan) {
    let data = data(7, 5 * 256 + 77);
    let plan = PartPlan::stored(data.len() as u64, 256).unwrap();
    (data, plan)
}

#[tokio::test]
async fn all_links_hold_verifies_in_as_many_segments_as_states_allow() {
    let (data, plan) = five_parts();
    let (objects, info) = stored(&data).await;
    let states = honest_states(&data, &plan);
    let v = verify(&objects, &info, &plan, &states, Sha256::of(&data)).await;
    assert_eq!(v.digest, Sha256::of(&data));
    assert_eq!(v.segments, 6);
    assert_eq!(v.mismatch_part, None);
}

#[tokio::test]
async fn a_wrong_state_with_the_right_bytes_still_verifies() {
    let (data, plan) = five_parts();
    let (objects, info) = stored(&data).await;
    let mut states = honest_states(&data, &plan);
    states.insert(2, ChainState::from_bytes([0xAB; 32]));
    let v = verify(&objects, &info, &plan, &states, Sha256::of(&data)).await;
    assert_eq!(v.digest, Sha256::of(&data));
    assert_eq!(v.mismatch_part, None);
    // Every state wrong: the chain is re-hashed from the true values, same digest.
    let mut all_wrong = PartStates::default();
    for n in 1..6 {
        all_wrong.insert(n, ChainState::from_bytes([n as u8; 32]));
    }
    let v = verify(&objects, &info, &plan, &all_wrong, Sha256::of(&data)).await;
    assert_eq!((v.digest, v.mismatch_part), (Sha256::of(&data), None));
}

#[tokio::test]
async fn a_changed_byte_in_part_k_fails_naming_part_k() {
    let (data, plan) = five_parts();
    let states = honest_states(&data, &plan);
    for k in 1..=6u64 {
        let mut changed = data.clone();
        let at = ((k - 1) * 256 + 13) as usize;
        changed[at] ^= 1;
        let (objects, info) = stored(&changed).await;
        let v = verify(&objects, &info, &plan, &states, Sha256::of(&data)).await;
        assert_eq!(v.digest, Sha256::of(&changed), "part {k}");
        assert_eq!(v.mismatch_part, Some(k as u16), "part {k}");
    }
}

#[tokio::test]
async fn partial_states_cut_segments_where_they_are_given() {
    let (data, plan) = five_parts();
    let (objects, info) = stored(&data).await;
    let all = honest_states(&data, &plan);
    let mut some = PartStates::default();
    for (n, s) in all.iter().filter(|(n, _)| [2, 4].contains(n)) {
        some.insert(n, s);
    }
    let v = verify(&objects, &info, &plan, &some, Sha256::of(&data)).await;
    assert_eq!(
        (v.digest, v.segments, v.mismatch_part),
        (Sha256::of(&data), 3, None)
    );
    assert_eq!(
        segments(&plan, &some)
            .iter()
            .map(|s| (s.first_part, s.start, s.end))
            .collect::<Vec<_>>(),
        [(1, 0, 512), (3, 512, 1024), (5, 1024, 1357)]
    );
    // A two-part upload with its one state verifies in two segments.
    let two = &data[..300];
    let plan2 = PartPlan::stored(300, 256).unwrap();
    let (objects, info) = stored(two).await;
    let v = verify(
        &objects,
        &info,
        &plan2,
        &honest_states(two, &plan2),
        Sha256::of(two),
    )
    .await;
    assert_eq!((v.segments, v.mismatch_part), (2, None));
}

#[tokio::test]
async fn an_object_replaced_mid_way_is_never_mixed_into_the_digest() {
    let (data, plan) = five_parts();
    let (objects, info) = stored(&data).await;
    objects.put_object(KEY, b"other bytes");
    let mut pinned_to_old_etag = info.clone();
    pinned_to_old_etag.version_id = None;
    let r = verify_by_segments(
        objects.as_ref(),
        KEY,
        &pinned_to_old_etag,
        Claimed {
            plan: &plan,
            states: &honest_states(&data, &plan),
            expected: None,
        },
        cfg(),
        None,
    )
    .await;
    assert!(
        matches!(
            r,
            Err(VerifyError::Read(
                crate::ports::PortError::PreconditionFailed
            ))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_passed_deadline_leaves_it_to_the_sequential_path() {
    let (data, plan) = five_parts();
    let (objects, info) = stored(&data).await;
    let states = honest_states(&data, &plan);
    let past = Some(Instant::now());
    let r = verify_by_segments(
        objects.as_ref(),
        KEY,
        &info,
        Claimed {
            plan: &plan,
            states: &states,
            expected: None,
        },
        cfg(),
        past,
    );
    assert_eq!(r.await.unwrap(), None);
}

/// The verdict by segments is bit-for-bit the sequential one: random sizes, part sizes, subsets
/// of states, wrong states and changed bytes.
#[tokio::test]
async fn the_verdict_by_segments_is_the_sequential_one() {
    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let part_size = 64 * (1 + rng.below(5));
        let size = rng.below(10 * part_size);
        let sent = data(seed, size as usize);
        let plan = PartPlan::stored(size, part_size).unwrap();
        let mut states = PartStates::default();
        for (n, s) in honest_states(&sent, &plan).iter() {
            match rng.below(4) {
                0 => {}
                1 => states.insert(n, ChainState::from_bytes([rng.next() as u8; 32])),
                _ => states.insert(n, s),
            }
        }
        let mut landed = sent.clone();
        if size > 0 && rng.below(2) == 0 {
            let at = rng.below(size) as usize;
            landed[at] ^= 1 << rng.below(8);
        }
        let (objects, info) = stored(&landed).await;
        let expected = Sha256::of(&sent);
        let v = verify(&objects, &info, &plan, &states, expected).await;
        let sequential = sha256_object(objects.as_ref(), KEY, &info, cfg(), None, None)
            .await
            .unwrap();
        assert_eq!(Hashed::Done(v.digest), sequential, "seed {seed}");
        assert_eq!(v.digest == expected, landed == sent, "seed {seed}");
        assert_eq!(v.mismatch_part.is_some(), landed != sent, "seed {seed}");
        assert_eq!(
            v.segments as usize,
            segments(&plan, &states).len(),
            "seed {seed}"
        );
    }
}

/// A figure, not a check (`cargo test -p vu-core --features memory --lib -- --ignored
/// segments_use_every_core --nocapture`): one 512 MiB object in memory hashed sequentially (one
/// hasher thread) and by 8 segments with `concurrency` = the machine's cores. Both are CPU-bound
/// here; in AWS the gain comes from reading segments through several functions at once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run by hand"]
async fn segments_use_every_core() {
    let size = 512 * 1024 * 1024u64;
    let part_size = 64 * 1024 * 1024u64;
    let data = data(1, size as usize);
    let plan = PartPlan::stored(size, part_size).unwrap();
    let states = honest_states(&data, &plan);
    let (objects, info) = stored(&data).await;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cfg = VerifyConfig {
        concurrency: cores,
        range_bytes: 8 * 1024 * 1024,
        ..VerifyConfig::default()
    };
    let started = Instant::now();
    let seq = sha256_object(objects.as_ref(), KEY, &info, cfg, None, None)
        .await
        .unwrap();
    let sequential = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let claimed = Claimed {
        plan: &plan,
        states: &states,
        expected: None,
    };
    let v = verify_by_segments(objects.as_ref(), KEY, &info, claimed, cfg, None)
        .await
        .unwrap()
        .unwrap();
    let segmented = started.elapsed().as_secs_f64();
    assert_eq!(seq, Hashed::Done(v.digest));
    let mib = (size / 1024 / 1024) as f64;
    println!(
        "512 MiB: sequential {sequential:.2} s ({:.0} MiB/s); {} segments, {cores} at once: \
         {segmented:.2} s ({:.0} MiB/s)",
        mib / sequential,
        v.segments,
        mib / segmented
    );
}

#[test]
fn the_states_a_claim_keeps_stay_a_few_kilobytes_at_ten_thousand_parts() {
    let mut states = PartStates::default();
    for n in 1..10_000u16 {
        states.insert(n, ChainState::from_bytes([n as u8; 32]));
    }
    let kept = states.thinned(MAX_KEPT_STATES);
    assert_eq!(kept.len(), MAX_KEPT_STATES);
    // Base64 of 34 bytes a state: under 6 KB of the item's 400 KB.
    assert!(kept.to_stored().len().div_ceil(3) * 4 < 6 * 1024);
    // The first and last boundaries stay: the segments still cover the whole object evenly.
    let parts: Vec<u16> = kept.iter().map(|(n, _)| n).collect();
    assert_eq!((parts[0], parts[MAX_KEPT_STATES - 1]), (1, 9_999));
}
