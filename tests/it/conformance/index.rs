//! The sweep's reads of the sharded in-flight index through the DynamoDB adapter, on dynalite:
//! sessions spread over every shard and items written before sharding (unsharded keys) are all
//! found, oldest lease end first, and an old unannounced verdict is announced and cleared.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use vu_core::domain::{IN_FLIGHT_SHARDS, State, UploadId, Verified, shard};
use vu_core::ports::SessionStore;

use super::{Dynalite, fresh, holding, object, pending, states};
use crate::helpers::table;

/// Leases that ran out long before any other test's (theirs are 0, or near `EPOCH`), so the
/// order of these among what `stalled` returns is theirs alone.
const OLD: i64 = 1_000;

#[tokio::test]
async fn the_sweep_reads_every_shard_and_the_keys_written_before_sharding() {
    let Some(db) = Dynalite::new().await else {
        return;
    };
    let completing = states()
        .into_iter()
        .find(|(name, _)| *name == "completing")
        .map(|(_, r)| r)
        .unwrap_or_else(|| pending(vu_core::domain::Kind::Post, None));
    // 96 sessions whose holders died at OLD + i: every shard holds some.
    let mut mine = Vec::new();
    for i in 0..96 {
        let r = vu_core::domain::UploadRecord {
            state: holding(OLD + i, None, None),
            ..fresh(&completing)
        };
        db.sessions.create(&r).await.unwrap();
        mine.push((OLD + i, r.upload_id));
    }
    let shards: HashSet<u32> = mine.iter().map(|(_, id)| shard(*id)).collect();
    assert!(shards.len() as u32 > IN_FLIGHT_SHARDS / 2, "{shards:?}");
    // Two left by the release before sharding: `in_flight` unsharded.
    let mut legacy = Vec::new();
    for (kind, until) in [("completing", OLD + 10), ("verifying", OLD + 50)] {
        let r = vu_core::domain::UploadRecord {
            state: holding(until, None, None),
            ..fresh(&completing)
        };
        db.sessions.create(&r).await.unwrap();
        db.set_raw(r.upload_id, "in_flight", AttributeValue::S(kind.into()))
            .await;
        if kind == "verifying" {
            db.set_raw(r.upload_id, "status", AttributeValue::S(kind.into()))
                .await;
            db.remove_raw(r.upload_id, "lease_token").await;
        }
        legacy.push((until, r.upload_id));
    }
    let mut expected: Vec<_> = mine.iter().chain(&legacy).copied().collect();
    expected.sort_unstable();
    let expected: Vec<UploadId> = expected.into_iter().map(|(_, id)| id).collect();

    let read = std::time::Instant::now();
    let found = db.sessions.stalled(OLD + 1_000, 10_000).await.unwrap();
    let stalled_read = read.elapsed();
    let ours: Vec<_> = found
        .iter()
        .filter(|id| expected.contains(id))
        .copied()
        .collect();
    assert_eq!(
        ours, expected,
        "every shard and the unsharded keys, oldest first"
    );

    // Pending sessions, by expiry (their index `lease_until`), over every shard.
    let mut pendings = Vec::new();
    for i in 0..64 {
        let r = vu_core::domain::UploadRecord {
            state: State::Pending {
                expires_at: OLD + i,
            },
            ..fresh(&completing)
        };
        db.sessions.create(&r).await.unwrap();
        pendings.push((OLD + i, r.upload_id));
    }
    pendings.sort_unstable();
    let pendings: Vec<UploadId> = pendings.into_iter().map(|(_, id)| id).collect();
    let found = db.sessions.abandoned(OLD + 1_000, 10_000).await.unwrap();
    let ours: Vec<_> = found
        .iter()
        .filter(|id| pendings.contains(id))
        .copied()
        .collect();
    assert_eq!(ours, pendings, "every shard, soonest expiry first");
    assert!(
        db.sessions
            .abandoned(OLD, 10_000)
            .await
            .unwrap()
            .iter()
            .all(|id| !pendings.contains(id))
    );

    // Keys the sweep is asked to check (marker items beside the sessions): due ones only,
    // soonest first, over every shard; cleared once checked.
    let mut watched = Vec::new();
    for i in 0..40 {
        let id = UploadId::generate();
        db.sessions.watch_key(id, OLD + i).await.unwrap();
        watched.push(id);
    }
    let due = db.sessions.watched_keys(OLD + 1_000, 10_000).await.unwrap();
    let ours: Vec<_> = due
        .iter()
        .filter(|id| watched.contains(id))
        .copied()
        .collect();
    assert_eq!(ours, watched, "every shard, longest due first");
    let not_yet = db.sessions.watched_keys(OLD, 10_000).await.unwrap();
    assert!(not_yet.iter().all(|id| !watched.contains(id)));
    for id in &watched {
        db.sessions.unwatch_key(*id).await.unwrap();
    }
    let left = db.sessions.watched_keys(OLD + 1_000, 10_000).await.unwrap();
    assert!(left.iter().all(|id| !watched.contains(id)));

    // A verdict the release before sharding left unannounced (`announce`), beside new ones.
    let verified = vu_core::domain::UploadRecord {
        state: State::Verified(Verified {
            sha256: vu_core::domain::Sha256::of(b"v"),
            object: object("\"etag\"", Some("v1")),
            verified_at: "2030-03-17T17:00:00.000Z".into(),
            bytes: 1,
            announced: false,
            receipt: None,
        }),
        ..fresh(&completing)
    };
    let old = fresh(&verified);
    db.sessions.create(&verified).await.unwrap();
    db.sessions.create(&old).await.unwrap();
    db.set_raw(
        old.upload_id,
        "in_flight",
        AttributeValue::S("announce".into()),
    )
    .await;
    let unannounced = db.sessions.unannounced(10_000).await.unwrap();
    assert!(unannounced.contains(&verified.upload_id) && unannounced.contains(&old.upload_id));
    for id in [verified.upload_id, old.upload_id] {
        db.sessions.announced(id).await.unwrap();
        let raw = db.raw(id).await.unwrap();
        assert!(!raw.contains_key("in_flight"), "{raw:?}");
    }
    println!(
        "conformance: index read over {} shards and the unsharded keys: {} sessions in flight ({} keys read in {} ms), {} pending, {} keys to check and 2 verdicts found",
        IN_FLIGHT_SHARDS,
        expected.len(),
        2 * (IN_FLIGHT_SHARDS + 1),
        stalled_read.as_millis(),
        pendings.len(),
        watched.len()
    );
}

impl Dynalite {
    async fn set_raw(&self, id: UploadId, attr: &str, value: AttributeValue) {
        self.client
            .update_item()
            .table_name(table())
            .key("upload_id", AttributeValue::S(id.to_string()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .unwrap();
    }

    async fn remove_raw(&self, id: UploadId, attr: &str) {
        self.client
            .update_item()
            .table_name(table())
            .key("upload_id", AttributeValue::S(id.to_string()))
            .update_expression("REMOVE #a")
            .expression_attribute_names("#a", attr)
            .send()
            .await
            .unwrap();
    }
}
