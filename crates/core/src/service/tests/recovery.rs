//! Attacks an outsider tried (replays, races, crashes between steps, hostile input), kept as the
//! tests that show they now hold.

use super::*;
use crate::domain::{Change, Guard, LeaseToken};
use crate::ports::SessionStore;

/// A form-POST session whose object has arrived.
async fn posted(fx: &Fx, data: &[u8], sha256: Option<Sha256>) -> UploadRecord {
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(sha256), None)
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), data);
    r
}

#[tokio::test]
async fn a_form_post_whose_verification_faulted_is_resumed_by_its_owners_next_read() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 101);
    let r = posted(&fx, &data, None).await;
    fx.objects.faults.fail(Call::GetRange, 1);
    let err = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Upstream(PortError::Unavailable {
                service: Upstream::S3,
                ..
            })
        ),
        "{:?}",
        err
    );
    assert_eq!(fx.peek(r.upload_id).status(), Status::Completing);
    let polled = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_verified(&polled, &data);
}

#[tokio::test]
async fn a_form_post_whose_verifier_faulted_is_resumed_by_the_redelivered_event() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 102);
    let r = posted(&fx, &data, None).await;
    fx.objects.faults.fail(Call::GetRange, 1);
    assert!(
        fx.uploads
            .on_object_created(r.key.as_str(), None, Budget::verifier(None))
            .await
            .is_err()
    );
    let again = fx
        .uploads
        .on_object_created(r.key.as_str(), None, Budget::verifier(None))
        .await;
    assert_verified(&done(again.unwrap()), &data);
}

#[tokio::test]
async fn a_decided_failure_on_a_form_post_is_carried_out_by_the_next_read() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 103);
    let r = posted(&fx, &data, Some(Sha256::of(b"other"))).await;
    fx.objects.faults.fail(Call::Purge, 1);
    assert!(
        fx.uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
            .await
            .is_err()
    );
    assert!(fx.objects.object(r.key.as_str()).is_some());
    let polled = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_eq!(polled.status(), Status::Failed);
    assert!(polled.error().unwrap().starts_with("sha256 mismatch"));
    assert!(fx.objects.object(r.key.as_str()).is_none());
}

#[tokio::test]
async fn a_declared_digest_holds_when_a_racing_complete_without_one_claims_first() {
    for delay in 0..8 {
        let fx = Fx::new(limits());
        let data = bytes(200 * KIB, 104);
        let r = fx.uploaded(&data, None).await;
        let wrong = Sha256::of(b"not the file");
        let declaring = async {
            for _ in 0..delay {
                tokio::task::yield_now().await;
            }
            fx.uploads
                .complete(
                    OWNER,
                    r.upload_id,
                    None,
                    Some(wrong),
                    Budget::request(fx.uploads.limits()),
                )
                .await
        };
        let (plain, declaring) = tokio::join!(fx.complete(r.upload_id), declaring);
        // Whichever claimed first, the declaring caller never hears `verified` for other bytes.
        match (plain, declaring) {
            (Ok(verified), Err(Error::DigestMismatch { declared, recorded })) => {
                assert_verified(&verified, &data);
                assert_eq!((declared, recorded), (wrong, Sha256::of(&data)));
            }
            // Caught while the other verification ran without it: told to compare afterwards.
            (Ok(verified), Err(Error::Conflict(Conflict::DeclaredTooLate { .. }))) => {
                assert_verified(&verified, &data);
            }
            (Err(Error::VerificationFailed(a)), Err(Error::VerificationFailed(b))) => {
                assert_eq!(a, b);
                assert_eq!(a.expected_sha256, Some(wrong), "delay {delay}");
            }
            other => panic!("delay {delay}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_verifier_taking_over_before_s3_completed_completes_it_first() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 110);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.objects.faults.fail(Call::CompleteMultipart, 1);
    assert!(fx.complete(r.upload_id).await.is_err());
    assert!(fx.objects.has_upload(&s3_upload_id(&r)), "parts still held");
    let out = fx
        .uploads
        .continue_verification(r.upload_id, Budget::verifier(None))
        .await;
    assert_verified(&done(out.unwrap()), &data);
}

#[tokio::test]
async fn an_object_posted_into_an_aborted_or_failed_session_is_deleted() {
    let fx = Fx::new(limits());
    let (aborted, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    fx.uploads.abort(OWNER, aborted.upload_id).await.unwrap();
    let failed = posted(&fx, &bytes(10 * KIB, 111), Some(Sha256::of(b"x"))).await;
    let settled = fx
        .uploads
        .get_settled(
            OWNER,
            failed.upload_id,
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap();
    assert_eq!(settled.status(), Status::Failed);
    for r in [aborted, failed] {
        fx.objects.put_object(r.key.as_str(), b"a replayed form");
        let ev = fx
            .uploads
            .on_object_created(r.key.as_str(), None, Budget::verifier(None))
            .await;
        assert!(matches!(ev, Ok(EventOutcome::Ignored(_))), "{ev:?}");
        assert!(
            fx.objects.object(r.key.as_str()).is_none(),
            "{:?}",
            r.status()
        );
    }
}

#[tokio::test]
async fn no_session_out_of_pending_carries_a_ttl_nor_a_finished_one_a_lease() {
    let check = |r: &UploadRecord| {
        assert_eq!(
            r.status() == Status::Pending,
            r.expires_at().is_some(),
            "{r:?}"
        );
        if r.status() != Status::Completing {
            assert!(r.lease_token().is_none(), "{r:?}");
        }
        // A hand-over's only date is when the sweep may send it again.
        if !matches!(r.status(), Status::Completing | Status::Verifying) {
            assert_eq!(r.lease_until(), 0, "{r:?}");
        }
    };
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 107);
    let r = fx.uploaded(&data, None).await;
    check(&fx.peek(r.upload_id));
    check(&fx.complete(r.upload_id).await.unwrap());
    check(&fx.pause_once(r.upload_id).await);
    check(&done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    ));
    let aborted = fx.uploaded(&data, None).await;
    fx.uploads.abort(OWNER, aborted.upload_id).await.unwrap();
    check(&fx.peek(aborted.upload_id));
    let (p, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let _ = fx
        .uploads
        .complete(
            OWNER,
            p.upload_id,
            None,
            Some(Sha256::of(b"y")),
            Budget::request(fx.uploads.limits()),
        )
        .await;
    check(&fx.peek(p.upload_id));
}

#[tokio::test]
async fn a_dead_verifier_is_taken_over_by_a_delivery_after_its_lease() {
    let fx = Fx::new(large_limits());
    let data = bytes(300 * KIB, 106);
    let r = fx.uploaded(&data, None).await;
    assert_eq!(
        fx.complete(r.upload_id).await.unwrap().status(),
        Status::Verifying
    );
    // The verifier claims it, then dies.
    let claim = Change::Claim {
        lease_until: fx.clock.now() + LEASE.as_secs() as i64,
        token: LeaseToken::generate(),
        sized: None,
        expected_sha256: None,
        part_states: None,
    };
    let guard = Guard::status(Status::Verifying);
    fx.sessions
        .transition(r.upload_id, guard, claim, "now")
        .await
        .unwrap();
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let out = fx
        .uploads
        .on_object_created(r.key.as_str(), None, Budget::verifier(None))
        .await;
    assert_verified(&done(out.unwrap()), &data);
}

/// A replay's event that arrives while a holder verifies the form is not acknowledged: it comes
/// back after the lease, so a holder dying before its clean-up cannot leave the replay current.
#[tokio::test]
async fn a_replay_reported_during_a_live_lease_is_deleted_when_delivered_again() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 40);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let v1 = fx.objects.put_object(r.key.as_str(), &data);
    let verdict = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let cleanup = fx.objects.faults.park(Call::Purge);
    let holder = {
        let a = Arc::new(fx.other(limits()));
        let id = r.upload_id;
        tokio::spawn(async move { a.get_settled(OWNER, id, Budget::request(a.limits())).await })
    };
    verdict.reached().await;
    let v2 = fx.objects.put_object(r.key.as_str(), b"replayed form");
    let first = fx
        .uploads
        .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None))
        .await;
    assert!(first.is_err(), "delivered again later: {first:?}");
    verdict.release();
    // The holder wrote `verified`, then died before its clean-up.
    cleanup.reached().await;
    holder.abort();
    let _ = holder.await;
    let record = fx.peek(r.upload_id);
    assert_eq!(record.status(), Status::Verified);
    assert_eq!(record.version_id(), Some(&*v1));
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&b"replayed form"[..])
    );

    let again = fx
        .uploads
        .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(again, EventOutcome::Ignored(_)), "{again:?}");
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert_eq!(fx.objects.versions(r.key.as_str()), 1);
}

