//! The integrity guarantees of README's "Guarantees": fenced writes, declared digests that are
//! never ignored, sessions under verification that no TTL removes.

use super::*;
use crate::domain::{Change, Guard, LeaseToken};
use crate::ports::SessionStore;

/// The record as holder A saw it right after claiming it, before B took it over.
async fn stale_claim(fx: &Fx, r: &UploadRecord) -> UploadRecord {
    let claim = Change::Claim {
        lease_until: fx.clock.now() + LEASE.as_secs() as i64,
        token: LeaseToken::generate(),
        sized: None,
        expected_sha256: None,
        part_states: None,
    };
    let guard = Guard::status(Status::Pending);
    fx.sessions
        .transition(r.upload_id, guard, claim, "now")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_holder_that_was_taken_over_cannot_write_or_delete() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 21);
    let r = fx.uploaded(&data, None).await;
    let a = stale_claim(&fx, &r).await;
    // A outlives its lease; B takes the completion over and verifies.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let b = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&b, &data);
    assert_ne!(a.lease_token(), None);

    // A wakes up believing the object must fail (say, a stale declared digest): its decided
    // verdict is refused, so B's verified object stays.
    let mut stale = a.clone();
    stale.expected_sha256 = Some(Sha256::of(b"something else"));
    let answer = fx
        .uploads
        .finish(stale, None, Budget::request(fx.uploads.limits()))
        .await;
    assert_eq!(answer.unwrap(), b, "A answers the record B wrote");
    assert_eq!(fx.db(Call::Transition(Status::Failed)), 0);
    assert_eq!(fx.s3(Call::Delete), 0);
    assert_eq!(fx.s3(Call::Purge), 1, "B's, keeping what it verified");
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert_eq!(fx.peek(r.upload_id), b);

    // A's release or hand-over is refused too.
    let lost = fx
        .sessions
        .transition(r.upload_id, Guard::held(&a), RELEASE, "now")
        .await;
    assert!(
        matches!(lost, Err(PortError::PreconditionFailed)),
        "{lost:?}"
    );
}

#[tokio::test]
async fn a_lost_final_write_answers_the_new_holders_record_not_409_nor_502() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 22);
    let r = fx.uploaded(&data, None).await;
    let a = stale_claim(&fx, &r).await;
    fx.clock.advance(LEASE + Duration::from_secs(1));
    // B took over and is still running (its lease is live): A's verdict (here `failed`: S3 never
    // completed) cannot be written, and A answers the record as B holds it (`complete` then
    // waits on it, or answers 202).
    let b = stale_claim_over(&fx, &a).await;
    let answer = fx
        .uploads
        .finish(a, None, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_eq!(answer, b);
    assert_eq!(fx.peek(r.upload_id), b, "nothing written");
    assert_eq!(fx.s3(Call::Purge), 0, "nothing deleted");
}

async fn stale_claim_over(fx: &Fx, a: &UploadRecord) -> UploadRecord {
    let claim = Change::Claim {
        lease_until: fx.clock.now() + LEASE.as_secs() as i64,
        token: LeaseToken::generate(),
        sized: None,
        expected_sha256: None,
        part_states: None,
    };
    let guard = Guard {
        status: Status::Completing,
        lease_expired_by: Some(fx.clock.now()),
        holder: None,
    };
    fx.sessions
        .transition(a.upload_id, guard, claim, "now")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_digest_declared_on_a_verified_upload_is_compared_not_ignored() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 23);
    let r = fx.uploaded(&data, None).await;
    let verified = fx.complete(r.upload_id).await.unwrap();

    let wrong = Sha256::of(b"not the file");
    let err = fx
        .uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            Some(wrong),
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { declared, recorded } if declared == wrong && recorded == Sha256::of(&data)),
        "{err:?}"
    );
    assert_eq!(fx.peek(r.upload_id), verified, "record unchanged");

    let same = fx
        .uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            Some(Sha256::of(&data)),
            Budget::request(fx.uploads.limits()),
        )
        .await;
    assert_eq!(same.unwrap(), verified);
}

#[tokio::test]
async fn a_digest_declared_while_verification_runs_without_one_is_refused() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 24);
    let r = fx.uploaded(&data, None).await;
    let handed = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(handed.status(), Status::Verifying);
    let err = fx
        .uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            Some(Sha256::of(&data)),
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Conflict(Conflict::DeclaredTooLate {
                status: Status::Verifying
            })
        ),
        "{err:?}"
    );
    assert_eq!(fx.peek(r.upload_id).expected_sha256, None);
}

#[tokio::test]
async fn a_digest_declared_for_a_form_post_before_its_object_arrives_is_kept() {
    let fx = Fx::new(limits());
    let (record, _form) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let data = bytes(40 * KIB, 25);
    let err = fx
        .uploads
        .complete(
            OWNER,
            record.upload_id,
            None,
            Some(Sha256::of(&data)),
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(Conflict::NotArrived)),
        "{err:?}"
    );
    assert_eq!(
        fx.peek(record.upload_id).expected_sha256,
        Some(Sha256::of(&data))
    );

    // Something else arrives under the key: the kept digest fails it.
    let other = bytes(40 * KIB, 26);
    fx.objects.put_object(record.key.as_str(), &other);
    let settled = fx
        .uploads
        .get_settled(
            OWNER,
            record.upload_id,
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap();
    assert_eq!(settled.status(), Status::Failed);
    assert_eq!(settled.sha256(), Some(Sha256::of(&other)));
    assert!(fx.objects.object(record.key.as_str()).is_none());
}

#[tokio::test]
async fn no_ttl_runs_while_a_session_is_out_of_pending() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 27);
    let r = fx.uploaded(&data, None).await;
    assert!(r.expires_at().is_some());
    let handed = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(
        (handed.status(), handed.expires_at()),
        (Status::Verifying, None)
    );

    // Back to pending (S3 refused the parts): the session expires again, from now.
    let fx = Fx::new(limits());
    let r = fx.uploaded(&data, None).await;
    fx.clock.advance(Duration::from_secs(3600));
    let rejected = PortError::Rejected("InvalidPart".into());
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, rejected);
    // The clock is real seconds: the reopening happens within [before, after].
    let before = fx.clock.now();
    assert!(fx.complete(r.upload_id).await.is_err());
    let after = fx.clock.now();
    let reopened = fx.peek(r.upload_id);
    assert_eq!(reopened.status(), Status::Pending);
    let ttl = i64::try_from(limits().session_ttl.as_secs()).unwrap();
    let expires = reopened.expires_at().unwrap();
    assert!(
        (before + ttl..=after + ttl).contains(&expires),
        "{expires} not in {}..={}",
        before + ttl,
        after + ttl
    );
}

#[tokio::test]
async fn saved_progress_that_lies_about_its_count_restarts_from_byte_zero() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 28);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    let first = fx.pause_once(r.upload_id).await;
    assert_eq!(first.verified_bytes(), RANGE);
    // The record claims more bytes than its state took in.
    let mut lying = fx.peek(r.upload_id);
    if let State::Verifying {
        pinned: Some(Pinned {
            progress: Some(p), ..
        }),
        ..
    } = &mut lying.state
    {
        p.hashed = 2 * RANGE;
    }
    fx.sessions.put(lying);
    let reads_before = fx.s3(Call::GetRange);
    let record = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&record, &data);
    let ranges = data.len().div_ceil(RANGE as usize);
    assert_eq!(
        fx.s3(Call::GetRange) - reads_before,
        ranges,
        "read from byte 0"
    );
}
