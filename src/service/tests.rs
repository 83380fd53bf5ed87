//! State-machine tests over the in-memory ports: racing callers (`tokio::join!` interleaves them
//! at every port call), dead holders (a shared `Clock` expires their leases), upstream faults at
//! every step, and the verifier's events and continuations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::{Clock, EventOutcome, NewUpload, UnsizedUpload, Uploads};
use crate::config::{Limits, VerifyConfig};
use crate::domain::{
    ContentType, Filename, Kind, ListedPart, Metadata, PartNumber, PartsError, Sha256, Status,
    UploadId, UploadRecord,
};
use crate::error::Error;
use crate::http::problem::Problem;
use crate::memory::{Call, MemoryObjects, MemorySessions};
use crate::ports::{ObjectStore, PortError};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const OWNER: &str = "alice";
const LEASE: Duration = Duration::from_secs(60);
/// One range of the verifier's reads.
const RANGE: u64 = 64 * KIB;
const VERIFY: VerifyConfig = VerifyConfig {
    concurrency: 2,
    range_bytes: RANGE,
    stall_timeout: Duration::from_secs(1),
};

fn limits() -> Limits {
    Limits {
        completion_lease: LEASE,
        completion_wait: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Objects over 100 KiB go to the verifier function.
fn large_limits() -> Limits {
    Limits {
        verify_inline_max_bytes: 100 * KIB,
        ..limits()
    }
}

/// A second `complete` answers 409 at once instead of waiting for a live lease.
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

fn http_status(e: Error) -> StatusCode {
    Problem::from(e).status
}

/// The service over in-memory S3 and DynamoDB, on a clock the test moves.
struct Fx {
    objects: Arc<MemoryObjects>,
    sessions: Arc<MemorySessions>,
    clock: Clock,
    uploads: Uploads,
}

impl Fx {
    fn new(limits: Limits) -> Self {
        let objects = MemoryObjects::new();
        let sessions = MemorySessions::new();
        let clock = Clock::default();
        let uploads = Uploads::new(objects.clone(), sessions.clone(), limits, VERIFY)
            .with_clock(clock.clone());
        Self {
            objects,
            sessions,
            clock,
            uploads,
        }
    }

    /// Another service instance (another Lambda) over the same stores and clock.
    fn other(&self, limits: Limits) -> Uploads {
        Uploads::new(self.objects.clone(), self.sessions.clone(), limits, VERIFY)
            .with_clock(self.clock.clone())
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
        assert_eq!(created.record.status, Status::Pending);
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
        self.uploads.complete(OWNER, id, None, None).await
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
    assert_eq!(record.status, Status::Verified, "{record:?}");
    assert_eq!(record.sha256, Some(Sha256::of(data)));
    assert_eq!(record.verified_bytes, data.len() as u64);
    assert_eq!(record.lease_until, 0);
    assert_eq!(record.hash_state, None);
    assert_eq!(record.expires_at, None);
    assert!(record.error.is_none() && record.verified_at.is_some());
}

// ---------------------------------------------------------------------------------------------
// Racing and dying completions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn racing_completes_verify_once_and_both_answer_the_verified_record() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 1000, 1);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;

    let (a, b) = tokio::join!(fx.complete(r.upload_id), fx.complete(r.upload_id));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_verified(&a, &data);
    assert_eq!(a, b, "the waiter answers the winner's record");
    assert_eq!(fx.peek(r.upload_id), a);
    // Both tried to claim; only one went on.
    assert_eq!(fx.db(Call::Transition(Status::Completing)), 2);
    assert_eq!(fx.s3(Call::CompleteMultipart), 1);
    assert_eq!(fx.s3(Call::Head), 1);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
}

#[tokio::test]
async fn a_dead_holders_completion_is_taken_over_exactly_once() {
    // The holder died before completing in S3, or after (the multipart upload is gone).
    for died_after_s3 in [false, true] {
        let fx = Fx::new(limits());
        let data = bytes(5 * MIB + 333, 2);
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        let id = r.upload_id;
        let mut dead = fx.peek(id);
        dead.status = Status::Completing;
        dead.lease_until = fx.clock.now() + LEASE.as_secs() as i64;
        fx.sessions.put(dead);
        if died_after_s3 {
            let (key, mpu) = (r.key.as_str(), s3_upload_id(&r));
            let parts: Vec<ListedPart> = fx.objects.list_parts(key, &mpu).await.unwrap();
            fx.objects
                .complete_multipart(key, &mpu, &parts)
                .await
                .unwrap();
        }
        let before = fx.s3(Call::CompleteMultipart);

        // While the lease runs, nobody else may touch it.
        let err = fx
            .other(impatient_limits())
            .complete(OWNER, id, None, None)
            .await;
        let err = err.unwrap_err();
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains("completing")),
            "{err:?}"
        );
        assert_eq!(fx.peek(id).status, Status::Completing);

        fx.clock.advance(LEASE + Duration::from_secs(1));
        let (a, b) = tokio::join!(fx.complete(id), fx.complete(id));
        let (a, b) = (a.unwrap(), b.unwrap());

        assert_verified(&a, &data);
        assert_eq!(a, b);
        // Two take-over attempts; only the winner went on to list the parts.
        assert_eq!(
            fx.db(Call::Transition(Status::Completing)),
            2,
            "{died_after_s3}"
        );
        assert_eq!(fx.s3(Call::ListParts), 1 + usize::from(died_after_s3));
        assert_eq!(
            fx.s3(Call::CompleteMultipart) - before,
            usize::from(!died_after_s3),
            "S3's completion is not repeated"
        );
        assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    }
}

