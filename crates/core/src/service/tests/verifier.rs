//! The verifier: hand-over, pauses, continuations, events.

use super::*;

/// A large (verifier-bound) upload of `len` bytes, completed by the API: `verifying`.
async fn handed_over(fx: &Fx, len: u64, seed: u32) -> (UploadRecord, Vec<u8>) {
    let data = bytes(len, seed);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let answered = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(answered.status(), Status::Verifying);
    assert_eq!(answered.verified_bytes(), 0);
    assert_queued(&answered, fx);
    assert_eq!(
        fx.s3(Call::GetRange),
        0,
        "the API does not read a large object"
    );
    (answered, data)
}

/// A hand-over leaves no holder, and the sweep alone until its continuation is due to have
/// started (a lease from now).
fn assert_queued(r: &UploadRecord, fx: &Fx) {
    assert!(r.lease_token().is_none(), "{r:?}");
    let now = fx.clock.now();
    let due = r.lease_until();
    assert!(due > now && due <= now + LEASE.as_secs() as i64, "{r:?}");
}

#[tokio::test]
async fn an_object_replaced_between_continuations_leaves_the_pinned_version_verified() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 512 * KIB + 1000, 9).await;

    let first = fx.pause_once(r.upload_id).await;
    assert_eq!(first.status(), Status::Verifying);
    assert_eq!(first.verified_bytes(), RANGE);
    assert_queued(&first, &fx);
    assert!(first.saved_progress().is_some());
    let pinned = first.version_id().map(str::to_owned).unwrap();
    assert_eq!(first, fx.peek(r.upload_id));

    // Someone writes other bytes under the key: a new version, the pinned one untouched.
    let other = bytes(data.len() as u64, 10);
    fx.objects.put_object(r.key.as_str(), &other);

    let verified = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
    assert_eq!(verified.version_id(), Some(&*pinned));
    // Only the verified version stays under the key.
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert_eq!(fx.objects.versions(r.key.as_str()), 1);
}

#[tokio::test]
async fn an_object_replaced_mid_read_is_never_mixed_in() {
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
        fx.uploads
            .on_object_created(r.key.as_str(), None, Budget::verifier(None)),
        overwrite
    );
    let verified = done(outcome.unwrap());
    assert_verified(&verified, &data);
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
}

