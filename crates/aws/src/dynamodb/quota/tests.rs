#![allow(clippy::unwrap_used)]

use super::*;

fn limits(open: u64, bytes: u64) -> OwnerLimits {
    OwnerLimits {
        open_sessions: open,
        pending_bytes: bytes,
    }
}

fn ready(slots: usize, pending: u64) -> Shard {
    let mut s = Shard {
        ready: true,
        pending,
        ..Shard::default()
    };
    for i in 0..slots {
        let e = Entry {
            bytes: 0,
            expires_at: 0,
        };
        s.slots.insert(format!("s{i}"), e);
    }
    s
}

#[test]
fn small_limits_keep_one_shard_and_large_ones_at_most_a_batch() {
    assert_eq!(shards_for(limits(1, 1)), 1);
    assert_eq!(shards_for(limits(100, 1)), 1);
    assert_eq!(shards_for(limits(101, 1)), 2);
    assert_eq!(shards_for(limits(10_000, 1)), 100);
    assert_eq!(shards_for(limits(1_000_000, 1)), 100);
}

#[test]
fn the_shares_add_up_to_the_limits_less_what_the_single_item_holds() {
    let layout = Layout::new(limits(1_003, 10_007), (3, 7));
    assert_eq!(layout.shards, 11);
    let open: u64 = (0..11).map(|k| layout.open(k)).sum();
    let bytes: u64 = (0..11).map(|k| layout.bytes(k)).sum();
    assert_eq!((open, bytes), (1_000, 10_000));
}

#[test]
fn a_session_larger_than_a_shards_share_takes_its_bytes_from_several() {
    // 3 shards of 100 bytes; shard 1's slots are full.
    let layout = Layout::new(limits(300, 300), (0, 0));
    let shards = [ready(0, 60), ready(100, 0), ready(0, 10)];
    let planned = plan(&layout, &shards, 0, 200).unwrap();
    // The slot where room is largest (shard 2: 90), then shard 1 (100), then shard 0 (10 of its 40).
    assert_eq!(
        planned,
        [
            (2, Part::Slot, 90),
            (1, Part::Extra, 100),
            (0, Part::Extra, 10)
        ]
    );
    // 230 bytes of room in all: all of it fits, one more does not.
    let all: u64 = plan(&layout, &shards, 0, 230)
        .unwrap()
        .iter()
        .map(|p| p.2)
        .sum();
    assert_eq!(all, 230);
    assert_eq!(plan(&layout, &shards, 0, 231), None);
}

#[test]
fn no_plan_without_a_free_slot_or_enough_room() {
    let layout = Layout::new(limits(2, 200), (0, 0));
    assert_eq!(layout.shards, 1);
    assert_eq!(plan(&layout, &[ready(2, 0)], 0, 1), None);
    assert_eq!(plan(&layout, &[ready(1, 150)], 0, 51), None);
    assert_eq!(
        plan(&layout, &[ready(1, 150)], 0, 50),
        Some(vec![(0, Part::Slot, 50)])
    );
}

#[test]
fn the_home_shard_spreads_ids() {
    let layout = Layout::new(limits(10_000, 1), (0, 0));
    let mut counts = [0u32; 100];
    for _ in 0..10_000 {
        counts[layout.home(&UploadId::generate().to_string()) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (50..=150).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn what_sessions_spread_over_shards_hold_is_told_apart_from_the_rest() {
    let entry = |bytes| Entry {
        bytes,
        expires_at: 9,
    };
    // "big" holds its slot and 300 bytes at home (its pointer there), and `extra` bytes in the
    // other shard; "s0" and "s1" are single-shard sessions.
    let spread_over = |extra: Option<u64>| {
        let (mut home, mut other) = (ready(2, 0), ready(0, 0));
        home.slots.insert("big".into(), entry(300));
        let pointer = Pointer {
            expires_at: 9,
            shards: vec![1],
        };
        home.spill.insert("big".into(), pointer);
        if let Some(b) = extra {
            other.extra.insert("big".into(), entry(b));
        }
        Spread::of(&[home, other])
    };
    let spread = spread_over(Some(700));
    assert_eq!((spread.slots, spread.bytes), (1, 1000));
    assert_eq!(
        spread.entries,
        vec![(0, "big".into(), 300, true), (1, "big".into(), 700, false)]
    );
    // A part given back (or taken) between two reads is a change: the refusal waits again.
    assert_ne!(spread_over(None), spread);
}