#[tokio::test]
async fn a_completion_s3_refuses_reopens_the_session_with_409() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 10, 3);
    let r = fx.uploaded(&data, None).await;
    let rejected = PortError::Rejected("InvalidPart".into());
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, rejected);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("InvalidPart")),
        "{err:?}"
    );
    assert_eq!(http_status(err), StatusCode::CONFLICT);
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status, after.lease_until), (Status::Pending, 0));
    assert!(fx.objects.has_upload(&s3_upload_id(&r)));
    assert!(fx.objects.object(r.key.as_str()).is_none());

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &data);
    assert_eq!(fx.s3(Call::CompleteMultipart), 2);
}

#[tokio::test]
async fn a_part_replaced_during_completion_reopens_and_the_next_complete_takes_the_new_bytes() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 4);
    let r = fx.uploaded(&data, None).await;
    let replaced = bytes(300 * KIB, 5);
    // The client re-PUTs part 1 after `complete` listed the parts and before S3 completes them
    // (`join!` rotates which future it polls first, so this lands a step or two later).
    let replace = async {
        while fx.s3(Call::ListParts) == 0 {
            tokio::task::yield_now().await;
        }
        fx.objects
            .put_part(&s3_upload_id(&r), part(1), &replaced, None)
            .unwrap();
    };
    let (first, ()) = tokio::join!(fx.complete(r.upload_id), replace);
    let err = first.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("InvalidPart")),
        "{err:?}"
    );
    assert_eq!(fx.peek(r.upload_id).status, Status::Pending);

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &replaced);
}

// ---------------------------------------------------------------------------------------------
// Failed verifications
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_digest_mismatch_deletes_the_object_then_records_failed() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 6);
    let wrong = Sha256::of(b"not the file");
    let r = fx.uploaded(&data, Some(wrong)).await;

    let err = fx.complete(r.upload_id).await.unwrap_err();
    let Error::VerificationFailed(failed) = err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    assert_eq!(failed.status, Status::Failed);
    let why = failed.error.clone().unwrap();
    assert!(
        why.contains("sha256 mismatch") && why.contains(&wrong.to_hex()),
        "{why}"
    );
    assert_eq!(
        failed.sha256,
        Some(Sha256::of(&data)),
        "the computed digest is kept"
    );
    assert_eq!(failed.lease_until, 0);
    assert_eq!(*failed, fx.peek(r.upload_id));
    assert!(fx.objects.object(r.key.as_str()).is_none());
    assert_eq!(
        http_status(Error::VerificationFailed(failed)),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Completing again answers the same verdict without verifying again.
    let again = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(&again, Error::VerificationFailed(r) if r.error.as_deref() == Some(&*why)));
    assert_eq!(
        fx.s3(Call::GetRange),
        5,
        "300 KiB in 64 KiB ranges, read once"
    );
}

