//! Ambiguous answers: writes that land but are answered as refused (the SDK
//! retrying a conditional `UpdateItem` whose first attempt landed gets
//! `ConditionalCheckFailedException`) or as failed (the answer lost after the write), and
//! changes the service never sends that a store still accepts.
//!
//! FAILS / HOLDS in each test's doc comment says what it showed on the reviewed commit.

use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::domain::{Change, Failing, Guard};
use crate::ports::{OwnerLimit, OwnerLimits, Reservation};
use crate::ports::{Page, PageKey, SessionStore};

/// Which write lands and how it is then answered.
type Landing = (fn(&Change) -> bool, fn() -> PortError);

/// The in-memory table, except that the next write `landing` picks is applied and then answered
/// with its error, as DynamoDB and the SDK can answer a write that landed.
struct LandsThenAnswers {
    inner: Arc<MemorySessions>,
    landing: Mutex<Option<Landing>>,
}

impl LandsThenAnswers {
    fn new(inner: Arc<MemorySessions>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            landing: Mutex::new(None),
        })
    }

    fn next(&self, which: fn(&Change) -> bool, answer: fn() -> PortError) {
        *self.landing.lock().unwrap() = Some((which, answer));
    }
}

fn refused() -> PortError {
    PortError::PreconditionFailed
}

fn lost_answer() -> PortError {
    PortError::unavailable(Upstream::DynamoDB, "the answer was lost after the write")
}

#[async_trait]
impl SessionStore for LandsThenAnswers {
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
        let landing = {
            let mut l = self.landing.lock().unwrap();
            match *l {
                Some((which, answer)) if which(&change) => {
                    *l = None;
                    Some(answer)
                }
                _ => None,
            }
        };
        let written = self.inner.transition(id, guard, change, now).await;
        match (landing, written) {
            (Some(answer), Ok(_)) => Err(answer()),
            (_, other) => other,
        }
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

fn is_claim(c: &Change) -> bool {
    matches!(c, Change::Claim { .. })
}

fn is_failing(c: &Change) -> bool {
    matches!(c, Change::Failing { .. })
}

fn is_verified(c: &Change) -> bool {
    matches!(c, Change::Verified { .. })
}

/// The service of `fx` over a table whose writes can land and be answered otherwise.
fn over_landing(fx: &Fx, limits: Limits) -> (Uploads, Arc<LandsThenAnswers>) {
    let table = LandsThenAnswers::new(fx.sessions.clone());
    let uploads = Uploads::new(fx.objects.clone(), table.clone(), limits, VERIFY)
        .with_clock(fx.clock.clone())
        .with_announcer(fx.announcer.clone());
    (uploads, table)
}

/// FAILS (finding: a caller's own claim, landed but answered refused, is taken for another
/// caller's). The SDK retries an `UpdateItem` whose answer was lost; the retry's condition
/// (`status = pending`) no longer holds because the first attempt landed. `claim` answers `None`
/// ("another caller moved it"), `settle` finds the session `completing` under a live lease (the
/// caller's own, under a token it threw away) and answers 202; so does every retry, until the
/// lease runs out (`COMPLETION_LEASE_SECONDS`, 900 s by default) and the sweep takes it over.
#[tokio::test]
async fn a_claim_that_landed_but_was_answered_refused_is_the_callers_own() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 100, 91);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let (uploads, table) = over_landing(&fx, impatient_limits());
    table.next(is_claim, refused);

    let answered = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await
        .unwrap();
    let stored = fx.peek(r.upload_id);
    assert_eq!(
        answered.status(),
        Status::Verified,
        "202 on its own claim; stored: {:?} lease until {} (now {})",
        stored.status(),
        stored.lease_until(),
        fx.clock.now()
    );
}

/// FAILS (same finding, the verifier's side). The verifier's claim of a `verifying` session lands
/// and is answered refused: the delivery is acknowledged as "another verifier took it" and the
/// session stays `completing` under a lease nobody holds until it runs out.
#[tokio::test]
async fn a_verifiers_claim_that_landed_but_was_answered_refused_is_its_own() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 92);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    assert_eq!(
        fx.complete(r.upload_id).await.unwrap().status(),
        Status::Verifying
    );
    let (verifier, table) = over_landing(&fx, large_limits());
    table.next(is_claim, refused);

    let outcome = verifier
        .continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, EventOutcome::Done(v) if v.status() == Status::Verified),
        "{outcome:?}; stored: {:?}",
        fx.peek(r.upload_id).state
    );
}

/// FAILS (finding: a claim that landed but whose answer was lost holds the session for the whole
/// lease). The caller answers 503; the client's retry finds the session `completing` under a
/// lease nobody holds and answers 202, and so does every retry until the lease runs out.
#[tokio::test]
async fn a_claim_whose_answer_was_lost_does_not_hold_the_session_for_the_lease() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 100, 93);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let (uploads, table) = over_landing(&fx, impatient_limits());
    table.next(is_claim, lost_answer);

    let first = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await;
    let retry = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await
        .unwrap();
    assert_eq!(
        retry.status(),
        Status::Verified,
        "first: {first:?}; the retry: {:?} lease until {} (now {})",
        retry.status(),
        retry.lease_until(),
        fx.clock.now()
    );
}

