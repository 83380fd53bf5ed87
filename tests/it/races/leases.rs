//! Concurrent `complete`s of one uploaded session through the service: S3 in memory (which
//! counts its calls), the sessions on dynalite through the adapter (wrapped to count the claims
//! tried and written). Fresh, exactly one claim is written; after a holder died, exactly one
//! take-over. Either way the object is completed and hashed once, and every caller answers the
//! one verified record.

use std::sync::Mutex;

use async_trait::async_trait;
use vu_core::domain::{
    Change, Guard, Kind, LeaseToken, PartNumber, Sha256, Status, UploadRecord, timestamp_now,
};
use vu_core::ports::{Page, PageKey, PortError};
use vu_core::service::Budget;

use super::*;

/// The session's size: one part, hashed in `RANGE`-byte ranges.
const SIZE: usize = 2 * 1024 * 1024 + 1000;
const RANGE: u64 = 64 * 1024;
const VERIFY: VerifyConfig = VerifyConfig {
    concurrency: 2,
    range_bytes: RANGE,
    prefetch: 1,
    stall_timeout: Duration::from_secs(2),
    fan_out: true,
};
/// Long enough for every waiter to see the verdict: no 202 expected.
const WAIT: Duration = Duration::from_secs(30);

/// One transition tried through `Counted`: its guard and change, and whether it was written or
/// refused by its condition.
pub(super) struct Logged {
    pub guard: Guard,
    pub change: Change,
    pub written: bool,
    pub refused: bool,
}

/// The adapter, logging each transition tried through it (`segments` reads the log too).
pub(super) struct Counted {
    inner: Arc<DynamoSessions>,
    pub log: Mutex<Vec<Logged>>,
}

impl Counted {
    pub(super) fn new(inner: Arc<DynamoSessions>) -> Self {
        Self {
            inner,
            log: Mutex::default(),
        }
    }

    /// (claims tried, claims written, verdicts written).
    fn counts(&self) -> (usize, usize, usize) {
        let log = self.log.lock().unwrap();
        let claims = log
            .iter()
            .filter(|l| matches!(l.change, Change::Claim { .. }));
        let written = claims.clone().filter(|l| l.written).count();
        let verdicts = log
            .iter()
            .filter(|l| l.written && l.change.status() == Status::Verified)
            .count();
        (claims.count(), written, verdicts)
    }
}

#[async_trait]
impl SessionStore for Counted {
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
        let logged = change.clone();
        let written = self.inner.transition(id, guard, change, now).await;
        self.log.lock().unwrap().push(Logged {
            guard,
            change: logged,
            written: written.is_ok(),
            refused: matches!(written, Err(PortError::PreconditionFailed)),
        });
        written
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

/// One race of `RACERS` completes, on a fresh session or on one whose holder died: its figure
/// line and what went wrong.
async fn race(db: &Db, dead_holder: bool) -> (String, Vec<String>) {
    let objects = MemoryObjects::new();
    let sessions = Arc::new(Counted::new(db.sessions.clone()));
    let limits = Limits {
        completion_wait: WAIT,
        ..Limits::default()
    };
    let uploads = Arc::new(Uploads::new(
        objects.clone(),
        sessions.clone(),
        limits,
        VERIFY,
    ));
    let owner = owner();
    let data = crate::helpers::data(SIZE, 7);
    let req = NewUpload {
        sha256: Some(Sha256::of(&data)),
        ..new_upload(SIZE as u64)
    };
    let record = uploads.create(&owner, req).await.unwrap().record;
    let Kind::Multipart { s3_upload_id, .. } = &record.kind else {
        panic!("a sized session is multipart");
    };
    let part = PartNumber::new(1).unwrap();
    objects.put_part(s3_upload_id, part, &data, None).unwrap();
    let id = record.upload_id;
    if dead_holder {
        // Claimed by a holder that died: its lease ran out a second ago.
        let claim = Change::Claim {
            lease_until: epoch() - 1,
            token: LeaseToken::generate(),
            sized: None,
            expected_sha256: None,
            part_states: None,
        };
        let guard = Guard::status(Status::Pending);
        let now = timestamp_now();
        db.sessions
            .transition(id, guard, claim, &now)
            .await
            .unwrap();
    }

    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (uploads, barrier, owner) = (uploads.clone(), barrier.clone(), owner.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let budget = Budget::request(uploads.limits());
                uploads.complete(&owner, id, None, None, budget).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let stored = db.sessions.get(id).await.unwrap().unwrap();
    let mut problems = Vec::new();
    if stored.status() != Status::Verified || stored.sha256() != Some(Sha256::of(&data)) {
        problems.push(format!("stored {stored:?}"));
    }
    let (mut verified, mut running) = (0, 0);
    for answer in &answers {
        match answer {
            Ok(r) if *r == stored => verified += 1,
            Ok(r) if matches!(r.status(), Status::Completing | Status::Verifying) => running += 1,
            other => problems.push(format!("answered {other:?}, stored {stored:?}")),
        }
    }
    let (tried, claimed, verdicts) = sessions.counts();
    let s3 = |call| objects.faults.count(call);
    let (gets, heads, completed) = (
        s3(Call::GetRange),
        s3(Call::Head),
        s3(Call::CompleteMultipart),
    );
    let ranges = (SIZE as u64).div_ceil(RANGE) as usize;
    if (claimed, verdicts, completed, heads, gets) != (1, 1, 1, 1, ranges) {
        problems.push(format!(
            "{claimed} claims and {verdicts} verdicts written, {completed} completed in S3, \
             {heads} HEADs, {gets} ranged GETs for {ranges} ranges"
        ));
    }
    let quota = db.quota(&owner, uploads.owner_limits()).await;
    if !quota.held.is_empty() || quota.pending != 0 {
        problems.push(format!("the verdict left the quota item holding {quota:?}"));
    }
    let claim = if dead_holder { "take-over" } else { "claim" };
    let line = format!(
        "{RACERS} concurrent completes of one {SIZE}-byte session{}: {claimed} {claim} written \
         of {tried} tried, {verdicts} verdict written, {verified} answered the verified record \
         ({running} running: 202), {completed} multipart completion, {heads} HEAD, {gets} ranged \
         GETs for {ranges} ranges, {} ListParts",
        if dead_holder {
            " whose holder died"
        } else {
            ""
        },
        s3(Call::ListParts),
    );
    (line, problems)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completes_claim_once_and_hash_once() {
    let Some(db) = Db::new("races").await else {
        return;
    };
    let mut problems = Vec::new();
    for dead_holder in [false, true] {
        let (line, p) = race(&db, dead_holder).await;
        println!("races: {line}; {} problems", p.len());
        for p in p.iter().take(10) {
            println!("  {p}");
        }
        problems.extend(p);
    }
    assert!(problems.is_empty(), "{} problems", problems.len());
}
