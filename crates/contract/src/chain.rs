//! SHA-256's chaining value at a part boundary, and hashing on from one.
//!
//! SHA-256 absorbs 64-byte blocks into eight 32-bit state words; padding and the length come only
//! at the end. Every part but the last is a whole number of blocks (part sizes are multiples of
//! 64), so the state after the first `n` parts is well defined, and hashing part `n + 1` needs
//! only that state and the byte count before it. The CLI computes these states as it reads; the
//! verifier hashes segments from them. Both use this one implementation, built on sha2's own
//! hasher (its serialized state is the eight words, the block count and the buffered tail), so
//! no SHA-256 arithmetic is written here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState;

use crate::{Invalid, MAX_PART_COUNT, PartPlan, Sha256};

/// SHA-256's block: chaining values exist only at multiples of it.
pub const BLOCK: u64 = 64;

/// The eight SHA-256 state words after some whole blocks (a chaining value). On the wire: 64
/// lower-case hex characters, the words big-endian (as the digest would show them, unpadded).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainState([u32; 8]);

impl ChainState {
    /// The state before any byte: SHA-256's initial hash value (FIPS 180-4, 5.3.3).
    pub const INITIAL: Self = Self([
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ]);

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(std::array::from_fn(|i| {
            u32::from_be_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        }))
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    pub fn parse_hex(s: &str) -> Result<Self, Invalid> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| {
            Invalid::new(
                "part_states",
                "each state must be 64 hexadecimal characters (eight 32-bit words, big-endian)",
            )
        })?;
        Ok(Self::from_bytes(out))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.to_bytes())
    }
}

impl fmt::Debug for ChainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainState({})", self.to_hex())
    }
}

impl fmt::Display for ChainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A SHA-256 under way: from the start, or from a chaining value at a block boundary.
#[derive(Clone)]
pub struct Chain(sha2::Sha256);

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    pub fn new() -> Self {
        Self(sha2::Sha256::new())
    }

    /// Continues a SHA-256 that holds `state` after `offset` bytes (a multiple of 64).
    pub fn resume(state: ChainState, offset: u64) -> Result<Self, Invalid> {
        if !offset.is_multiple_of(BLOCK) {
            return Err(Invalid::new(
                "offset",
                "a chaining value exists only after whole 64-byte blocks",
            ));
        }
        // sha2 0.11's layout: the words (little-endian each), the block count (u64,
        // little-endian), the buffered tail's length and the tail (empty here).
        // A fresh hasher's serialization is the right size with an empty tail.
        let mut serialized = sha2::Sha256::new().serialize();
        for (chunk, word) in serialized[..32].chunks_exact_mut(4).zip(state.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        serialized[32..40].copy_from_slice(&(offset / BLOCK).to_le_bytes());
        sha2::Sha256::deserialize(&serialized)
            .map(Self)
            .map_err(|_| Invalid::new("state", "not a SHA-256 state"))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The bytes absorbed since the start of the whole message (not since `resume`).
    pub fn bytes(&self) -> u64 {
        let s = self.0.serialize();
        let blocks = u64::from_le_bytes(std::array::from_fn(|i| s[32 + i]));
        blocks * BLOCK + u64::from(s[40])
    }

    /// The chaining value, when the bytes absorbed are whole blocks.
    pub fn state(&self) -> Option<ChainState> {
        let s = self.0.serialize();
        if s[40] != 0 {
            return None;
        }
        Some(ChainState(std::array::from_fn(|i| {
            u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]])
        })))
    }

    /// Pads with the whole message's length and gives the digest.
    pub fn finish(self) -> Sha256 {
        Sha256::from_bytes(self.0.finalize().into())
    }
}

/// `part_states` as a client declares them at `complete`: part number `n` → the chaining value
/// after the first `n` parts. Any subset of the boundaries; each one only a claim to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartStates(BTreeMap<u16, ChainState>);

/// One stored state: the part number (u16, big-endian) and the 32 state bytes.
const STORED: usize = 2 + 32;

