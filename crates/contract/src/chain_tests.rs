#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::MIB;

/// A small deterministic generator: the property test needs no crate, and a failure names its
/// seed so it replays.
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

fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn states_carried_across_random_split_points_give_sha256_of_the_whole() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let len = rng.below(4000) as usize;
        let data = bytes(&mut rng, len);
        // Random block boundaries, in order, each hashed on from the state before it.
        let mut cuts: Vec<u64> = (0..rng.below(6))
            .map(|_| rng.below(len as u64 / BLOCK + 1) * BLOCK)
            .collect();
        cuts.sort_unstable();
        let (mut at, mut state) = (0u64, ChainState::INITIAL);
        for cut in cuts {
            let mut c = Chain::resume(state, at).unwrap();
            // Fed in uneven chunks: the buffering is sha2's.
            let span = &data[at as usize..cut as usize];
            for chunk in span.chunks(1 + rng.below(100) as usize) {
                c.update(chunk);
            }
            assert_eq!(c.bytes(), cut, "seed {seed}");
            state = c.state().expect("a block boundary");
            at = cut;
        }
        let mut last = Chain::resume(state, at).unwrap();
        last.update(&data[at as usize..]);
        assert_eq!(last.finish(), Sha256::of(&data), "seed {seed}, len {len}");
    }
}

#[test]
fn the_initial_state_is_sha256s_and_only_block_boundaries_have_one() {
    assert_eq!(Chain::new().state(), Some(ChainState::INITIAL));
    let mut c = Chain::resume(ChainState::INITIAL, 0).unwrap();
    c.update(b"abc");
    assert_eq!(c.state(), None);
    assert_eq!(c.bytes(), 3);
    assert_eq!(
        c.finish().to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(Chain::resume(ChainState::INITIAL, 65).is_err());
}

#[test]
fn a_state_is_its_words_big_endian_in_hex() {
    assert_eq!(
        ChainState::INITIAL.to_hex(),
        "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
    );
    let s = ChainState::parse_hex(&ChainState::INITIAL.to_hex().to_uppercase()).unwrap();
    assert_eq!(s, ChainState::INITIAL);
    assert_eq!(ChainState::from_bytes(s.to_bytes()), s);
}

fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn malformed_part_states_are_refused_by_parse() {
    let good = ChainState::INITIAL.to_hex();
    assert_eq!(PartStates::parse(&raw(&[("1", &good)])).unwrap().len(), 1);
    for (k, v) in [
        ("0", good.as_str()),
        ("01", good.as_str()),
        ("10000", good.as_str()),
        ("-1", good.as_str()),
        ("x", good.as_str()),
        ("1", &good[..63]),
        ("1", "zz"),
        ("1", ""),
    ] {
        let e = PartStates::parse(&raw(&[(k, v)])).unwrap_err();
        assert_eq!(e.field, "part_states", "{k} {v}");
    }
    // Not an object: serde refuses it.
    assert!(serde_json::from_str::<PartStates>("[\"a\"]").is_err());
    assert!(serde_json::from_str::<PartStates>("{\"1\": 5}").is_err());
}

#[test]
fn states_must_fit_the_sessions_parts() {
    let good = ChainState::INITIAL.to_hex();
    let plan = PartPlan::new(2 * 5 * MIB + 7, Some(5 * MIB), 5 * MIB).unwrap();
    let two = PartStates::parse(&raw(&[("1", &good), ("2", &good)])).unwrap();
    assert_eq!(two.fit(&plan), Ok(()));
    // n = part_count: the last part ends in padding, it has no chaining value.
    let three = PartStates::parse(&raw(&[("3", &good)])).unwrap();
    assert!(three.fit(&plan).is_err());
    // A part size that is not whole blocks has no chaining values at its boundaries.
    let odd = PartPlan::stored(3 * (5 * MIB + 1), 5 * MIB + 1).unwrap();
    assert!(two.fit(&odd).is_err());
    assert_eq!(PartStates::default().fit(&odd), Ok(()));
}

#[test]
fn stored_states_round_trip_compactly_and_thin_evenly() {
    let mut states = PartStates::default();
    for n in 1..=100u16 {
        let mut c = Chain::new();
        c.update(&[n as u8; 64]);
        states.insert(n, c.state().unwrap());
    }
    let stored = states.to_stored();
    assert_eq!(stored.len(), 100 * 34);
    assert_eq!(PartStates::from_stored(&stored).unwrap(), states);
    assert!(PartStates::from_stored(&stored[1..]).is_err());
    let thin = states.thinned(10);
    assert_eq!(thin.len(), 10);
    let kept: Vec<u16> = thin.iter().map(|(n, _)| n).collect();
    assert_eq!(kept.first(), Some(&1));
    assert_eq!(kept.last(), Some(&100));
    assert!(thin.iter().all(|(n, s)| states.0[&n] == s));
    assert_eq!(states.thinned(200), states);
}