#[tokio::test]
async fn a_replay_whose_clean_up_keeps_failing_is_deleted_when_delivered_again() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 41);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), &data);
    let park = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let replay = async {
        park.reached().await;
        let v2 = fx.objects.put_object(r.key.as_str(), b"replayed form");
        let first = fx
            .uploads
            .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None));
        assert!(first.await.is_err());
        fx.objects.faults.fail(Call::Purge, 3);
        park.release();
        v2
    };
    let (verified, v2) = tokio::join!(
        fx.uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits())),
        replay
    );
    assert_verified(&verified.unwrap(), &data);
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&b"replayed form"[..])
    );
    fx.uploads
        .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None))
        .await
        .unwrap();
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
}

/// A form too large to verify inline, whose every event failed into the dead-letter queue: the
/// owner's next read hands it to the verifier, and the sweep keeps it moving from there.
#[tokio::test]
async fn a_large_posted_object_whose_event_was_dead_lettered_is_handed_over_by_a_read() {
    let fx = Fx::new(large_limits());
    let started = Arc::new(super::verifier::Started::default());
    let api = fx.other(large_limits()).with_verifier(started.clone());
    let data = bytes(200 * KIB, 42);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let v = fx.objects.put_object(r.key.as_str(), &data);
    for _ in 0..5 {
        fx.fail_once(Call::GetSession);
        let delivery =
            fx.uploads
                .on_object_created(r.key.as_str(), Some(&v), Budget::verifier(None));
        assert!(delivery.await.is_err());
    }
    let read = api
        .get_settled(OWNER, r.upload_id, Budget::request(api.limits()))
        .await
        .unwrap();
    assert_eq!(read.status(), Status::Verifying);
    assert_eq!(*started.0.lock().unwrap(), [r.upload_id]);
    assert_eq!(
        fx.s3(Call::GetRange),
        0,
        "the API does not hash a large object"
    );
    let verified = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
}

/// A hand-over whose write fails gives the lease back, so nothing waits for it to run out.
#[tokio::test]
async fn a_hand_over_whose_write_fails_releases_the_lease() {
    let fx = Fx::new(large_limits());
    let r = fx.uploaded(&bytes(300 * KIB, 43), None).await;
    fx.fail_once(Call::Transition(Status::Verifying));
    assert!(fx.complete(r.upload_id).await.is_err());
    let after = fx.peek(r.upload_id);
    assert_eq!(after.status(), Status::Completing);
    assert!(after.lease_until() < fx.clock.now(), "released: {after:?}");
    assert_eq!(
        fx.complete(r.upload_id).await.unwrap().status(),
        Status::Verifying
    );
}