#[tokio::test]
async fn failed_is_recorded_only_after_the_object_is_deleted() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 7);
    let r = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    fx.objects.faults.fail(Call::Delete, 1);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Upstream(PortError::Unavailable { .. })),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status, after.lease_until), (Status::Completing, 0));
    assert!(after.error.is_none());
    assert_eq!(fx.db(Call::Transition(Status::Failed)), 0);
    assert!(
        fx.objects.object(r.key.as_str()).is_some(),
        "still there: not yet failed"
    );

    let err = fx.complete(r.upload_id).await.unwrap_err();
    let Error::VerificationFailed(failed) = err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.error.as_deref().unwrap().contains("sha256 mismatch"));
    assert!(fx.objects.object(r.key.as_str()).is_none());
    assert_eq!(fx.s3(Call::Delete), 2);
}

/// BUG: when the `failed` write itself fails, the object is already deleted and the lease still
/// held; the completion taken over after the lease finds no object and records "the multipart
/// upload no longer exists" instead of the digest mismatch (and loses the computed digest).
#[tokio::test]
#[ignore = "bug: a retried failed-verdict write records the wrong reason (complete.rs fail/finish)"]
async fn a_failed_verdict_whose_write_failed_keeps_its_reason_when_taken_over() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 8);
    let r = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    fx.sessions.faults.fail(Call::Transition(Status::Failed), 1);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(err, Error::Upstream(_)), "{err:?}");
    assert_eq!(fx.peek(r.upload_id).status, Status::Completing);
    assert!(fx.objects.object(r.key.as_str()).is_none());

    fx.clock.advance(LEASE + Duration::from_secs(1));
    let err = fx.complete(r.upload_id).await.unwrap_err();
    let Error::VerificationFailed(failed) = err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    let why = failed.error.clone().unwrap_or_default();
    assert!(why.contains("sha256 mismatch"), "recorded reason: {why:?}");
    assert_eq!(failed.sha256, Some(Sha256::of(&data)));
}

// ---------------------------------------------------------------------------------------------
// The verifier: hand-over, pauses, continuations, events
// ---------------------------------------------------------------------------------------------

/// A large (verifier-bound) upload of `len` bytes, completed by the API: `verifying`.
async fn handed_over(fx: &Fx, len: u64, seed: u32) -> (UploadRecord, Vec<u8>) {
    let data = bytes(len, seed);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let answered = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(answered.status, Status::Verifying);
    assert_eq!((answered.lease_until, answered.verified_bytes), (0, 0));
    assert_eq!(
        fx.s3(Call::GetRange),
        0,
        "the API does not read a large object"
    );
    (answered, data)
}

#[tokio::test]
async fn an_object_replaced_between_continuations_fails() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 512 * KIB + 1000, 9).await;

    let past = Some(Instant::now());
    let first = paused(
        fx.uploads
            .continue_verification(r.upload_id, past)
            .await
            .unwrap(),
    );
    assert_eq!(first.status, Status::Verifying);
    assert_eq!((first.verified_bytes, first.lease_until), (RANGE, 0));
    assert!(first.hash_state.is_some());
    let pinned = first.etag.clone().unwrap();
    assert_eq!(first, fx.peek(r.upload_id));

    let other = bytes(data.len() as u64, 10);
    fx.objects.put_object(r.key.as_str(), &other);

    let failed = done(
        fx.uploads
            .continue_verification(r.upload_id, None)
            .await
            .unwrap(),
    );
    assert_eq!(failed.status, Status::Failed);
    let why = failed.error.clone().unwrap();
    assert!(why.contains("changed during verification"), "{why}");
    assert_ne!(
        failed.etag.as_deref(),
        Some(&*pinned),
        "records the ETag it found"
    );
    assert_eq!(failed.hash_state, None);
    assert!(fx.objects.object(r.key.as_str()).is_none());
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 0);
}

