//! Races sent truly at once (tokio tasks released together by a barrier) to a DynamoDB that
//! serializes the writes to each item: dynalite (`scripts/dynalite.sh`, which `make test` starts
//! and names in `DYNALITE_ENDPOINT`). moto checks a write's condition and applies it without
//! holding the item between the two (it lets both of a pair of exclusive transitions win in the
//! conformance races), so `limits` runs its creates one after another on moto; these race here.
//! - The owner's quota item (`quota#<owner>`), through the DynamoDB adapter: concurrent
//!   reservations never pass a limit and the item holds exactly the winners; give-backs racing
//!   new reservations (and each other) never take it past the limit nor below zero.
//! - The same through the service (`Uploads::create`, S3 in memory).
//! - Concurrent `complete`s of one session, fresh and after its holder died: one claim (or one
//!   take-over) is written, the object is completed and hashed once, and every caller answers
//!   the one verified record.
//! - Segment results landing at once on one record fanned out by segments, through the verifier
//!   worker (`Uploads::on_segment`, S3 in memory): each delivered twice, and from a holder that
//!   was taken over; each end is recorded once, none by the old holder, one verdict.
//!
//! Each test prints a `races:` line with its figures before it asserts (so a run pointed at
//! another DynamoDB, moto say, shows what it did), and without `DYNALITE_ENDPOINT` prints that
//! it skipped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Barrier;
use vu_aws::DynamoSessions;
use vu_core::domain::{ContentType, Filename, Metadata, UploadId};
use vu_core::error::Error;
use vu_core::memory::{Call, MemoryObjects};
use vu_core::ports::{OwnerLimit, OwnerLimits, Reservation, SessionStore};
use vu_core::service::{NewUpload, Uploads};
use vu_core::settings::{Limits, VerifyConfig};

use crate::conformance::{dynalite_endpoint, dynamodb_at};
use crate::helpers::table;

mod giveback;
mod leases;
mod quota;
mod segments;
mod sharded;

use quota::Quota;

/// Callers released at once in every race.
const RACERS: usize = 40;
/// The open-sessions limit the races fill.
const OPEN: u64 = 7;
/// The pending-bytes limit the races fill (reservations of 500 to 1,500 bytes).
const BYTES: u64 = 10_000;

/// dynalite's sessions table through the adapter, and a client for the raw items.
struct Db {
    sessions: Arc<DynamoSessions>,
    client: aws_sdk_dynamodb::Client,
}

impl Db {
    async fn new(test: &str) -> Option<Self> {
        let sdk = dynamodb_at(dynalite_endpoint(test)?).await;
        Some(Self {
            sessions: Arc::new(DynamoSessions::new(&sdk, table())),
            client: aws_sdk_dynamodb::Client::new(&sdk),
        })
    }

    /// The owner's reservations as stored (its shards under `limits`).
    async fn quota(&self, owner: &str, limits: OwnerLimits) -> Quota {
        Quota::read(&self.client, owner, limits).await
    }
}

fn epoch() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

fn owner() -> String {
    format!("races-{}", ulid::Ulid::new())
}

fn reservation(bytes: u64) -> Reservation {
    Reservation {
        id: UploadId::generate(),
        bytes,
        expires_at: epoch() + 3600,
    }
}

/// What one racer did.
enum Op {
    Reserve(Reservation),
    Unreserve(UploadId),
}

