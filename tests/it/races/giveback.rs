//! Reservations through the DynamoDB adapter on dynalite, not raced: a give-back DynamoDB
//! refuses (throttling) is retried by the sweep until the slot is free; a reopen extends every
//! entry of a session spread over shards; the single quota item of before counts against the
//! limits until it is empty, and its sessions give back there.
//! (Each prints a line of what it saw before it asserts.)

use std::sync::atomic::AtomicUsize;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, GlobalSecondaryIndex};
use vu_core::domain::{Change, Guard, Kind, PartNumber, Status, UploadRecord};
use vu_core::memory::MemoryAnnouncer;
use vu_core::ports::{Page, PageKey, PortError, Upstream};
use vu_core::service::Budget;

use super::*;

/// The adapter, its next `fail` give-backs refused as DynamoDB refuses a throttled write.
struct Throttled {
    inner: Arc<DynamoSessions>,
    fail: AtomicUsize,
}

#[async_trait]
impl SessionStore for Throttled {
    async fn create(&self, record: &UploadRecord) -> Result<(), PortError> {
        self.inner.create(record).await
    }

    async fn get(&self, id: UploadId) -> Result<Option<UploadRecord>, PortError> {
        self.inner.get(id).await
    }

    async fn list_by_owner(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<&PageKey>,
    ) -> Result<Page, PortError> {
        self.inner.list_by_owner(owner, status, limit, after).await
    }

    async fn transition(
        &self,
        id: UploadId,
        guard: Guard,
        change: Change,
        now: &str,
    ) -> Result<UploadRecord, PortError> {
        self.inner.transition(id, guard, change, now).await
    }

    async fn stalled(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.inner.stalled(now, limit).await
    }

    async fn abandoned(&self, before: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.inner.abandoned(before, limit).await
    }

    async fn watch_key(&self, id: UploadId, until: i64) -> Result<(), PortError> {
        self.inner.watch_key(id, until).await
    }

    async fn watched_keys(&self, now: i64, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.inner.watched_keys(now, limit).await
    }

    async fn unwatch_key(&self, id: UploadId) -> Result<(), PortError> {
        self.inner.unwatch_key(id).await
    }

    async fn unannounced(&self, limit: u32) -> Result<Vec<UploadId>, PortError> {
        self.inner.unannounced(limit).await
    }

    async fn announced(&self, id: UploadId) -> Result<(), PortError> {
        self.inner.announced(id).await
    }

    async fn reserve(
        &self,
        owner: &str,
        reservation: Reservation,
        now: i64,
        limits: OwnerLimits,
    ) -> Result<Option<OwnerLimit>, PortError> {
        self.inner.reserve(owner, reservation, now, limits).await
    }

    async fn unreserve(
        &self,
        owner: &str,
        id: UploadId,
        limits: OwnerLimits,
    ) -> Result<(), PortError> {
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(PortError::unavailable(
                Upstream::DynamoDB,
                "ProvisionedThroughputExceededException",
            ));
        }
        self.inner.unreserve(owner, id, limits).await
    }

    async fn extend(
        &self,
        owner: &str,
        id: UploadId,
        expires_at: i64,
        limits: OwnerLimits,
    ) -> Result<bool, PortError> {
        self.inner.extend(owner, id, expires_at, limits).await
    }
}

/// A table of its own, defined as the shared one: the sweep below settles every marked record
/// it finds, which must not touch what the tests running beside it wrote.
async fn own_table(client: &aws_sdk_dynamodb::Client) -> String {
    let shared = client
        .describe_table()
        .table_name(table())
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let name = format!("giveback-{}", ulid::Ulid::new());
    let indexes = shared
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            GlobalSecondaryIndex::builder()
                .index_name(i.index_name().unwrap())
                .set_key_schema(Some(i.key_schema().to_vec()))
                .set_projection(i.projection().cloned())
                .build()
                .unwrap()
        })
        .collect();
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(shared.attribute_definitions().to_vec()))
        .set_key_schema(Some(shared.key_schema().to_vec()))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .unwrap();
    name
}

