//! The key of the sparse in-flight index (`in_flight-lease_until`), sharded: every session in
//! flight, every pending one and every unannounced verdict would otherwise share one partition
//! per kind (`pending`, `completing`, `verifying`, `announce`), and DynamoDB writes one partition at most 1,000 WCU/s,
//! which capped the whole system near 500 verdicts/s. Each key is `<kind>#<k>`, `k` a stable
//! hash of the upload id mod `IN_FLIGHT_SHARDS` (docs/scale.md has the arithmetic); the sweep
//! reads every shard, and the unsharded keys that items written before sharding still carry.

use super::{Value, text};
use crate::domain::{Status, UploadId};

/// How many partitions each kind of the in-flight index is spread over. A verdict writes its
/// `completing` shard at most 4 times on the busiest path (claimed, handed to the verifier,
/// claimed by it, left with the verdict) and each other kind's twice (enter, leave); at 1,000
/// WCU/s per partition, 64 shards carry 16,000 verdicts/s on that path before any split, the
/// target being 10,000 (docs/scale.md). Changing it moves the items in flight to other keys:
/// the reads cover `0..IN_FLIGHT_SHARDS` and the unsharded key, so only raise it while the
/// shards above the old count are read too.
pub const IN_FLIGHT_SHARDS: u32 = 64;

/// `in_flight` of a final record whose verdict is not yet announced (its unsharded form, which
/// items written before sharding still hold; `announce#<k>` since).
pub const ANNOUNCE: &str = "announce";

/// The shard of `id`: FNV-1a of its canonical text, so every build and both stores agree (the
/// std hasher is seeded per process).
pub fn shard(id: UploadId) -> u32 {
    let hash = id
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    u32::try_from(hash % u64::from(IN_FLIGHT_SHARDS)).unwrap_or(0)
}

fn sharded(kind: &str, id: UploadId) -> Value {
    text(format!("{kind}#{:02}", shard(id)))
}

/// The key of the sparse in-flight index: `<status>#<k>` while a session is `pending` (sorted
/// by its expiry: the sweep closes those whose multipart upload S3 has aborted), `completing`
/// or `verifying` (the sweep's re-drives), `announce#<k>` while a final verdict is unannounced,
/// else absent.
pub fn in_flight(status: Status, unannounced: bool, id: UploadId) -> Option<Value> {
    match status {
        Status::Pending | Status::Completing | Status::Verifying => {
            Some(sharded(status.as_str(), id))
        }
        _ if status.is_final() && unannounced => Some(sharded(ANNOUNCE, id)),
        _ => None,
    }
}

/// Every key of the index a `kind` (`pending`, `completing`, `verifying` or `announce`) is
/// spread over:
/// its shards, then the unsharded key items written before sharding hold.
pub fn in_flight_keys(kind: &str) -> Vec<String> {
    (0..IN_FLIGHT_SHARDS)
        .map(|k| format!("{kind}#{k:02}"))
        .chain([kind.to_owned()])
        .collect()
}

/// Whether an `in_flight` value marks a verdict not yet announced (sharded or not).
pub fn marks_unannounced(value: &str) -> bool {
    value
        .strip_prefix(ANNOUNCE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread_evenly() {
        let id = UploadId::parse("01JAAAAAAAAAAAAAAAAAAAAAAA").expect("a ulid");
        assert_eq!(shard(id), shard(id));
        let mut counts = [0u32; IN_FLIGHT_SHARDS as usize];
        for _ in 0..64_000 {
            counts[shard(UploadId::generate()) as usize] += 1;
        }
        // 1,000 expected per shard (σ ≈ 31); a skew past ±15 % would put a hot shard back.
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn every_kind_is_read_on_all_its_shards_and_its_unsharded_key() {
        let keys = in_flight_keys("announce");
        assert_eq!(keys.len(), IN_FLIGHT_SHARDS as usize + 1);
        assert!(keys.contains(&"announce#00".to_owned()) && keys.contains(&"announce".to_owned()));
        let id = UploadId::generate();
        for status in [Status::Completing, Status::Verifying] {
            let Some(Value::S(key)) = in_flight(status, false, id) else {
                panic!("in flight");
            };
            assert!(in_flight_keys(status.as_str()).contains(&key));
        }
        assert!(marks_unannounced("announce") && marks_unannounced("announce#31"));
        assert!(!marks_unannounced("announced") && !marks_unannounced("completing#01"));
    }
}