#[tokio::test]
async fn an_object_replaced_mid_read_fails() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 512 * KIB + 1000, 11).await;
    let other = bytes(data.len() as u64, 12);
    let overwrite = async {
        while fx.s3(Call::GetRange) == 0 {
            tokio::task::yield_now().await;
        }
        fx.objects.put_object(r.key.as_str(), &other);
    };
    let (outcome, ()) = tokio::join!(
        fx.uploads.on_object_created(r.key.as_str(), None),
        overwrite
    );
    let failed = done(outcome.unwrap());
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed
            .error
            .unwrap()
            .contains("changed during verification")
    );
    assert!(fx.objects.object(r.key.as_str()).is_none());
}

#[tokio::test]
async fn a_verification_paused_at_every_range_matches_one_uninterrupted_run() {
    let fx = Fx::new(large_limits());
    let len = 512 * KIB + 1000;
    let (r, data) = handed_over(&fx, len, 13).await;

    let mut progress = Vec::new();
    let finished = loop {
        assert!(progress.len() < 20, "no progress: {progress:?}");
        match fx
            .uploads
            .continue_verification(r.upload_id, Some(Instant::now()))
            .await
        {
            Ok(EventOutcome::Paused(p)) => {
                assert_eq!((p.status, p.lease_until), (Status::Verifying, 0));
                assert!(p.hash_state.is_some() && p.sha256.is_none());
                progress.push(p.verified_bytes);
            }
            Ok(EventOutcome::Done(d)) => break *d,
            other => panic!("{other:?}"),
        }
    };
    // Nine ranges: one is hashed per run, so eight pauses.
    let expected: Vec<u64> = (1..=8).map(|i| i * RANGE).collect();
    assert_eq!(progress, expected);
    assert_verified(&finished, &data);

    // The same bytes verified in one go.
    let fx2 = Fx::new(large_limits());
    let (r2, _) = handed_over(&fx2, len, 13).await;
    let once = done(
        fx2.uploads
            .continue_verification(r2.upload_id, None)
            .await
            .unwrap(),
    );
    assert_verified(&once, &data);
    assert_eq!(once.sha256, finished.sha256);
    assert_eq!(
        fx2.db(Call::Transition(Status::Verifying)),
        1,
        "never paused"
    );
}