/// How many open-session slots `owner` holds (one shard: its limit is 1).
async fn slots(client: &aws_sdk_dynamodb::Client, table: &str, owner: &str) -> usize {
    let item = client
        .get_item()
        .table_name(table)
        .key("upload_id", AttributeValue::S(format!("quotas#0#{owner}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.get("slots").map_or(0, |m| m.as_m().unwrap().len())
}

#[tokio::test]
async fn a_give_back_refused_by_dynamodb_is_retried_by_the_sweep_until_the_slot_is_free() {
    let Some(endpoint) = dynalite_endpoint("races") else {
        return;
    };
    let sdk = dynamodb_at(endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = own_table(&client).await;
    let sessions = Arc::new(Throttled {
        inner: Arc::new(DynamoSessions::new(&sdk, &table)),
        fail: AtomicUsize::new(0),
    });
    let objects = MemoryObjects::new();
    let limits = Limits {
        max_open_sessions_per_owner: 1,
        ..Limits::default()
    };
    let announcer = MemoryAnnouncer::new();
    let uploads = Uploads::new(
        objects.clone(),
        sessions.clone(),
        limits,
        VerifyConfig::default(),
    )
    .with_announcer(announcer.clone());
    let owner = owner();
    let data = vec![7u8; 1000];
    let created = uploads.create(&owner, new_upload(1000)).await.unwrap();
    let id = created.record.upload_id;
    let Kind::Multipart { s3_upload_id, .. } = &created.record.kind else {
        panic!("a multipart session");
    };
    objects
        .put_part(s3_upload_id, PartNumber::new(1).unwrap(), &data, None)
        .unwrap();
    // Throttled at the verdict and at the sweep's first try.
    sessions.fail.store(2, Ordering::SeqCst);
    let budget = Budget::request(uploads.limits());
    let verified = uploads
        .complete(&owner, id, None, None, budget)
        .await
        .unwrap();
    assert_eq!(verified.status(), Status::Verified);
    let held = slots(&client, &table, &owner).await;
    let refused = uploads.create(&owner, new_upload(1)).await.unwrap_err();
    assert!(fails_with_open_sessions(&refused), "{refused:?}");
    assert!(uploads.sweep(10, Budget::verifier(None)).await.is_err());
    let still = slots(&client, &table, &owner).await;
    uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    let freed = slots(&client, &table, &owner).await;
    let record = sessions.get(id).await.unwrap().unwrap();
    let again = uploads.create(&owner, new_upload(1)).await;
    println!(
        "give-back: refused twice, the slot held after the verdict ({}) and the sweep's first try \
         ({}), freed by the second ({}), mark cleared: {}, the next create: {}",
        held,
        still,
        freed,
        !record.unannounced(),
        if again.is_ok() { "created" } else { "refused" },
    );
    assert_eq!((held, still, freed), (1, 1, 0));
    assert!(!record.unannounced());
    assert_eq!(announcer.of(id), [Status::Verified, Status::Verified]);
    again.unwrap();
}

fn fails_with_open_sessions(e: &Error) -> bool {
    matches!(e, Error::OverLimit(OwnerLimit::OpenSessions(1)))
}

#[tokio::test]
async fn a_reopen_extends_every_entry_of_a_spread_reservation() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    // 3 shards of 100 bytes: 250 bytes take three.
    let limits = OwnerLimits {
        open_sessions: 300,
        pending_bytes: 300,
    };
    let owner = owner();
    let r = reservation(250);
    assert_eq!(
        db.sessions
            .reserve(&owner, r, epoch(), limits)
            .await
            .unwrap(),
        None
    );
    let later = r.expires_at + 3600;
    let extended = db
        .sessions
        .extend(&owner, r.id, later, limits)
        .await
        .unwrap();
    let stored = expiries(&db, &owner, r.id).await;
    // Nothing held: not extended.
    let none = reservation(1).id;
    let not_held = db
        .sessions
        .extend(&owner, none, later, limits)
        .await
        .unwrap();
    println!(
        "extend: {} entries of one session, expiring at {stored:?}",
        stored.len()
    );
    assert!(extended && !not_held);
    assert!(stored.len() >= 3, "{stored:?}");
    assert!(stored.iter().all(|&e| e == later), "{stored:?}");
    db.sessions.unreserve(&owner, r.id, limits).await.unwrap();
    assert!(expiries(&db, &owner, r.id).await.is_empty());
    let emptied = db.quota(&owner, limits).await;
    assert!(
        emptied.held.is_empty() && emptied.pending == 0,
        "{emptied:?}"
    );
}

/// Every expiry stored for `id` in `owner`'s 3 shards: its entries and its pointer.
async fn expiries(db: &Db, owner: &str, id: UploadId) -> Vec<i64> {
    let mut found = Vec::new();
    for k in 0..3 {
        let item = db
            .client
            .get_item()
            .table_name(table())
            .key(
                "upload_id",
                AttributeValue::S(format!("quotas#{k}#{owner}")),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_default();
        for map in ["slots", "extra", "spill"] {
            if let Some(e) = item
                .get(map)
                .and_then(|m| m.as_m().ok())
                .and_then(|m| m.get(&id.to_string()))
            {
                found.push(e.as_m().unwrap()["e"].as_n().unwrap().parse().unwrap());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_single_item_of_before_counts_until_empty_and_its_sessions_give_back_there() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let limits = OwnerLimits {
        open_sessions: 3,
        pending_bytes: 10_000,
    };
    let owner = owner();
    // What the release before wrote: two sessions, 6,000 bytes.
    let old: Vec<_> = (0..2).map(|_| reservation(3_000)).collect();
    let entries = old
        .iter()
        .map(|r| {
            let entry = AttributeValue::M(
                [
                    ("bytes".to_owned(), AttributeValue::N(r.bytes.to_string())),
                    (
                        "expires_at".to_owned(),
                        AttributeValue::N(r.expires_at.to_string()),
                    ),
                ]
                .into(),
            );
            (r.id.to_string(), entry)
        })
        .collect();
    db.client
        .put_item()
        .table_name(table())
        .item("upload_id", AttributeValue::S(format!("quota#{owner}")))
        .item("reservations", AttributeValue::M(entries))
        .item("pending_bytes", AttributeValue::N("6000".into()))
        .send()
        .await
        .unwrap();
    let reserve = |r: Reservation| {
        let db = &db;
        let owner = &owner;
        async move {
            db.sessions
                .reserve(owner, r, epoch(), limits)
                .await
                .unwrap()
        }
    };
    // 4,000 bytes and one session left.
    let too_large = reserve(reservation(4_001)).await;
    let fits = reservation(4_000);
    let fitted = reserve(fits).await;
    let no_slot = reserve(reservation(1)).await;
    // One old session gives back (in the old item): its slot and bytes are free again.
    db.sessions
        .unreserve(&owner, old[0].id, limits)
        .await
        .unwrap();
    let after_one = reserve(reservation(3_000)).await;
    let after_one_more = reserve(reservation(1)).await;
    println!(
        "legacy: with 2 sessions of 3,000 bytes in the old item, 4,001 bytes {too_large:?}, 4,000 \
         {fitted:?}, one more {no_slot:?}; one old given back: 3,000 {after_one:?}, one more {after_one_more:?}"
    );
    assert_eq!(too_large, Some(OwnerLimit::PendingBytes(10_000)));
    assert_eq!(fitted, None);
    assert_eq!(no_slot, Some(OwnerLimit::OpenSessions(3)));
    assert_eq!(after_one, None);
    assert_eq!(after_one_more, Some(OwnerLimit::OpenSessions(3)));
}
