//! Versions under a key, raced: a stale holder, a replay landing between two steps, a failed
//! clean-up. What stays under the key is always what the record names.

use super::*;

/// A form-POST session whose object (`data`) has arrived: the record and the version.
async fn posted(fx: &Fx, data: &[u8]) -> (UploadRecord, String) {
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let version = fx.objects.put_object(r.key.as_str(), data);
    (r, version)
}

#[tokio::test]
async fn a_stale_holder_never_deletes_the_version_the_record_names() {
    let fx = Fx::new(limits());
    let (r, v1) = posted(&fx, &bytes(10 * KIB, 1)).await;
    let a = fx.other(limits());
    // A has hashed v1; its verdict waits while B takes the completion over.
    let park = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let v2data = bytes(10 * KIB, 2);
    let b = async {
        park.reached().await;
        let v2 = fx.objects.put_object(r.key.as_str(), &v2data);
        fx.clock.advance(LEASE + Duration::from_secs(1));
        let b = fx
            .uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
            .await
            .unwrap();
        park.release();
        (b, v2)
    };
    let (a, (b, v2)) = tokio::join!(
        a.get_settled(OWNER, r.upload_id, Budget::request(a.limits())),
        b
    );
    assert_verified(&b, &v2data);
    assert_eq!(b.version_id(), Some(&*v2));
    assert_eq!(a.unwrap(), b, "A answers B's verdict");
    assert_eq!(
        fx.objects.version(r.key.as_str(), &v2).as_deref(),
        Some(&v2data[..])
    );
    assert_eq!(fx.objects.version(r.key.as_str(), &v1), None);
    assert_eq!(fx.objects.versions(r.key.as_str()), 1);
}

#[tokio::test]
async fn a_replay_reported_while_a_failure_is_carried_out_is_deleted() {
    let fx = Fx::new(limits());
    let declared_other = declared(Some(Sha256::of(b"other")));
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared_other, None)
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), &bytes(10 * KIB, 3));
    // The object is purged; the `failed` write waits.
    let park = fx.sessions.faults.park(Call::Transition(Status::Failed));
    let replay = async {
        park.reached().await;
        let v = fx.objects.put_object(r.key.as_str(), b"replayed form");
        let event = fx
            .uploads
            .on_object_created(r.key.as_str(), Some(&v), Budget::verifier(None));
        let outcome = event.await.unwrap();
        park.release();
        outcome
    };
    let (failed, outcome) = tokio::join!(
        fx.uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits())),
        replay
    );
    assert_eq!(failed.unwrap().status(), Status::Failed);
    assert!(matches!(outcome, EventOutcome::Ignored(_)), "{outcome:?}");
    assert_eq!(
        fx.objects.versions(r.key.as_str()),
        0,
        "unverified bytes under a failed key"
    );
}

#[tokio::test]
async fn a_clean_up_that_fails_once_is_retried() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 4);
    let (r, v1) = posted(&fx, &data).await;
    // Hashed; the verdict waits while a replay lands; its event fails, to come back later.
    let park = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let replay = async {
        park.reached().await;
        let v2 = fx.objects.put_object(r.key.as_str(), b"replayed form");
        let early = fx
            .uploads
            .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None));
        assert!(early.await.is_err());
        fx.objects.faults.fail(Call::Purge, 1);
        park.release();
    };
    let (verified, ()) = tokio::join!(
        fx.uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits())),
        replay
    );
    let verified = verified.unwrap();
    assert_verified(&verified, &data);
    assert_eq!(verified.version_id(), Some(&*v1));
    assert_eq!(fx.s3(Call::Purge), 2);
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert_eq!(fx.objects.versions(r.key.as_str()), 1);
}

#[tokio::test]
async fn a_version_purged_mid_read_answers_the_new_holders_verdict() {
    let fx = Fx::new(limits());
    let (r, _) = posted(&fx, &bytes(6 * RANGE, 5)).await;
    let a = fx.other(limits());
    // A pinned v1; its first read waits while B takes over, verifies v2 and purges v1.
    let park = fx.objects.faults.park(Call::GetRange);
    let v2data = bytes(6 * RANGE, 6);
    let b = async {
        park.reached().await;
        fx.objects.put_object(r.key.as_str(), &v2data);
        fx.clock.advance(LEASE + Duration::from_secs(1));
        let b = fx
            .uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
            .await
            .unwrap();
        park.release();
        b
    };
    let (a, b) = tokio::join!(
        a.get_settled(OWNER, r.upload_id, Budget::request(a.limits())),
        b
    );
    assert_verified(&b, &v2data);
    assert_eq!(a.unwrap(), b, "not a 404 for an upload that exists");
    assert_eq!(fx.peek(r.upload_id), b);
}

/// The bucket's lifecycle expires only versions tagged for removal (template.yaml): a replay
/// whose clean-up fails every time is still tagged, so it goes a day later; the verified
/// version is never tagged, so however the clean-up went it is never expired.
#[tokio::test]
async fn a_replay_whose_clean_up_is_lost_is_left_tagged_and_the_verified_version_never_is() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 7);
    let (r, v1) = posted(&fx, &data).await;
    let verified = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_verified(&verified, &data);
    // A replay lands; its clean-up fails on every delivery (three, then the dead-letter queue).
    let v2 = fx.objects.put_object(r.key.as_str(), b"replayed form");
    fx.objects.faults.fail(Call::Purge, 3);
    for _ in 0..3 {
        let delivered = fx
            .uploads
            .on_object_created(r.key.as_str(), Some(&v2), Budget::verifier(None))
            .await;
        assert!(delivered.is_err());
    }
    assert_eq!(
        fx.objects.versions(r.key.as_str()),
        2,
        "the delete was lost"
    );
    assert_eq!(fx.objects.marked_for_removal(r.key.as_str()), [v2]);
    assert!(!fx.objects.marked_for_removal(r.key.as_str()).contains(&v1));
}

/// A form replayed while its policy is valid makes the verified version noncurrent; when the
/// replay's clean-up is lost (dead-lettered), the sweep puts the key right once the policy and
/// its clean-ups are over: every other version goes and the verified one is current again.
#[tokio::test]
async fn a_replay_whose_clean_up_was_lost_is_undone_by_the_sweep_after_the_policy() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 8);
    let (r, v1) = posted(&fx, &data).await;
    let verified = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_verified(&verified, &data);
    let key = r.key.as_str();
    let v2 = fx.objects.put_object(key, b"replayed form");
    fx.objects.faults.fail(Call::Purge, 3);
    for _ in 0..3 {
        let delivered = fx
            .uploads
            .on_object_created(key, Some(&v2), Budget::verifier(None))
            .await;
        assert!(
            delivered.is_err(),
            "its clean-up fails, then it is dead-lettered"
        );
    }
    assert_eq!(
        fx.objects.object(key).as_deref(),
        Some(&b"replayed form"[..])
    );

    // While the form's policy (and its clean-ups) may still run, the sweep leaves the key.
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(fx.objects.versions(key), 2);

    let policy = fx.uploads.limits().post_form_expiry;
    fx.clock
        .advance(policy + crate::service::RECONCILE_AFTER + Duration::from_secs(1));
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(fx.objects.versions(key), 1);
    assert_eq!(fx.objects.object(key).as_deref(), Some(&data[..]));
    let current = fx.objects.head(key, None).await.unwrap().unwrap();
    assert_eq!(current.version_id.as_deref(), Some(&*v1));
    // Checked once: the next sweeps leave it.
    let purges = fx.s3(Call::Purge);
    fx.clock.advance(Duration::from_secs(3600));
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(fx.s3(Call::Purge), purges);
}