impl PartStates {
    /// Parses the wire object: keys are part numbers (decimal, `1 ≤ n < 10,000`), values 64 hex.
    /// Whether each `n` is a boundary of the session's parts is [`Self::fit`]'s question.
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Self, Invalid> {
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let n = k
                .parse::<u16>()
                .ok()
                .filter(|n| (1..MAX_PART_COUNT).contains(&u64::from(*n)) && *k == n.to_string())
                .ok_or_else(|| {
                    Invalid::new(
                        "part_states",
                        format!(
                            "{k:?} is not a part number from 1 to 9999 (the part count excluded)"
                        ),
                    )
                })?;
            out.insert(n, ChainState::parse_hex(v)?);
        }
        Ok(Self(out))
    }

    /// Refuses states the session's parts cannot have: a part size that is not whole blocks (no
    /// chaining value at its boundaries), or `n ≥ part_count` (the last part ends in padding).
    pub fn fit(&self, plan: &PartPlan) -> Result<(), Invalid> {
        if self.0.is_empty() {
            return Ok(());
        }
        if !plan.part_size().is_multiple_of(BLOCK) {
            return Err(Invalid::new(
                "part_states",
                "the session's part size is not a multiple of 64 bytes: its parts end mid-block",
            ));
        }
        match self.0.keys().next_back() {
            Some(&n) if u64::from(n) >= plan.part_count() => Err(Invalid::new(
                "part_states",
                format!(
                    "part {n}: states are for parts 1 to {} (the part count excluded)",
                    plan.part_count().saturating_sub(1)
                ),
            )),
            _ => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `(n, state after part n)`, by part number.
    pub fn iter(&self) -> impl Iterator<Item = (u16, ChainState)> + '_ {
        self.0.iter().map(|(n, s)| (*n, *s))
    }

    pub fn insert(&mut self, part: u16, state: ChainState) {
        self.0.insert(part, state);
    }

    /// At most `max` of the states, spread evenly over those given (the first and last kept):
    /// boundaries beyond the segments a verifier runs at once only cost storage.
    pub fn thinned(&self, max: usize) -> Self {
        let n = self.0.len();
        if n <= max || max == 0 {
            return if max == 0 {
                Self::default()
            } else {
                self.clone()
            };
        }
        let all: Vec<_> = self.iter().collect();
        let picked = (0..max).map(|i| all[i * (n - 1) / (max - 1).max(1)]);
        Self(picked.collect())
    }

    /// The compact stored form: 34 bytes a state (`n` as u16 big-endian, then the state).
    pub fn to_stored(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * STORED);
        for (n, s) in self.iter() {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&s.to_bytes());
        }
        out
    }

    pub fn from_stored(bytes: &[u8]) -> Result<Self, Invalid> {
        let bad = || Invalid::new("part_states", "stored states are not 34-byte entries");
        if !bytes.len().is_multiple_of(STORED) {
            return Err(bad());
        }
        let mut out = BTreeMap::new();
        for e in bytes.chunks_exact(STORED) {
            let n = u16::from_be_bytes([e[0], e[1]]);
            let state: [u8; 32] = e[2..].try_into().map_err(|_| bad())?;
            out.insert(n, ChainState::from_bytes(state));
        }
        Ok(Self(out))
    }

    /// The wire object again (`n` → hex).
    pub fn to_wire(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(n, s)| (n.to_string(), s.to_hex()))
            .collect()
    }
}

impl Serialize for PartStates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PartStates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document: an object of part number → 64-hex chaining value.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PartStates {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let state = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-fA-F]{64}$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "SHA-256 chaining values: part number n (1 ≤ n < part_count, as a string) → the \
                 eight state words after the first n parts, big-endian, 64 hex characters. Any \
                 subset; the verifier hashes the parts between them in parallel and checks each.",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[1-9][0-9]{0,3}$")),
            ))
            .additional_properties(Some(AdditionalProperties::from(state)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PartStates {
    fn name() -> std::borrow::Cow<'static, str> {
        "PartStates".into()
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
