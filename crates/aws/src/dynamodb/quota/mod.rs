//! Each owner's reservations, sharded over `S` items (`shard.rs`) so that no one item takes
//! every create and give-back of an owner (docs/scale.md, "Quota" has the arithmetic). `S` follows the
//! open-sessions limit (`SLOTS_PER_SHARD` a shard, at most `MAX_SHARDS`): small limits keep
//! one shard. Each limit is split over the shards, and a shard admits an entry only within its
//! share, in one conditional write, so the shards together never pass a limit. A create tries
//! its session's home shard (picked from its id); refused, it reads every shard at once and
//! takes its slot where there is one, and its bytes from as many shards as it takes (first
//! recording them in the home shard, which is where its give-back looks), all or nothing.

mod legacy;
mod shard;
mod shard_io;

use shard::{Entry, Part, Pointer, Shard, Within};

use super::DynamoSessions;
use vu_core::domain::UploadId;
use vu_core::ports::{OwnerLimit, OwnerLimits, PortError, Reservation};

/// Open sessions a shard holds at most: ~50 bytes an entry keep a full shard near 5 KB, so a
/// write costs ≤ 5 WCU.
pub const SLOTS_PER_SHARD: u64 = 100;
/// Shards an owner has at most: one `BatchGetItem` (100 keys) reads them all.
pub const MAX_SHARDS: u64 = 100;

/// Rounds of read-then-write a refused reservation tries: each retry follows another write that
/// landed between its read and its write (a racing create taking the room first, a give-back,
/// expired entries collected). Near an owner's limit the last free slots sit in a few shards and
/// every racing create aims at them, one winning a round: 10 rounds refused one of 10,000
/// creates at 16 at once on dynalite while slots were free; 32 cover 32 racers on one shard.
const RESERVE_ATTEMPTS: usize = 32;

/// How long a refusal caused only by sessions spread over shards waits to see them hold still
/// (a spread take or take-back is a few writes apart).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// What the sessions spread over shards (those with a pointer) hold, as one read shows it:
/// every entry, in order, and the slots and bytes in all.
#[derive(Debug, PartialEq, Eq)]
struct Spread {
    entries: Vec<(u32, String, u64, bool)>,
    slots: u64,
    bytes: u64,
}

impl Spread {
    fn of(shards: &[Shard]) -> Self {
        let spread: std::collections::BTreeSet<&String> =
            shards.iter().flat_map(|s| s.spill.keys()).collect();
        let mut entries: Vec<(u32, String, u64, bool)> = (0u32..)
            .zip(shards)
            .flat_map(|(k, s)| {
                spread.iter().flat_map(move |id| {
                    s.of(id)
                        .into_iter()
                        .map(move |(part, id, b)| (k, id, b, part == Part::Slot))
                })
            })
            .collect();
        entries.sort();
        let slots = entries.iter().filter(|e| e.3).count() as u64;
        let bytes = entries.iter().map(|e| e.2).sum();
        Self {
            entries,
            slots,
            bytes,
        }
    }
}

/// How many shards hold an owner's reservations under `limits`.
pub fn shards_for(limits: OwnerLimits) -> u32 {
    let shards = limits
        .open_sessions
        .div_ceil(SLOTS_PER_SHARD)
        .clamp(1, MAX_SHARDS);
    u32::try_from(shards).unwrap_or(1)
}

/// The limits split over the shards: what the shards may hold together (the owner's limits
/// less what the single item of before still holds), each shard its share.
#[derive(Debug, Clone, Copy)]
struct Layout {
    shards: u32,
    open: u64,
    bytes: u64,
}

fn share(total: u64, shards: u32, k: u32) -> u64 {
    let (s, k) = (u64::from(shards), u64::from(k));
    total / s + u64::from(k < total % s)
}

impl Layout {
    fn new(limits: OwnerLimits, legacy: (u64, u64)) -> Self {
        Self {
            shards: shards_for(limits),
            open: limits.open_sessions.saturating_sub(legacy.0),
            bytes: limits.pending_bytes.saturating_sub(legacy.1),
        }
    }

    fn open(&self, k: u32) -> u64 {
        share(self.open, self.shards, k)
    }

    fn bytes(&self, k: u32) -> u64 {
        share(self.bytes, self.shards, k)
    }

    fn within(&self, k: u32, room: u64) -> Within {
        Within {
            open: self.open(k),
            room,
        }
    }

    /// The shard a session's give-back reads first: FNV-1a of its id.
    fn home(&self, id: &str) -> u32 {
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        u32::try_from(hash % u64::from(self.shards)).unwrap_or(0)
    }
}