/// FAILS (finding: a decided failure whose write landed but whose answer was lost is not carried
/// out for the whole lease). `fail` neither reads back nor releases: the object that failed
/// verification stays under the key, the record says `completing` with the error, and retries
/// answer 202, until the lease runs out.
#[tokio::test]
async fn a_failing_whose_answer_was_lost_is_carried_out_without_waiting_out_the_lease() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 100, 94);
    let r = fx
        .uploaded(&data, Some(Sha256::of(b"something else")))
        .await;
    let (uploads, table) = over_landing(&fx, impatient_limits());
    table.next(is_failing, lost_answer);

    let first = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await;
    let retry = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await;
    let stored = fx.peek(r.upload_id);
    assert!(
        matches!(&retry, Err(Error::VerificationFailed(f)) if f.status() == Status::Failed),
        "first: {first:?}; retry: {retry:?}"
    );
    assert!(
        fx.objects.object(r.key.as_str()).is_none(),
        "the unverified object is still under the key; stored {:?}",
        stored.state
    );
}

/// FAILS (finding, same family: a verdict that landed but was answered refused skips the
/// clean-up). The `verified` write lands, its SDK retry is refused, `record_verdict` takes it
/// for a take-over and skips `keep_only`: a form replayed while the object was hashed stays the
/// current object under a key whose record says `verified` (another version). Its own event
/// deletes it later, if it is delivered after the verdict.
#[tokio::test]
async fn a_verdict_that_landed_but_was_answered_refused_still_cleans_the_key() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 95);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let v1 = fx.objects.put_object(r.key.as_str(), &data);
    let (uploads, table) = over_landing(&fx, limits());
    table.next(is_verified, refused);
    let park = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let replay = async {
        park.reached().await;
        fx.objects.put_object(r.key.as_str(), b"replayed form");
        park.release();
    };
    let (verified, ()) = tokio::join!(
        uploads.get_settled(OWNER, r.upload_id, Budget::request(uploads.limits())),
        replay
    );
    let verified = verified.unwrap();
    assert_verified(&verified, &data);
    assert_eq!(verified.version_id(), Some(&*v1));
    assert!(
        fx.objects.object(r.key.as_str()).as_deref() == Some(&data[..]),
        "the current object under a verified key is not the verified one ({} versions)",
        fx.objects.versions(r.key.as_str())
    );
}

/// FAILS (finding: `applies_from` checks only the status, so a store accepts changes that drop a
/// decided `failed` verdict). From `completing` with `failing`, a `HandOver` writes `verifying`
/// and removes `error`/`sha256` (`Writes::clean`), a `Reopen` writes `pending`, a `Verified`
/// overwrites the decision, and a second `Failing` without a digest keeps the first one's digest
/// under its own error. The service never sends these today (`finish` carries out a decided
/// failure first), but the store was meant to make them impossible.
#[tokio::test]
async fn a_decided_failure_can_only_be_carried_out() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 100, 96);
    let r = fx.uploaded(&data, None).await;
    let mut failing = fx.peek(r.upload_id);
    failing.state = State::Completing {
        hold: Hold::Leased(Lease {
            until: fx.clock.now() + 60,
            token: LeaseToken::generate(),
        }),
        fault: None,
        pinned: None,
        failing: Some(Failing {
            error: "sha256 mismatch".into(),
            sha256: Some(Sha256::of(b"found")),
        }),
    };
    let changes = [
        Change::HandOver {
            saved: None,
            resume_by: 0,
        },
        Change::Reopen {
            expires_at: fx.clock.now() + 3600,
            unmeasure: false,
        },
        Change::Verified {
            sha256: Sha256::of(&data),
            etag: "\"e\"".into(),
            version_id: None,
            verified_at: "2030-01-01T00:00:00.000Z".into(),
            bytes: data.len() as u64,
            chained: crate::domain::Chained::SEQUENTIAL,
            receipt: None,
        },
        Change::Failing {
            sha256: None,
            etag: None,
            version_id: None,
            error: "another reason".into(),
            chained: crate::domain::Chained::default(),
        },
    ];
    let mut accepted = Vec::new();
    for change in changes {
        fx.sessions.put(failing.clone());
        let written = fx
            .sessions
            .transition(r.upload_id, Guard::held(&failing), change.clone(), "now")
            .await;
        if let Ok(w) = written {
            accepted.push(format!(
                "{change:?} -> {:?} error {:?} sha256 {:?}",
                w.status(),
                w.error(),
                w.sha256()
            ));
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
}