#[tokio::test]
async fn a_pinned_version_deleted_between_continuations_fails() {
    let fx = Fx::new(large_limits());
    let (r, _data) = handed_over(&fx, 512 * KIB + 1000, 14).await;
    let first = fx.pause_once(r.upload_id).await;
    let pinned = first.version_id().map(str::to_owned).unwrap();
    fx.objects
        .delete(r.key.as_str(), Some(&pinned))
        .await
        .unwrap();
    let failed = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_eq!(failed.status(), Status::Failed);
    assert!(failed.error().unwrap().contains("no longer exists"));
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 0);
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
            .continue_verification(r.upload_id, Budget::verifier(Some(Instant::now())))
            .await
        {
            Ok(EventOutcome::Paused(p)) => {
                assert_eq!(p.status(), Status::Verifying);
                assert_queued(&p, &fx);
                assert!(p.saved_progress().is_some() && p.sha256().is_none());
                progress.push(p.verified_bytes());
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
            .continue_verification(r2.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&once, &data);
    assert_eq!(once.sha256(), finished.sha256());
    assert_eq!(
        fx2.db(Call::Transition(Status::Verifying)),
        1,
        "never paused"
    );
}

#[tokio::test]
async fn an_event_that_outruns_the_hand_over_is_acknowledged_and_the_hand_over_starts_the_verifier()
{
    let fx = Fx::new(large_limits());
    let started = Arc::new(Started::default());
    let api = fx.other(large_limits()).with_verifier(started.clone());
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
        let outcome = fx
            .uploads
            .on_object_created(key, None, Budget::verifier(None))
            .await;
        (seen, outcome)
    };
    let (handed, (seen, outcome)) = tokio::join!(
        api.complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits())
        ),
        event
    );

    assert_eq!(seen.status(), Status::Completing);
    assert!(
        seen.lease_until() >= fx.clock.now(),
        "the API's lease was live"
    );
    // Acknowledged at once: no waiting, no error that would send it to the dead-letter queue.
    assert!(
        matches!(outcome, Ok(EventOutcome::Ignored(_))),
        "{outcome:?}"
    );
    assert_eq!(handed.unwrap().status(), Status::Verifying, "202 verifying");
    assert_eq!(
        *started.0.lock().unwrap(),
        [r.upload_id],
        "the hand-over started the verifier"
    );
    let verified = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn the_sweep_redrives_a_lost_hand_over_and_a_verifier_that_died_mid_run() {
    let fx = Fx::new(large_limits());
    let started = Arc::new(Started::default());
    let sweeper = fx.other(large_limits()).with_verifier(started.clone());
    // Handed over by an API that could not start the verifier (and S3's event came early).
    let (r, data) = handed_over(&fx, 300 * KIB, 60).await;
    let id = r.upload_id;
    let unrelated = fx.uploaded(&bytes(1000, 61), None).await;
    // While its continuation may still be queued, the sweep does not send it again.
    assert!(
        sweeper
            .sweep(10, Budget::verifier(None))
            .await
            .unwrap()
            .is_empty()
    );
    fx.clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(
        sweeper.sweep(10, Budget::verifier(None)).await.unwrap(),
        [id]
    );
    assert_eq!(*started.0.lock().unwrap(), [id]);

    // The verifier it started takes the session, then dies before writing its verdict: the
    // write fails, and so does the release that would follow it (the process is gone). Both
    // faults are armed once its claim has been written.
    let verdict = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let die = async {
        verdict.reached().await;
        let faults = &fx.sessions.faults;
        faults.fail(Call::Transition(Status::Verified), 1);
        faults.fail(Call::Transition(Status::Completing), 1);
        verdict.release();
    };
    let (run, ()) = tokio::join!(
        fx.uploads.continue_verification(id, Budget::verifier(None)),
        die
    );
    assert!(run.is_err());
    let held = fx.peek(id);
    assert_eq!(held.status(), Status::Completing);
    assert!(held.lease_until() >= fx.clock.now(), "{held:?}");
    // Its message, delivered again during the lease, is acknowledged; the sweep leaves it alone.
    assert!(matches!(
        fx.uploads
            .continue_verification(id, Budget::verifier(None))
            .await
            .unwrap(),
        EventOutcome::Ignored(_)
    ));
    assert!(
        sweeper
            .sweep(10, Budget::verifier(None))
            .await
            .unwrap()
            .is_empty()
    );

    // Once the lease has run out, the sweep re-drives it and the verification finishes.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(
        sweeper.sweep(10, Budget::verifier(None)).await.unwrap(),
        [id]
    );
    assert_eq!(started.0.lock().unwrap().len(), 2);
    let verified = done(
        fx.uploads
            .continue_verification(id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
    assert!(
        sweeper
            .sweep(10, Budget::verifier(None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(fx.peek(unrelated.upload_id).status(), Status::Pending);
}

#[tokio::test]
async fn a_sweep_with_no_verifier_verifies_what_it_finds() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 300 * KIB, 62).await;
    fx.clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(
        fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap(),
        [r.upload_id]
    );
    assert_verified(&fx.peek(r.upload_id), &data);
}

#[tokio::test]
async fn a_repeated_event_is_ignored() {
    let fx = Fx::new(large_limits());
    let (r, data) = handed_over(&fx, 200 * KIB, 15).await;
    let key = r.key.as_str();

    let first = done(
        fx.uploads
            .on_object_created(key, None, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&first, &data);
    let reads = fx.s3(Call::GetRange);
    let second = fx
        .uploads
        .on_object_created(key, None, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(second, EventOutcome::Ignored(_)), "{second:?}");
    assert_eq!(fx.s3(Call::GetRange), reads);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(fx.peek(r.upload_id), first);

    // Keys that are not a session's are ignored.
    for other in ["elsewhere/x", &format!("uploads/{}/other.bin", r.upload_id)] {
        let outcome = fx
            .uploads
            .on_object_created(other, None, Budget::verifier(None))
            .await
            .unwrap();
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
        fx.uploads
            .on_object_created(key, None, Budget::verifier(None)),
        fx.uploads
            .on_object_created(key, None, Budget::verifier(None))
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
        fx.uploads
            .on_object_created(r.key.as_str(), None, Budget::verifier(None))
            .await
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
    assert_eq!(stuck.status(), Status::Completing);
    assert!(
        stuck.lease_until() < fx.clock.now(),
        "the failed hand-over gives its lease back"
    );

    // Once the lease has run out, a redelivered event takes the completion over.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let verified = done(
        fx.uploads
            .on_object_created(r.key.as_str(), None, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
    assert_eq!(fx.s3(Call::CompleteMultipart), 1);
}

/// Records which sessions the service started the verifier on.
#[derive(Default)]
pub(super) struct Started(pub(super) std::sync::Mutex<Vec<UploadId>>);

#[async_trait::async_trait]
impl crate::ports::Continuation for Started {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError> {
        self.0.lock().unwrap().push(id);
        Ok(())
    }
}

#[tokio::test]
async fn every_hand_over_by_the_api_starts_the_verifier() {
    let fx = Fx::new(large_limits());
    let started = Arc::new(Started::default());
    let api = fx.other(large_limits()).with_verifier(started.clone());
    let data = bytes(300 * KIB, 40);
    let r = fx.uploaded(&data, None).await;
    let handed = api
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits()),
        )
        .await
        .unwrap();
    assert_eq!(handed.status(), Status::Verifying);
    assert_eq!(*started.0.lock().unwrap(), [r.upload_id]);
    // What the started verifier does; its own pauses are its own to continue.
    let verifier = fx.other(large_limits()).with_verifier(started.clone());
    let past = Some(Instant::now());
    let paused = paused(
        verifier
            .continue_verification(r.upload_id, Budget::verifier(past))
            .await
            .unwrap(),
    );
    assert_eq!(paused.status(), Status::Verifying);
    assert_eq!(
        started.0.lock().unwrap().len(),
        1,
        "the verifier's pause starts nothing"
    );
    let verified = done(
        verifier
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
}

#[tokio::test]
async fn a_completion_taken_over_after_its_holder_died_starts_the_verifier_again() {
    let fx = Fx::new(large_limits());
    let started = Arc::new(Started::default());
    let api = fx.other(large_limits()).with_verifier(started.clone());
    let r = fx.uploaded(&bytes(300 * KIB, 41), None).await;
    // A holder that died before handing over: nothing but a later `complete` will move it.
    fx.sessions
        .faults
        .fail(Call::Transition(Status::Verifying), 1);
    assert!(
        api.complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits())
        )
        .await
        .is_err()
    );
    assert!(started.0.lock().unwrap().is_empty());
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let handed = api
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits()),
        )
        .await
        .unwrap();
    assert_eq!(handed.status(), Status::Verifying);
    assert_eq!(*started.0.lock().unwrap(), [r.upload_id]);
}

#[tokio::test]
async fn inline_verification_past_its_budget_hands_over_its_progress() {
    let no_time = Limits {
        verify_inline_budget: Duration::ZERO,
        ..limits()
    };
    let fx = Fx::new(no_time.clone());
    let started = Arc::new(Started::default());
    let api = fx.other(no_time).with_verifier(started.clone());
    let data = bytes(300 * KIB, 42);
    let r = fx.uploaded(&data, None).await;
    let handed = api
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits()),
        )
        .await
        .unwrap();
    assert_eq!(
        handed.status(),
        Status::Verifying,
        "202, not a timed-out request"
    );
    assert!(
        handed.verified_bytes() > 0 && handed.saved_progress().is_some(),
        "progress saved"
    );
    assert_eq!(*started.0.lock().unwrap(), [r.upload_id]);
    let verifier = fx.other(limits());
    let verified = done(
        verifier
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_verified(&verified, &data);
}