/// Where a session's reservation goes: `(shard, part, bytes)`, its slot first.
type Plan = Vec<(u32, Part, u64)>;

/// The slot in the first shard from home on (in ring order, so racing creates spread over
/// different shards) with a free one and room for all the bytes; if none has the room, in the
/// one with a free slot and the most room, as many bytes there as fit, the rest from the
/// shards with the most room.
fn plan(layout: &Layout, shards: &[Shard], home: u32, bytes: u64) -> Option<Plan> {
    let room = |k: u32| layout.bytes(k).saturating_sub(shards[k as usize].pending);
    let count = layout.shards;
    let free: Vec<u32> = (0..count)
        .map(|i| (home + i) % count)
        .filter(|&k| (shards[k as usize].slots.len() as u64) < layout.open(k))
        .collect();
    let slot = match free.iter().find(|&&k| room(k) >= bytes) {
        Some(&k) => k,
        None => free.iter().copied().max_by_key(|&k| room(k))?,
    };
    let first = bytes.min(room(slot));
    let mut plan = vec![(slot, Part::Slot, first)];
    let mut rest = bytes - first;
    let mut others: Vec<u32> = (0..count).filter(|&k| k != slot && room(k) > 0).collect();
    others.sort_by_key(|&k| std::cmp::Reverse(room(k)));
    for k in others {
        if rest == 0 {
            break;
        }
        let take = rest.min(room(k));
        plan.push((k, Part::Extra, take));
        rest -= take;
    }
    (rest == 0).then_some(plan)
}

