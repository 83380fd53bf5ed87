//! A verification fanned out by segments (one queue message each): what the segments found so
//! far, kept on the record under the holder's lease. Each end is a fact about the pinned object
//! version (its bytes from the declared state before them), so a holder that takes the
//! completion over keeps them and sends only the segments still missing.

use std::collections::BTreeMap;

use super::{State, UploadRecord};

/// What one segment ended in: the chaining value after it (or, for the last segment, the
/// digest), and the seal the worker that hashed it made with the receipt key (`None` when the
/// service issues no receipts). The walk trusts an end only with a seal that checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEnd {
    pub end: [u8; 32],
    pub seal: Option<[u8; 64]>,
}

/// Segment index (from 0, in object order) → what it ended in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentEnds(BTreeMap<u16, SegmentEnd>);

impl SegmentEnds {
    /// The end recorded for segment `index`, sealed or not.
    pub fn get(&self, index: u16) -> Option<[u8; 32]> {
        self.0.get(&index).map(|e| e.end)
    }

    /// The end recorded for segment `index`, with its seal.
    pub fn entry(&self, index: u16) -> Option<&SegmentEnd> {
        self.0.get(&index)
    }

    /// Records an unsealed end (a service that issues no receipts).
    pub fn insert(&mut self, index: u16, end: [u8; 32]) {
        self.insert_sealed(index, SegmentEnd { end, seal: None });
    }

    pub fn insert_sealed(&mut self, index: u16, end: SegmentEnd) {
        self.0.insert(index, end);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A fan-out under way on the pinned version: the ends recorded, and the bytes hashed across
/// them (progress for clients polling: the record's `verified_bytes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fanned {
    pub ends: SegmentEnds,
    pub hashed: u64,
}

/// The stored form's first byte, so the attribute is never empty (a fan-out that found nothing
/// yet is still told from none) and a later form can be told from this one. Form 1 (ends without
/// seals) was never released: only form 2 is read.
const STORED_FORM: u8 = 2;
/// The form byte and `hashed` (u64, big-endian).
const HEADER: usize = 1 + 8;
/// One end without its seal: the index (u16, big-endian) and the 32 bytes.
const END: usize = 2 + 32;
/// One form-2 end: the index, the 32 bytes, a flag (0: unsealed, 1: sealed) and, when sealed,
/// the 64-byte seal.
const ENTRY: usize = 2 + 32 + 1;
const SEAL: usize = 64;

impl Fanned {
    pub fn to_stored(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.ends.len() * (ENTRY + SEAL));
        out.push(STORED_FORM);
        out.extend_from_slice(&self.hashed.to_be_bytes());
        for (i, e) in &self.ends.0 {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(&e.end);
            match &e.seal {
                Some(seal) => {
                    out.push(1);
                    out.extend_from_slice(seal);
                }
                None => out.push(0),
            }
        }
        out
    }

    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < HEADER || bytes[0] != STORED_FORM {
            return None;
        }
        let (header, mut entries) = bytes.split_at(HEADER);
        let hashed = u64::from_be_bytes(header[1..].try_into().ok()?);
        let mut ends = BTreeMap::new();
        while !entries.is_empty() {
            let (e, rest) = entries.split_at_checked(END)?;
            let end: [u8; 32] = e[2..].try_into().ok()?;
            let (seal, rest) = match rest.split_first() {
                Some((0, rest)) => (None, rest),
                Some((1, rest)) => {
                    let (seal, rest) = rest.split_at_checked(SEAL)?;
                    (Some(seal.try_into().ok()?), rest)
                }
                _ => return None,
            };
            ends.insert(u16::from_be_bytes([e[0], e[1]]), SegmentEnd { end, seal });
            entries = rest;
        }
        Some(Self {
            ends: SegmentEnds(ends),
            hashed,
        })
    }
}

impl UploadRecord {
    /// The fan-out a holder started on the pinned version, when one did.
    pub fn fanned(&self) -> Option<&Fanned> {
        match &self.state {
            State::Completing {
                pinned: Some(p), ..
            } => p.fanned.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_round_trips_through_its_stored_form_and_refuses_others() {
        let mut fanned = Fanned::default();
        assert_eq!(
            Fanned::from_stored(&fanned.to_stored()),
            Some(fanned.clone())
        );
        fanned.ends.insert(3, [7; 32]);
        let sealed = SegmentEnd {
            end: [1; 32],
            seal: Some([9; 64]),
        };
        fanned.ends.insert_sealed(0, sealed);
        fanned.hashed = 5 << 30;
        let stored = fanned.to_stored();
        assert_eq!(stored.len(), HEADER + 2 * ENTRY + SEAL);
        assert_eq!(Fanned::from_stored(&stored), Some(fanned.clone()));
        assert_eq!(fanned.ends.entry(0), Some(&sealed));
        assert_eq!(Fanned::from_stored(&stored[..stored.len() - 1]), None);
        assert_eq!(Fanned::from_stored(&[]), None);
        assert_eq!(Fanned::from_stored(&[3; HEADER]), None);
        // Form 1 (ends without seals) was never released.
        assert_eq!(Fanned::from_stored(&[1; HEADER]), None);
        let mut bad_flag = stored.clone();
        bad_flag[HEADER + ENTRY - 1] = 2;
        assert_eq!(Fanned::from_stored(&bad_flag), None);
    }

    #[test]
    fn the_most_sealed_ends_a_fan_out_records_stay_small_in_the_item() {
        let mut fanned = Fanned::default();
        for i in 0..128 {
            let seal = Some([0xFF; SEAL]);
            fanned.ends.insert_sealed(
                i,
                SegmentEnd {
                    end: [0xEE; 32],
                    seal,
                },
            );
        }
        // Base64 of 99 bytes an end: under 17 KB of the item's 400 KB.
        assert!(fanned.to_stored().len().div_ceil(3) * 4 < 17_000);
    }
}