#[tokio::test]
async fn an_event_that_outruns_the_hand_over_waits_for_it() {
    let fx = Fx::new(large_limits());
    let data = bytes(512 * KIB, 14);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let key = r.key.as_str();
    // S3 sends its event once the object exists, i.e. right after CompleteMultipartUpload,
    // while the API still holds the session.
    let event = async {
        while fx.objects.object(key).is_none() {
            tokio::task::yield_now().await;
        }
        let seen = fx.peek(r.upload_id);
        let outcome = fx.uploads.on_object_created(key, None).await;
        (seen, outcome)
    };
    let (api, (seen, outcome)) = tokio::join!(fx.complete(r.upload_id), event);

    assert_eq!(seen.status, Status::Completing);
    assert!(
        seen.lease_until >= fx.clock.now(),
        "the API's lease was live"
    );
    assert_eq!(
        api.unwrap().status,
        Status::Verifying,
        "the API answers 202 verifying"
    );
    let verified = done(outcome.unwrap());
    assert_verified(&verified, &data);
    // The event read the session, waited, and read it again.
    assert!(fx.db(Call::GetSession) >= 3, "{}", fx.db(Call::GetSession));
    assert_eq!(fx.db(Call::Transition(Status::Verifying)), 1);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn a_repeated_event_is_ignored() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 200 * KIB, 15).await;
    let key = r.key.as_str();

    let first = done(fx.uploads.on_object_created(key, None).await.unwrap());
    assert_verified(&first, &data);
    let reads = fx.s3(Call::GetRange);
    let second = fx.uploads.on_object_created(key, None).await.unwrap();
    assert!(matches!(second, EventOutcome::Ignored(_)), "{second:?}");
    assert_eq!(fx.s3(Call::GetRange), reads);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(fx.peek(r.upload_id), first);

    // Keys that are not a session's are ignored.
    for other in ["elsewhere/x", &format!("uploads/{}/other.bin", r.upload_id)] {
        let outcome = fx.uploads.on_object_created(other, None).await.unwrap();
        assert!(
            matches!(outcome, EventOutcome::Ignored(_)),
            "{other}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_verify_once() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 200 * KIB, 16).await;
    let key = r.key.as_str();

    let (a, b) = tokio::join!(
        fx.uploads.on_object_created(key, None),
        fx.uploads.on_object_created(key, None)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let verified: Vec<&UploadRecord> = outcomes
        .iter()
        .filter_map(|o| match o {
            EventOutcome::Done(r) => Some(&**r),
            _ => None,
        })
        .collect();
    assert_eq!(verified.len(), 1, "{outcomes:?}");
    assert_verified(verified[0], &data);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, EventOutcome::Ignored(_))),
        "{outcomes:?}"
    );
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(fx.s3(Call::Head), 1);
}

#[tokio::test]
async fn an_event_for_an_object_the_api_verified_inline_is_ignored() {
    let fx = Fx::new(limits());
    let data = bytes(200 * KIB, 17);
    let r = fx.uploaded(&data, None).await;
    let (api, event) = tokio::join!(fx.complete(r.upload_id), async {
        while fx.objects.object(r.key.as_str()).is_none() {
            tokio::task::yield_now().await;
        }
        fx.uploads.on_object_created(r.key.as_str(), None).await
    });
    assert_verified(&api.unwrap(), &data);
    let event = event.unwrap();
    assert!(matches!(event, EventOutcome::Ignored(_)), "{event:?}");
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(fx.s3(Call::Head), 1);
}

#[tokio::test]
async fn a_failed_hand_over_is_taken_over_by_a_later_delivery() {
    let fx = Fx::new(large_limits());
    let data = bytes(200 * KIB, 18);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.sessions
        .faults
        .fail(Call::Transition(Status::Verifying), 1);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(err, Error::Upstream(_)), "{err:?}");
    let stuck = fx.peek(r.upload_id);
    assert_eq!(stuck.status, Status::Completing);
    assert!(
        stuck.lease_until >= fx.clock.now(),
        "the hand-over keeps its lease"
    );

    // Once the lease has run out, a redelivered event takes the completion over.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let verified = done(
        fx.uploads
            .on_object_created(r.key.as_str(), None)
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
    assert_eq!(fx.s3(Call::CompleteMultipart), 1);
}

