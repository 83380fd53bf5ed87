//! State-machine tests over the in-memory ports: racing callers (`tokio::join!` interleaves them
//! at every port call), dead holders (a shared `Clock` expires their leases), upstream faults at
//! every step, and the verifier's events and continuations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Budget, Clock, EventOutcome, NewUpload, UnsizedUpload, Uploads};
use crate::domain::{
    ContentType, Filename, Hold, Kind, Lease, LeaseToken, ListedPart, Metadata, PartNumber,
    PartsError, Pinned, Sha256, State, Status, UploadId, UploadRecord,
};
use crate::error::{Action, Conflict, Error};
use crate::memory::{Call, MemoryAnnouncer, MemoryObjects, MemorySessions};
use crate::ports::{ObjectStore, PortError, Upstream};
use crate::settings::{Limits, VerifyConfig};

/// A plain release (no fault), as a holder that lets go writes it.
const RELEASE: crate::domain::Change = crate::domain::Change::Release {
    fault: None,
    retry_at: None,
};
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const OWNER: &str = "alice";
const LEASE: Duration = Duration::from_secs(60);
/// One range of the verifier's reads.
const RANGE: u64 = 64 * KIB;
const VERIFY: VerifyConfig = VerifyConfig {
    concurrency: 2,
    range_bytes: RANGE,
    prefetch: 1,
    stall_timeout: Duration::from_secs(1),
    fan_out: true,
};

