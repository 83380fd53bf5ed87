//! An owner's reservations as stored: its shards (`quotas#<k>#<owner>`, read at once), with
//! what no write may break.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use vu_core::ports::OwnerLimits;

use crate::helpers::table;

type Item = std::collections::HashMap<String, AttributeValue>;

/// One shard: its open-session slots (id → bytes), bytes-only entries, and `pending_bytes`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Shard {
    pub slots: BTreeMap<String, i64>,
    pub extra: BTreeMap<String, i64>,
    pub pending: i64,
    /// The item's size as DynamoDB bills it (attribute names and values), roughly.
    pub size: usize,
}

/// An owner's shards (signed sums: a give-back applied twice would take one below zero).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Quota {
    pub shards: Vec<Shard>,
    /// id → its bytes across every shard.
    pub held: BTreeMap<String, i64>,
    pub pending: i64,
}

fn number(v: &AttributeValue) -> i64 {
    v.as_n().unwrap().parse().unwrap()
}

fn entries(item: &Item, map: &str) -> BTreeMap<String, i64> {
    item.get(map)
        .map(|m| m.as_m().unwrap().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(id, e)| (id, number(&e.as_m().unwrap()["b"])))
        .collect()
}

/// What DynamoDB counts of an attribute value (names and values, +1 a map or list element).
fn size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + size(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| size(v) + 1).sum::<usize>(),
        _ => 1,
    }
}

impl Quota {
    pub async fn read(client: &aws_sdk_dynamodb::Client, owner: &str, limits: OwnerLimits) -> Self {
        let count = vu_aws::shards_for(limits);
        let keys = (0..count)
            .map(|k| {
                Item::from([(
                    "upload_id".into(),
                    AttributeValue::S(format!("quotas#{k}#{owner}")),
                )])
            })
            .collect();
        let out = client
            .batch_get_item()
            .request_items(
                table(),
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_keys().is_none_or(|u| u.is_empty()));
        let mut items: BTreeMap<String, Item> = out
            .responses
            .unwrap()
            .remove(&table())
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i["upload_id"].as_s().unwrap().clone(), i))
            .collect();
        let mut quota = Quota::default();
        for k in 0..count {
            let item = items
                .remove(&format!("quotas#{k}#{owner}"))
                .unwrap_or_default();
            let shard = Shard {
                slots: entries(&item, "slots"),
                extra: entries(&item, "extra"),
                pending: item.get("pending_bytes").map_or(0, number),
                size: item.iter().map(|(k, v)| k.len() + size(v)).sum(),
            };
            for (id, b) in shard.slots.iter().chain(&shard.extra) {
                *quota.held.entry(id.clone()).or_default() += b;
            }
            quota.pending += shard.pending;
            quota.shards.push(shard);
        }
        quota
    }

    /// The sessions holding a slot.
    pub fn ids(&self) -> BTreeSet<String> {
        self.shards
            .iter()
            .flat_map(|s| s.slots.keys().cloned())
            .collect()
    }

    pub fn open(&self) -> usize {
        self.shards.iter().map(|s| s.slots.len()).sum()
    }

    /// What no write may break, so no read may show: within both limits, each shard within its
    /// share, never below zero, each `pending_bytes` the sum of its entries, one slot a session.
    pub fn broken(&self, limits: OwnerLimits) -> Option<String> {
        let count = u64::try_from(self.shards.len()).unwrap();
        let share = |total: u64, k: u64| {
            i64::try_from(total / count + u64::from(k < total % count)).unwrap()
        };
        let bytes = i64::try_from(limits.pending_bytes).unwrap_or(i64::MAX);
        let mut why = Vec::new();
        if self.open() as u64 > limits.open_sessions || !(0..=bytes).contains(&self.pending) {
            why.push(format!(
                "{} open (limit {}), pending_bytes {} (limit {bytes})",
                self.open(),
                limits.open_sessions,
                self.pending
            ));
        }
        for (k, s) in (0u64..).zip(&self.shards) {
            let sum: i64 = s.slots.values().chain(s.extra.values()).sum();
            if s.pending != sum
                || !(0..=share(limits.pending_bytes, k)).contains(&s.pending)
                || s.slots.len() as i64 > share(limits.open_sessions, k)
            {
                why.push(format!(
                    "shard {k}: {} slots, pending_bytes {} for entries of {sum}",
                    s.slots.len(),
                    s.pending
                ));
            }
        }
        if self.ids().len() != self.open() {
            why.push("a session holds two slots".into());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}
