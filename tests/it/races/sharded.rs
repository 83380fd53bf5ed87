//! An owner's reservations over several shards (its limits past 100 open sessions), through
//! the DynamoDB adapter on dynalite: racing creates never pass a limit (in all, nor in any
//! shard), a session larger than a shard's room takes its bytes from several and gives all of
//! them back, give-backs race creates; and one owner holds 10,000 open sessions, each write a
//! few WCU (figures: item sizes, ReturnConsumedCapacity).

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use futures::StreamExt;

use super::*;

/// 3 shards: 84, 83 and 83 open sessions, 10,000 bytes each.
const SHARDED: OwnerLimits = OwnerLimits {
    open_sessions: 250,
    pending_bytes: 30_000,
};

/// Reserves `rs` one after another, each expected to fit.
async fn reserve_all(db: &Db, owner: &str, rs: &[Reservation], limits: OwnerLimits) {
    for r in rs {
        let refused = db
            .sessions
            .reserve(owner, *r, epoch(), limits)
            .await
            .unwrap();
        assert_eq!(refused, None, "{} of {} bytes", r.id, r.bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_sharded_reservations_never_pass_an_owners_limits() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let db = Arc::new(db);
    let mut problems = Vec::new();
    let carol = owner();
    assert_eq!(vu_aws::shards_for(SHARDED), 3);

    // 225 sessions of 100 bytes: 25 open sessions and 7,500 bytes left, ~2,500 a shard.
    let before: Vec<_> = (0..225).map(|_| reservation(100)).collect();
    reserve_all(&db, &carol, &before, SHARDED).await;
    // One of 4,000 bytes: more than any shard has room for, so it takes from several.
    let large = reservation(4_000);
    reserve_all(&db, &carol, &[large], SHARDED).await;
    let stored = db.quota(&carol, SHARDED).await;
    let spread = stored
        .shards
        .iter()
        .filter(|s| {
            s.slots.contains_key(&large.id.to_string())
                || s.extra.contains_key(&large.id.to_string())
        })
        .count();
    if spread < 2 || stored.held[&large.id.to_string()] != 4_000 {
        problems.push(format!(
            "the large session is held in {spread} shards: {stored:?}"
        ));
    }
    problems.extend(stored.broken(SHARDED));

    // RACERS at once, 100 to 1,000 bytes: 24 open sessions and 3,500 bytes left.
    let sizes: Vec<u64> = (0..RACERS as u64)
        .map(|i| 100 + (i * 37 % 10) * 100)
        .collect();
    let ops = sizes.iter().map(|&b| Op::Reserve(reservation(b))).collect();
    let (outcomes, mut broken, mut reads) = at_once(&db, &carol, SHARDED, ops).await;
    let won = winners(&outcomes);
    let stored = db.quota(&carol, SHARDED).await;
    let won_bytes: u64 = won.iter().map(|r| r.bytes).sum();
    let expected: BTreeSet<String> = ids(&before)
        .into_iter()
        .chain(ids(&[large]))
        .chain(ids(&won))
        .collect();
    if stored.ids() != expected || stored.pending != 22_500 + 4_000 + won_bytes as i64 {
        problems.push(format!(
            "{} won ({won_bytes} bytes), the shards hold {stored:?}",
            won.len()
        ));
    }
    let open_left = 250 - 226 - won.len() as u64;
    let bytes_left = 30_000 - 26_500 - won_bytes;
    let would_fit = outcomes
        .iter()
        .filter(|(r, refused)| refused.is_some() && open_left > 0 && r.bytes <= bytes_left)
        .count();
    if would_fit > 0 {
        problems.push(format!("{would_fit} refused that fit beside the winners"));
    }

    // The large one's give-back and the winners', each twice, racing RACERS creates.
    let mut ops: Vec<Op> = won
        .iter()
        .chain([&large])
        .flat_map(|r| [Op::Unreserve(r.id), Op::Unreserve(r.id)])
        .collect();
    ops.extend((0..RACERS).map(|_| Op::Reserve(reservation(300))));
    let (outcomes, b, r) = at_once(&db, &carol, SHARDED, ops).await;
    (broken, reads) = ([broken, b].concat(), reads + r);
    let rewon = winners(&outcomes);
    let stored = db.quota(&carol, SHARDED).await;
    let expected: BTreeSet<String> = ids(&before).into_iter().chain(ids(&rewon)).collect();
    if stored.ids() != expected
        || stored.held.len() != expected.len()
        || stored.pending != 22_500 + 300 * rewon.len() as i64
    {
        problems.push(format!(
            "{} won after the give-backs, the shards hold {stored:?}",
            rewon.len()
        ));
    }
    // And every one given back (twice, at once): nothing held in any shard.
    let ops = before
        .iter()
        .chain(&rewon)
        .flat_map(|r| [Op::Unreserve(r.id), Op::Unreserve(r.id)])
        .collect();
    let (_, b, r) = at_once(&db, &carol, SHARDED, ops).await;
    (broken, reads) = ([broken, b].concat(), reads + r);
    let emptied = db.quota(&carol, SHARDED).await;
    if !emptied.held.is_empty() || emptied.pending != 0 {
        problems.push(format!("all given back, the shards hold {emptied:?}"));
    }
    println!(
        "races: {RACERS} concurrent creates over 3 shards (limits 250 open, 30,000 bytes; 226 \
         held, one of 4,000 bytes over {spread} shards): {} winners holding {won_bytes} bytes; \
         {} give-backs (each twice) racing {RACERS} creates, {} winners; all given back: {} \
         held, {} bytes; {reads} reads meanwhile, {} broke an invariant; {} problems",
        won.len(),
        won.len() + 1,
        rewon.len(),
        emptied.held.len(),
        emptied.pending,
        broken.len(),
        problems.len(),
    );
    for p in problems.iter().chain(&broken).take(10) {
        println!("  {p}");
    }
    assert!(problems.is_empty() && broken.is_empty());
}

/// The WCU dynalite bills for one write to `key` of the size it has (a no-op `SET`).
async fn wcu_of(db: &Db, key: &str) -> f64 {
    let out = db
        .client
        .update_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(key.to_owned()))
        .update_expression("SET pending_bytes = pending_bytes + :zero")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    out.consumed_capacity()
        .and_then(|c| c.capacity_units())
        .unwrap_or(f64::NAN)
}

/// Sessions one owner holds open at once in the test below.
const MANY: u64 = 10_000;
/// Reservations sent at once while filling.
const IN_FLIGHT: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_owner_holds_ten_thousand_open_sessions() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let limits = OwnerLimits {
        open_sessions: MANY,
        pending_bytes: u64::MAX / 4,
    };
    let dave = owner();
    let all: Vec<_> = (0..MANY)
        .map(|_| reservation(5 * 1024 * 1024 * 1024))
        .collect();
    let started = Instant::now();
    let refused: usize = futures::stream::iter(&all)
        .map(|r| {
            let (db, dave) = (&db, &dave);
            async move {
                db.sessions
                    .reserve(dave, *r, epoch(), limits)
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|refused| std::future::ready(refused.is_some()))
        .count()
        .await;
    let filled = started.elapsed();
    let one_more = db
        .sessions
        .reserve(&dave, reservation(1), epoch(), limits)
        .await
        .unwrap();
    let stored = db.quota(&dave, limits).await;
    let largest = stored.shards.iter().map(|s| s.size).max().unwrap_or(0);
    let fullest = (0u32..)
        .zip(&stored.shards)
        .max_by_key(|(_, s)| s.size)
        .map_or(0, |(k, _)| k);
    let wcu = wcu_of(&db, &format!("quotas#{fullest}#{dave}")).await;
    let started = Instant::now();
    futures::stream::iter(&all)
        .map(|r| {
            let (db, dave) = (&db, &dave);
            async move { db.sessions.unreserve(dave, r.id, limits).await.unwrap() }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    let emptied_in = started.elapsed();
    let emptied = db.quota(&dave, limits).await;
    println!(
        "quota: {MANY} open sessions of one owner over {} shards in {:.1} s ({:.0} creates/s on \
         dynalite, {IN_FLIGHT} at once), {refused} refused, the next one refused by {one_more:?}; \
         the largest shard item {largest} bytes ({} slots), a write to it {wcu} WCU; all given \
         back in {:.1} s: {} held, {} bytes",
        stored.shards.len(),
        filled.as_secs_f64(),
        MANY as f64 / filled.as_secs_f64(),
        stored
            .shards
            .iter()
            .map(|s| s.slots.len())
            .max()
            .unwrap_or(0),
        emptied_in.as_secs_f64(),
        emptied.held.len(),
        emptied.pending,
    );
    assert_eq!(refused, 0);
    assert_eq!(stored.open() as u64, MANY);
    assert_eq!(stored.broken(limits), None);
    assert_eq!(one_more, Some(OwnerLimit::OpenSessions(MANY)));
    assert!(
        largest < 8 * 1024,
        "a shard item stays small: {largest} bytes"
    );
    assert!(emptied.held.is_empty() && emptied.pending == 0);
}