fn limits() -> Limits {
    Limits {
        completion_lease: LEASE,
        completion_wait: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// `limits` with multipart sessions of undeclared size allowed (`ALLOW_UNSIZED_SESSIONS`).
fn unsized_allowed(limits: Limits) -> Limits {
    Limits {
        unsized_sessions: true,
        ..limits
    }
}

/// Objects over 100 KiB go to the verifier function.
fn large_limits() -> Limits {
    Limits {
        verify_inline_max_bytes: 100 * KIB,
        ..limits()
    }
}

/// A second `complete` answers the record still held (202) at once instead of waiting for a
/// live lease.
fn impatient_limits() -> Limits {
    Limits {
        completion_wait: Duration::ZERO,
        ..limits()
    }
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn bytes(len: u64, seed: u32) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9 ^ seed.wrapping_mul(0x85EB_CA6B);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn part(n: u64) -> PartNumber {
    PartNumber::new(n).unwrap()
}

fn s3_upload_id(record: &UploadRecord) -> String {
    match &record.kind {
        Kind::Multipart { s3_upload_id, .. } => s3_upload_id.clone(),
        Kind::Post => panic!("a posted upload has no multipart upload"),
    }
}

fn declared(sha256: Option<Sha256>) -> UnsizedUpload {
    UnsizedUpload {
        filename: Filename::parse("file.bin").unwrap(),
        content_type: ContentType::default(),
        sha256,
        metadata: Metadata::default(),
    }
}

fn done(outcome: EventOutcome) -> UploadRecord {
    match outcome {
        EventOutcome::Done(r) => *r,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn paused(outcome: EventOutcome) -> UploadRecord {
    match outcome {
        EventOutcome::Paused(r) => *r,
        other => panic!("expected Paused, got {other:?}"),
    }
}

/// The service over in-memory S3 and DynamoDB, on a clock the test moves.
struct Fx {
    objects: Arc<MemoryObjects>,
    sessions: Arc<MemorySessions>,
    /// Every instance announces its verdicts here.
    announcer: Arc<MemoryAnnouncer>,
    clock: Clock,
    uploads: Uploads,
}

impl Fx {
    fn new(limits: Limits) -> Self {
        let objects = MemoryObjects::new();
        let sessions = MemorySessions::new();
        let clock = Clock::default();
        let announcer = MemoryAnnouncer::new();
        let uploads = Uploads::new(objects.clone(), sessions.clone(), limits, VERIFY)
            .with_clock(clock.clone())
            .with_announcer(announcer.clone());
        Self {
            objects,
            sessions,
            announcer,
            clock,
            uploads,
        }
    }

    /// Another service instance (another Lambda) over the same stores and clock.
    fn other(&self, limits: Limits) -> Uploads {
        Uploads::new(self.objects.clone(), self.sessions.clone(), limits, VERIFY)
            .with_clock(self.clock.clone())
            .with_announcer(self.announcer.clone())
    }

    /// A sized session in parts of 5 MiB.
    async fn create(&self, size: u64, sha256: Option<Sha256>) -> UploadRecord {
        let req = NewUpload {
            filename: Filename::parse("file.bin").unwrap(),
            size,
            content_type: ContentType::default(),
            sha256,
            part_size: Some(5 * MIB),
            metadata: Metadata::default(),
            part_checksums: false,
        };
        let created = self.uploads.create(OWNER, req).await.unwrap();
        assert_eq!(created.record.status(), Status::Pending);
        created.record
    }

    /// PUTs `data` to every planned part, as the client would.
    fn put_parts(&self, record: &UploadRecord, data: &[u8]) {
        let plan = record.plan.unwrap();
        let id = s3_upload_id(record);
        for n in plan.parts() {
            let start = usize::try_from(n.index() * plan.part_size()).unwrap();
            let end = start + usize::try_from(plan.part_len(n)).unwrap();
            self.objects
                .put_part(&id, n, &data[start..end], None)
                .unwrap();
        }
    }

    /// A session whose parts are all uploaded, declaring `sha256`.
    async fn uploaded(&self, data: &[u8], sha256: Option<Sha256>) -> UploadRecord {
        let record = self.create(data.len() as u64, sha256).await;
        self.put_parts(&record, data);
        record
    }

    async fn complete(&self, id: UploadId) -> Result<UploadRecord, Error> {
        self.uploads
            .complete(
                OWNER,
                id,
                None,
                None,
                Budget::request(self.uploads.limits()),
            )
            .await
    }

    /// One verifier run that pauses at once (its deadline has passed): `verifying`, with the
    /// progress of the ranges in flight saved.
    async fn pause_once(&self, id: UploadId) -> UploadRecord {
        let past = Some(Instant::now());
        paused(
            self.uploads
                .continue_verification(id, Budget::verifier(past))
                .await
                .unwrap(),
        )
    }

    fn peek(&self, id: UploadId) -> UploadRecord {
        self.sessions.peek(id).unwrap()
    }

    fn s3(&self, call: Call) -> usize {
        self.objects.faults.count(call)
    }

    fn db(&self, call: Call) -> usize {
        self.sessions.faults.count(call)
    }

    /// Makes the next `call` fail with `Unavailable`, on whichever store serves it.
    fn fail_once(&self, call: Call) {
        match call {
            Call::Transition(_) | Call::GetSession | Call::CreateSession | Call::ListSessions => {
                self.sessions.faults.fail(call, 1)
            }
            _ => self.objects.faults.fail(call, 1),
        }
    }
}

fn assert_verified(record: &UploadRecord, data: &[u8]) {
    assert_eq!(record.status(), Status::Verified, "{record:?}");
    assert_eq!(record.sha256(), Some(Sha256::of(data)));
    assert_eq!(record.verified_bytes(), data.len() as u64);
    assert_eq!(record.lease_until(), 0);
    assert_eq!(record.saved_progress(), None);
    assert_eq!(record.expires_at(), None);
    assert!(record.error().is_none() && record.verified_at().is_some());
}

mod abandoned;
mod ambiguous;
mod announcements;
mod chained;
mod completion;
mod fanout;
mod fanout_review;
mod fanout_seal;
mod faults;
mod guarantees;
mod limits;
mod progress_seal;
mod receipts;
mod recovery;
mod reservations;
mod sessions;
mod sweep;
mod verdicts;
mod verifier;
mod versions;
