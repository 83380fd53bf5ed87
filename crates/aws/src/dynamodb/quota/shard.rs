//! One shard of an owner's reservations: the item `quotas#<k>#<owner>` holding `slots` (id →
//! `{b, e}`: a session's open-session slot and the bytes it took here), `extra` (id → `{b, e}`:
//! bytes a session larger than this shard's room took here, its slot being elsewhere), `spill`
//! (id → `{e, k}`: in a session's home shard, the other shards it took from) and
//! `pending_bytes` (the sum of the `b` here), as read; its writes are in `shard_io.rs`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::super::Item;

/// What one entry holds: bytes, and when it expires with its session (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub bytes: u64,
    pub expires_at: i64,
}

/// Where a session took bytes besides its home shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pointer {
    pub expires_at: i64,
    pub shards: Vec<u32>,
}

/// Which map of a shard an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Holds one of the owner's open sessions (and bytes).
    Slot,
    /// Holds bytes only.
    Extra,
}

impl Part {
    pub(super) fn map(self) -> &'static str {
        match self {
            Self::Slot => "slots",
            Self::Extra => "extra",
        }
    }
}

/// What a shard may hold before an entry is added: fewer slots than `open` (for a slot), at
/// most `room` bytes (its share less the entry's).
#[derive(Debug, Clone, Copy)]
pub(super) struct Within {
    pub open: u64,
    pub room: u64,
}

/// A shard as read. `ready` is false for an item not created yet (or without its maps).
#[derive(Debug, Default)]
pub(super) struct Shard {
    pub ready: bool,
    pub slots: HashMap<String, Entry>,
    pub extra: HashMap<String, Entry>,
    pub spill: HashMap<String, Pointer>,
    pub pending: u64,
}

fn number<T: std::str::FromStr>(v: Option<&AttributeValue>) -> Option<T> {
    v?.as_n().ok()?.parse().ok()
}

fn entries(item: &Item, map: &str) -> HashMap<String, Entry> {
    let Some(Ok(m)) = item.get(map).map(AttributeValue::as_m) else {
        return HashMap::new();
    };
    m.iter()
        .filter_map(|(id, v)| {
            let e = v.as_m().ok()?;
            let entry = Entry {
                bytes: number(e.get("b"))?,
                expires_at: number(e.get("e"))?,
            };
            Some((id.clone(), entry))
        })
        .collect()
}

fn pointers(item: &Item) -> HashMap<String, Pointer> {
    let Some(Ok(m)) = item.get("spill").map(AttributeValue::as_m) else {
        return HashMap::new();
    };
    m.iter()
        .filter_map(|(id, v)| {
            let p = v.as_m().ok()?;
            let shards = p.get("k")?.as_l().ok()?;
            let pointer = Pointer {
                expires_at: number(p.get("e"))?,
                shards: shards.iter().filter_map(|k| number(Some(k))).collect(),
            };
            Some((id.clone(), pointer))
        })
        .collect()
}

impl Shard {
    pub fn parse(item: &Item) -> Self {
        Self {
            ready: ["slots", "extra", "spill", "pending_bytes"]
                .iter()
                .all(|a| item.contains_key(*a)),
            slots: entries(item, "slots"),
            extra: entries(item, "extra"),
            spill: pointers(item),
            pending: number(item.get("pending_bytes")).unwrap_or(0),
        }
    }

    /// What session `id` holds here.
    pub fn of(&self, id: &str) -> Vec<(Part, String, u64)> {
        let slot = self.slots.get(id).map(|e| (Part::Slot, e));
        let extra = self.extra.get(id).map(|e| (Part::Extra, e));
        slot.into_iter()
            .chain(extra)
            .map(|(part, e)| (part, id.to_owned(), e.bytes))
            .collect()
    }

    /// Entries whose session expired before `now`.
    pub fn expired(&self, now: i64) -> Vec<(Part, String, u64)> {
        let slots = self.slots.iter().map(|(id, e)| (Part::Slot, id, e));
        let extra = self.extra.iter().map(|(id, e)| (Part::Extra, id, e));
        slots
            .chain(extra)
            .filter(|(_, _, e)| e.expires_at < now)
            .map(|(part, id, e)| (part, id.clone(), e.bytes))
            .collect()
    }
}
