//! A verification fanned out by segments (one queue message each): what the segments found so
//! far, kept on the record under the holder's lease. Each end is a fact about the pinned object
//! version (its bytes from the declared state before them), so a holder that takes the
//! completion over keeps them and sends only the segments still missing.

use std::collections::BTreeMap;

use super::{State, UploadRecord};

/// Segment index (from 0, in object order) → the 32 bytes it ended in: the chaining value after
/// it, or, for the last segment, the digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentEnds(BTreeMap<u16, [u8; 32]>);

impl SegmentEnds {
    pub fn get(&self, index: u16) -> Option<[u8; 32]> {
        self.0.get(&index).copied()
    }

    pub fn insert(&mut self, index: u16, end: [u8; 32]) {
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
/// yet is still told from none) and a later form can be told from this one.
const STORED_FORM: u8 = 1;
/// The form byte and `hashed` (u64, big-endian).
const HEADER: usize = 1 + 8;
/// One stored end: the index (u16, big-endian) and the 32 bytes.
const ENTRY: usize = 2 + 32;

impl Fanned {
    pub fn to_stored(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.ends.len() * ENTRY);
        out.push(STORED_FORM);
        out.extend_from_slice(&self.hashed.to_be_bytes());
        for (i, end) in &self.ends.0 {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(end);
        }
        out
    }

    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < HEADER || bytes[0] != STORED_FORM {
            return None;
        }
        let (header, entries) = bytes.split_at(HEADER);
        if !entries.len().is_multiple_of(ENTRY) {
            return None;
        }
        let hashed = u64::from_be_bytes(header[1..].try_into().ok()?);
        let mut ends = BTreeMap::new();
        for e in entries.chunks_exact(ENTRY) {
            ends.insert(u16::from_be_bytes([e[0], e[1]]), e[2..].try_into().ok()?);
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
        fanned.ends.insert(0, [1; 32]);
        fanned.hashed = 5 << 30;
        let stored = fanned.to_stored();
        assert_eq!(stored.len(), HEADER + 2 * ENTRY);
        assert_eq!(Fanned::from_stored(&stored), Some(fanned));
        assert_eq!(Fanned::from_stored(&stored[..stored.len() - 1]), None);
        assert_eq!(Fanned::from_stored(&[]), None);
        assert_eq!(Fanned::from_stored(&[2; HEADER]), None);
    }
}