// ---------------------------------------------------------------------------------------------
// Upstream faults at every step
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_fault_at_any_step_leaves_a_state_the_next_complete_resumes() {
    struct Case {
        fault: Call,
        /// The record right after the failed `complete`.
        left: Status,
        /// The failed call still holds the lease (nobody could release it).
        lease_held: bool,
        /// CompleteMultipartUpload calls in all: a resumed completion does not repeat it.
        s3_completions: usize,
    }
    let case = |fault, left, lease_held, s3_completions| Case {
        fault,
        left,
        lease_held,
        s3_completions,
    };
    let cases = [
        case(Call::GetSession, Status::Pending, false, 1),
        case(Call::ListParts, Status::Pending, false, 1),
        case(
            Call::Transition(Status::Completing),
            Status::Pending,
            false,
            1,
        ),
        case(Call::CompleteMultipart, Status::Completing, false, 2),
        case(Call::Head, Status::Completing, false, 1),
        case(Call::GetRange, Status::Completing, false, 1),
        case(
            Call::Transition(Status::Verified),
            Status::Completing,
            true,
            1,
        ),
    ];
    let data = bytes(5 * MIB + 1000, 19);
    for c in cases {
        let fx = Fx::new(impatient_limits());
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        let id = r.upload_id;
        fx.fail_once(c.fault);

        let err = fx.complete(id).await.unwrap_err();
        let what = format!("{:?}", c.fault);
        assert!(
            matches!(err, Error::Upstream(PortError::Unavailable { .. })),
            "{what}: {err:?}"
        );
        let left = fx.peek(id);
        assert_eq!(left.status, c.left, "{what}");
        assert!(left.error.is_none() && left.sha256.is_none(), "{what}");
        if c.lease_held {
            assert!(left.lease_until >= fx.clock.now(), "{what}");
            let err = fx.complete(id).await.unwrap_err();
            assert!(
                matches!(&err, Error::Conflict(m) if m.contains("completing")),
                "{what}: {err:?}"
            );
            fx.clock.advance(LEASE + Duration::from_secs(1));
        } else {
            assert_eq!(left.lease_until, 0, "{what}: released");
        }

        let verified = fx.complete(id).await.unwrap();
        assert_verified(&verified, &data);
        assert_eq!(fx.s3(Call::CompleteMultipart), c.s3_completions, "{what}");
        assert_eq!(
            fx.objects.object(r.key.as_str()).as_deref(),
            Some(&data[..])
        );
        assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
    }
}

// ---------------------------------------------------------------------------------------------
// Abort, posted objects, unsized sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn abort_racing_complete_exactly_one_wins() {
    let data = bytes(100 * KIB, 20);
    let (mut aborted, mut completed) = (0, 0);
    for delay in 0..6 {
        let fx = Fx::new(limits());
        let r = fx.uploaded(&data, None).await;
        let id = r.upload_id;
        let abort = async {
            for _ in 0..delay {
                tokio::task::yield_now().await;
            }
            fx.uploads.abort(OWNER, id).await
        };
        let (c, a) = tokio::join!(fx.complete(id), abort);
        match (c, a) {
            (Ok(v), Err(Error::Conflict(m))) => {
                assert!(m.contains("cannot abort"), "{m}");
                assert_verified(&v, &data);
                assert_eq!(fx.peek(id).status, Status::Verified);
                assert!(fx.objects.object(r.key.as_str()).is_some());
                completed += 1;
            }
            (Err(Error::Conflict(m)), Ok(())) => {
                assert!(m.contains("aborted"), "{m}");
                assert_eq!(fx.peek(id).status, Status::Aborted);
                assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
                assert!(fx.objects.object(r.key.as_str()).is_none());
                assert_eq!(fx.s3(Call::CompleteMultipart), 0);
                aborted += 1;
            }
            other => panic!("delay {delay}: {other:?}"),
        }
    }
    assert!(
        aborted > 0 && completed > 0,
        "aborted {aborted}, completed {completed}"
    );
}

#[tokio::test]
async fn a_posted_object_is_verified_when_its_owner_reads_it() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 21);
    let (r, _form) = fx
        .uploads
        .create_post(OWNER, declared(Some(Sha256::of(&data))))
        .await
        .unwrap();
    assert_eq!((r.kind.clone(), r.plan), (Kind::Post, None));

    // Nothing posted yet.
    let before = fx.uploads.get_settled(OWNER, r.upload_id).await.unwrap();
    assert_eq!(before.status, Status::Pending);
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("not arrived")),
        "{err:?}"
    );

    fx.objects.put_object(r.key.as_str(), &data);
    let settled = fx.uploads.get_settled(OWNER, r.upload_id).await.unwrap();
    assert_verified(&settled, &data);
    assert_eq!(settled.size(), Some(data.len() as u64));
    // Later reads, completes and S3's event find it done.
    assert_eq!(
        fx.uploads.get_settled(OWNER, r.upload_id).await.unwrap(),
        settled
    );
    assert_eq!(fx.complete(r.upload_id).await.unwrap(), settled);
    let event = fx
        .uploads
        .on_object_created(r.key.as_str(), None)
        .await
        .unwrap();
    assert!(matches!(event, EventOutcome::Ignored(_)), "{event:?}");
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn a_posted_object_with_the_wrong_digest_is_deleted_and_failed() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 22);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(Some(Sha256::of(b"x"))))
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), &data);
    let settled = fx.uploads.get_settled(OWNER, r.upload_id).await.unwrap();
    assert_eq!(settled.status, Status::Failed);
    assert!(settled.error.unwrap().contains("sha256 mismatch"));
    assert!(fx.objects.object(r.key.as_str()).is_none());
}