impl DynamoSessions {
    pub(super) async fn reserve_quota(
        &self,
        owner: &str,
        r: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError> {
        let over_bytes = OwnerLimit::PendingBytes(limits.pending_bytes);
        let over_open = OwnerLimit::OpenSessions(limits.open_sessions);
        if r.bytes > limits.pending_bytes {
            return Ok(Some(over_bytes));
        }
        let layout = Layout::new(limits, self.legacy_holdings(owner, now).await?);
        let id = r.id.to_string();
        let home = layout.home(&id);
        let entry = Entry {
            bytes: r.bytes,
            expires_at: r.expires_at,
        };
        // The usual case: one write, to the home shard.
        if let Some(room) = layout.bytes(home).checked_sub(r.bytes)
            && self
                .take(
                    owner,
                    (home, Part::Slot),
                    &id,
                    entry,
                    layout.within(home, room),
                )
                .await?
        {
            return Ok(None);
        }
        let mut settled: Option<Spread> = None;
        for _ in 0..RESERVE_ATTEMPTS {
            let shards = self.read_shards(owner, layout.shards).await?;
            let missing: Vec<u32> = (0..layout.shards)
                .filter(|&k| !shards[k as usize].ready)
                .collect();
            if !missing.is_empty() {
                for k in missing {
                    self.init_shard(owner, k).await?;
                }
                continue;
            }
            if shards.iter().any(|s| s.slots.contains_key(&id)) {
                return Ok(None);
            }
            if self.collect_expired(owner, &shards, now).await? {
                continue;
            }
            let open: u64 = shards.iter().map(|s| s.slots.len() as u64).sum();
            let held: u64 = shards.iter().map(|s| s.pending).sum();
            let refusal = if open >= layout.open {
                Some(over_open)
            } else if held.saturating_add(r.bytes) > layout.bytes {
                Some(over_bytes)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                // A session spread over shards takes its parts one write at a time and gives
                // them back when one is refused, so what it holds may be in flight: a refusal
                // that only they cause waits for them to hold still over one pause.
                let spread = Spread::of(&shards);
                let fits_without = open.saturating_sub(spread.slots) < layout.open
                    && held.saturating_sub(spread.bytes).saturating_add(r.bytes) <= layout.bytes;
                if fits_without && settled.as_ref() != Some(&spread) {
                    settled = Some(spread);
                    tokio::time::sleep(SETTLE).await;
                    continue;
                }
                return Ok(Some(refusal));
            }
            let Some(plan) = plan(&layout, &shards, home, r.bytes) else {
                continue;
            };
            if self
                .carry_out(owner, &layout, home, &id, entry, &plan)
                .await?
            {
                return Ok(None);
            }
        }
        // Refused every time, racing creates taking the room first: named by what a last read
        // shows full (the open sessions when neither is: as full as it gets).
        let shards = self.read_shards(owner, layout.shards).await?;
        let held: u64 = shards.iter().map(|s| s.pending).sum();
        if held.saturating_add(r.bytes) > layout.bytes {
            return Ok(Some(over_bytes));
        }
        Ok(Some(over_open))
    }

    /// Gives back every entry (and pointer) whose session expired before `now`; whether any
    /// entry went (the counts changed).
    async fn collect_expired(
        &self,
        owner: &str,
        shards: &[Shard],
        now: i64,
    ) -> Result<bool, PortError> {
        let mut collected = false;
        for (k, shard) in (0u32..).zip(shards) {
            let expired = shard.expired(now);
            if !expired.is_empty() {
                self.drop_entries(owner, k, &expired, Some(now)).await?;
                collected = true;
            }
            for (id, p) in &shard.spill {
                if p.expires_at < now {
                    self.drop_pointer(owner, k, id).await?;
                }
            }
        }
        Ok(collected)
    }

    /// Takes `plan` for `id`, all or nothing: `false` (what it took given back) when a shard
    /// refused its part, a racing create having taken the room first.
    async fn carry_out(
        &self,
        owner: &str,
        layout: &Layout,
        home: u32,
        id: &str,
        entry: Entry,
        plan: &Plan,
    ) -> Result<bool, PortError> {
        let mut others: Vec<u32> = plan.iter().map(|p| p.0).filter(|&k| k != home).collect();
        others.dedup();
        if !others.is_empty() {
            // First: a give-back finds whatever it took through its home shard.
            let pointer = Pointer {
                expires_at: entry.expires_at,
                shards: others,
            };
            self.set_pointer(owner, home, id, &pointer).await?;
        }
        let mut taken: Vec<(u32, Part, u64)> = Vec::new();
        for &(k, part, bytes) in plan {
            let e = Entry { bytes, ..entry };
            let room = layout.bytes(k).saturating_sub(bytes);
            let took = self
                .take(owner, (k, part), id, e, layout.within(k, room))
                .await;
            match took {
                Ok(true) => taken.push((k, part, bytes)),
                Ok(false) => {
                    self.take_back(owner, home, id, &taken).await?;
                    return Ok(false);
                }
                Err(e) => {
                    // Best effort: what stays held expires with the session.
                    let _ = self.take_back(owner, home, id, &taken).await;
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    async fn take_back(
        &self,
        owner: &str,
        home: u32,
        id: &str,
        taken: &[(u32, Part, u64)],
    ) -> Result<(), PortError> {
        // The extras before the slot: no read shows bytes held for a session without its slot.
        for &(k, part, bytes) in taken.iter().rev() {
            self.drop_entries(owner, k, &[(part, id.to_owned(), bytes)], None)
                .await?;
        }
        self.drop_pointer(owner, home, id).await
    }

    pub(super) async fn unreserve_quota(
        &self,
        owner: &str,
        id: UploadId,
        limits: OwnerLimits,
    ) -> Result<(), PortError> {
        let layout = Layout::new(limits, (0, 0));
        let id = id.to_string();
        let home = layout.home(&id);
        let shard = self.read_shard(owner, home).await?;
        let pointer = shard.spill.get(&id);
        // The other shards first and the pointer last: a give-back that fails midway leaves
        // the pointer to the rest for the next try.
        for &k in pointer.map(|p| p.shards.as_slice()).unwrap_or_default() {
            let other = self.read_shard(owner, k).await?;
            self.drop_entries(owner, k, &other.of(&id), None).await?;
        }
        let here = shard.of(&id);
        self.drop_entries(owner, home, &here, None).await?;
        if pointer.is_some() {
            self.drop_pointer(owner, home, &id).await?;
        } else if here.is_empty() {
            self.legacy_unreserve(owner, &id).await?;
        }
        Ok(())
    }

    pub(super) async fn extend_quota(
        &self,
        owner: &str,
        id: UploadId,
        expires_at: i64,
        limits: OwnerLimits,
    ) -> Result<bool, PortError> {
        let layout = Layout::new(limits, (0, 0));
        let id = id.to_string();
        let home = layout.home(&id);
        let shard = self.read_shard(owner, home).await?;
        // The pointer first, so it never expires before what it points to.
        if let Some(p) = shard.spill.get(&id) {
            self.extend_in(owner, home, None, &id, expires_at).await?;
            for &k in &p.shards {
                let other = self.read_shard(owner, k).await?;
                for (part, _, _) in other.of(&id) {
                    self.extend_in(owner, k, Some(part), &id, expires_at)
                        .await?;
                }
            }
        }
        let here = shard.of(&id);
        for (part, _, _) in &here {
            self.extend_in(owner, home, Some(*part), &id, expires_at)
                .await?;
        }
        let slot_elsewhere = shard.spill.contains_key(&id);
        if here.is_empty() && !slot_elsewhere {
            return self.legacy_extend(owner, &id, expires_at).await;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