/// Runs `ops` for `owner` at once (each a task, all released by one barrier), reading the
/// quota item meanwhile: each reservation's outcome, and every item read that broke an
/// invariant, out of how many reads.
async fn at_once(
    db: &Arc<Db>,
    owner: &str,
    limits: OwnerLimits,
    ops: Vec<Op>,
) -> (Vec<(Reservation, Option<OwnerLimit>)>, Vec<String>, usize) {
    let barrier = Arc::new(Barrier::new(ops.len()));
    let tasks: Vec<_> = ops
        .into_iter()
        .map(|op| {
            let (db, barrier, owner) = (db.clone(), barrier.clone(), owner.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                match op {
                    Op::Reserve(r) => {
                        let refused = db.sessions.reserve(&owner, r, epoch(), limits).await;
                        Some((r, refused.unwrap()))
                    }
                    Op::Unreserve(id) => {
                        db.sessions.unreserve(&owner, id, limits).await.unwrap();
                        None
                    }
                }
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, done, owner) = (db.clone(), done.clone(), owner.to_owned());
        tokio::spawn(async move {
            let (mut broken, mut reads) = (Vec::new(), 0);
            while !done.load(Ordering::Relaxed) {
                reads += 1;
                broken.extend(db.quota(&owner, limits).await.broken(limits));
            }
            (broken, reads)
        })
    };
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let (broken, reads) = reader.await.unwrap();
    (outcomes, broken, reads)
}

fn winners(outcomes: &[(Reservation, Option<OwnerLimit>)]) -> Vec<Reservation> {
    outcomes
        .iter()
        .filter_map(|(r, refused)| refused.is_none().then_some(*r))
        .collect()
}

fn ids(rs: &[Reservation]) -> BTreeSet<String> {
    rs.iter().map(|r| r.id.to_string()).collect()
}

/// Every refusal names `limit`.
fn refused_by(outcomes: &[(Reservation, Option<OwnerLimit>)], limit: OwnerLimit) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|(r, refused)| match refused {
            Some(l) if *l != limit => Some(format!("{} refused by {l:?}, not {limit:?}", r.id)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_pass_an_owners_limits() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let db = Arc::new(db);
    let mut problems = Vec::new();

    // By open sessions: exactly OPEN of RACERS win, the item holds exactly them.
    let (alice, by_count) = (
        owner(),
        OwnerLimits {
            open_sessions: OPEN,
            pending_bytes: u64::MAX / 4,
        },
    );
    let ops = (0..RACERS)
        .map(|_| Op::Reserve(reservation(1000)))
        .collect();
    let (outcomes, mut broken, mut reads) = at_once(&db, &alice, by_count, ops).await;
    let won = winners(&outcomes);
    problems.extend(refused_by(&outcomes, OwnerLimit::OpenSessions(OPEN)));
    let stored = db.quota(&alice, by_count).await;
    if won.len() as u64 != OPEN {
        problems.push(format!("{} won a limit of {OPEN}", won.len()));
    }
    if stored.ids() != ids(&won) || stored.pending != 1000 * won.len() as i64 {
        problems.push(format!("{} won, the item holds {stored:?}", won.len()));
    }

    // By bytes, of mixed sizes: the winners fit, and no refused one fits beside them.
    let (bob, by_bytes) = (
        owner(),
        OwnerLimits {
            open_sessions: 1000,
            pending_bytes: BYTES,
        },
    );
    let sizes: Vec<u64> = (0..RACERS as u64)
        .map(|i| 500 + (i * 37 % 11) * 100)
        .collect();
    let ops = sizes.iter().map(|&b| Op::Reserve(reservation(b))).collect();
    let (outcomes, b, r) = at_once(&db, &bob, by_bytes, ops).await;
    (broken, reads) = ([broken, b].concat(), reads + r);
    let fit = winners(&outcomes);
    let held: u64 = fit.iter().map(|r| r.bytes).sum();
    problems.extend(refused_by(&outcomes, OwnerLimit::PendingBytes(BYTES)));
    let stored = db.quota(&bob, by_bytes).await;
    if held > BYTES || stored.ids() != ids(&fit) || stored.pending != held as i64 {
        problems.push(format!("{held} bytes won, the item holds {stored:?}"));
    }
    let would_fit = outcomes
        .iter()
        .filter(|(r, refused)| refused.is_some() && held + r.bytes <= BYTES)
        .count();
    if would_fit > 0 {
        problems.push(format!("{would_fit} refused that fit beside the winners"));
    }

    // The winners' give-backs, each sent twice, racing RACERS new reservations: never past the
    // limit nor below zero; the item ends holding exactly the new winners.
    let mut ops: Vec<Op> = won
        .iter()
        .flat_map(|r| [Op::Unreserve(r.id), Op::Unreserve(r.id)])
        .collect();
    ops.extend((0..RACERS).map(|_| Op::Reserve(reservation(1000))));
    let (outcomes, b, r) = at_once(&db, &alice, by_count, ops).await;
    (broken, reads) = ([broken, b].concat(), reads + r);
    let rewon = winners(&outcomes);
    problems.extend(refused_by(&outcomes, OwnerLimit::OpenSessions(OPEN)));
    let stored = db.quota(&alice, by_count).await;
    if stored.ids() != ids(&rewon) || stored.pending != 1000 * rewon.len() as i64 {
        problems.push(format!(
            "{} won after the give-backs, the item holds {stored:?}",
            rewon.len()
        ));
    }
    // And theirs, twice each at once: nothing held, nothing pending.
    let ops = rewon
        .iter()
        .flat_map(|r| [Op::Unreserve(r.id), Op::Unreserve(r.id)])
        .collect();
    let (_, b, r) = at_once(&db, &alice, by_count, ops).await;
    (broken, reads) = ([broken, b].concat(), reads + r);
    let emptied = db.quota(&alice, by_count).await;
    if !emptied.held.is_empty() || emptied.pending != 0 {
        problems.push(format!("all given back, the item holds {emptied:?}"));
    }

    println!(
        "races: {RACERS} concurrent reserves, {} winners (limit {OPEN} open sessions); \
         {RACERS} of 500-1,500 bytes, {} winners holding {held} bytes (limit {BYTES}); \
         {} give-backs (each twice) racing {RACERS} reserves, {} winners, then {} give-backs \
         (each twice) leave {} held, {} bytes; {reads} item reads meanwhile, {} broke an \
         invariant; {} problems",
        won.len(),
        fit.len(),
        won.len(),
        rewon.len(),
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

fn new_upload(size: u64) -> NewUpload {
    NewUpload {
        filename: Filename::parse("race.bin").unwrap(),
        size,
        content_type: ContentType::default(),
        sha256: None,
        part_size: None,
        metadata: Metadata::default(),
        part_checksums: false,
    }
}

/// `creates` creates and the aborts of `aborted` for `owner`, released at once: the sessions
/// created, and how many the open-sessions limit refused.
async fn creates_at_once(
    uploads: &Arc<Uploads>,
    owner: &str,
    creates: usize,
    aborted: &BTreeSet<UploadId>,
) -> (BTreeSet<UploadId>, usize) {
    let barrier = Arc::new(Barrier::new(creates + aborted.len()));
    let start = |abort: Option<UploadId>| {
        let (uploads, barrier, owner) = (uploads.clone(), barrier.clone(), owner.to_owned());
        tokio::spawn(async move {
            barrier.wait().await;
            match abort {
                Some(id) => uploads.abort(&owner, id).await.map(|()| None),
                None => uploads.create(&owner, new_upload(1000)).await.map(Some),
            }
        })
    };
    let tasks: Vec<_> = (aborted.iter().copied().map(Some))
        .chain((0..creates).map(|_| None))
        .map(start)
        .collect();
    let (mut created, mut refused) = (BTreeSet::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(Some(c)) => {
                created.insert(c.record.upload_id);
            }
            Ok(None) => {}
            Err(Error::OverLimit(OwnerLimit::OpenSessions(OPEN))) => refused += 1,
            Err(e) => panic!("neither done nor refused by the limit: {e:?}"),
        }
    }
    (created, refused)
}

fn strings(ids: &BTreeSet<UploadId>) -> BTreeSet<String> {
    ids.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_pass_an_owners_limit() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let objects = MemoryObjects::new();
    let limits = Limits {
        max_open_sessions_per_owner: OPEN,
        ..Limits::default()
    };
    let uploads = Arc::new(Uploads::new(
        objects.clone(),
        db.sessions.clone(),
        limits,
        VerifyConfig::default(),
    ));
    let owner = owner();
    let owner_limits = uploads.owner_limits();
    let none = BTreeSet::new();
    let (created, refused) = creates_at_once(&uploads, &owner, RACERS, &none).await;
    let stored = db.quota(&owner, owner_limits).await;
    let multiparts = objects.faults.count(Call::CreateMultipart);
    // Aborting them all races as many creates again.
    let (recreated, re_refused) = creates_at_once(&uploads, &owner, RACERS, &created).await;
    let restored = db.quota(&owner, owner_limits).await;
    creates_at_once(&uploads, &owner, 0, &recreated).await;
    let emptied = db.quota(&owner, owner_limits).await;
    println!(
        "races: {RACERS} concurrent creates through the service, {} created (limit {OPEN}), \
         {refused} refused by it, {multiparts} multipart uploads started, the item holds {}; \
         their {} aborts racing {RACERS} creates: {} created, {re_refused} refused, the item \
         holds {}; all aborted: {} held, {} bytes",
        created.len(),
        stored.held.len(),
        created.len(),
        recreated.len(),
        restored.held.len(),
        emptied.held.len(),
        emptied.pending,
    );
    assert_eq!(created.len() as u64, OPEN);
    assert_eq!(stored.ids(), strings(&created));
    assert_eq!(stored.pending, 1000 * OPEN as i64);
    assert_eq!(multiparts as u64, OPEN, "a refused create never reached S3");
    assert!(recreated.len() as u64 <= OPEN);
    assert_eq!(restored.ids(), strings(&recreated));
    assert_eq!(restored.pending, 1000 * recreated.len() as i64);
    assert!(
        emptied.held.is_empty() && emptied.pending == 0,
        "{emptied:?}"
    );
}