#[tokio::test]
async fn duplicate_events_for_a_posted_object_verify_once() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 23);
    let (r, _) = fx.uploads.create_post(OWNER, declared(None)).await.unwrap();
    fx.objects.put_object(r.key.as_str(), &data);
    let key = r.key.as_str();

    let (a, b) = tokio::join!(
        fx.uploads.on_object_created(key, None),
        fx.uploads.on_object_created(key, None)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (won, lost) = match (a, b) {
        (EventOutcome::Done(w), l) | (l, EventOutcome::Done(w)) => (*w, l),
        other => panic!("{other:?}"),
    };
    assert_verified(&won, &data);
    assert!(matches!(lost, EventOutcome::Ignored(_)), "{lost:?}");
    let third = fx.uploads.on_object_created(key, None).await.unwrap();
    assert!(matches!(third, EventOutcome::Ignored(_)), "{third:?}");
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn an_unsized_session_is_measured_at_completion() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 100, 24);
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    assert_eq!(r.plan, None);
    let id = s3_upload_id(&r);
    let (one, two) = data.split_at(usize::try_from(5 * MIB).unwrap());
    fx.objects.put_part(&id, part(1), one, None).unwrap();
    fx.objects.put_part(&id, part(2), two, None).unwrap();

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &data);
    let plan = verified.plan.unwrap();
    assert_eq!(
        (plan.size(), plan.part_size(), plan.part_count()),
        (data.len() as u64, 5 * MIB, 2)
    );
}

#[tokio::test]
async fn an_unsized_session_that_fits_no_plan_or_limit_stays_pending() {
    let fx = Fx::new(Limits {
        max_object_bytes: 250,
        ..limits()
    });
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let id = s3_upload_id(&r);
    // The last part larger than the first: no plan.
    fx.objects.put_part(&id, part(1), &[1; 100], None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 200], None).unwrap();
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Parts(PartsError::Unmeasurable(_))),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status, after.plan), (Status::Pending, None));

    // A plan, but over the size limit.
    fx.objects.put_part(&id, part(1), &[1; 200], None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 100], None).unwrap();
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 300,
                max: 250
            }
        ),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status, after.plan), (Status::Pending, None));
    assert_eq!(fx.db(Call::Transition(Status::Completing)), 0);
}

/// BUG: a refused completion reopens an unsized session but keeps the plan measured for it, so
/// once the client has fixed its parts (here: re-sent the last one with another length) every
/// later `complete` checks them against the stale plan and refuses them.
#[tokio::test]
#[ignore = "bug: Reopen keeps the plan measured by the refused claim (transition.rs apply / complete.rs)"]
async fn a_reopened_unsized_session_is_measured_again() {
    let fx = Fx::new(limits());
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let id = s3_upload_id(&r);
    let first = bytes(5 * MIB, 25);
    fx.objects.put_part(&id, part(1), &first, None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 100], None).unwrap();
    let rejected = PortError::Rejected("InvalidPart".into());
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, rejected);
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let reopened = fx.peek(r.upload_id);
    assert_eq!(reopened.status, Status::Pending);

    fx.objects.put_part(&id, part(2), &[3; 200], None).unwrap();
    let mut data = first.clone();
    data.extend_from_slice(&[3; 200]);
    let verified = fx.complete(r.upload_id).await;
    assert_verified(&verified.unwrap(), &data);
}
