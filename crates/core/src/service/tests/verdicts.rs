//! Failed verifications.

use super::*;

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
    assert_eq!(failed.status(), Status::Failed);
    let why = failed.error().map(str::to_owned).unwrap();
    assert!(
        why.contains("sha256 mismatch") && why.contains(&wrong.to_hex()),
        "{why}"
    );
    assert_eq!(
        failed.sha256(),
        Some(Sha256::of(&data)),
        "the computed digest is kept"
    );
    assert_eq!(failed.lease_until(), 0);
    assert_eq!(*failed, fx.peek(r.upload_id));
    assert!(fx.objects.object(r.key.as_str()).is_none());
    assert!(matches!(
        Error::VerificationFailed(failed),
        Error::VerificationFailed(_)
    ));

    // Completing again answers the same verdict without verifying again.
    let again = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(&again, Error::VerificationFailed(r) if r.error() == Some(&*why)));
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
    fx.objects.faults.fail(Call::Purge, 1);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Upstream(PortError::Unavailable { .. })),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!(
        (after.status(), after.lease_until()),
        (Status::Completing, 0)
    );
    // The verdict is decided (and kept for whoever finishes), not yet final.
    assert!(
        after
            .error()
            .is_some_and(|e| e.starts_with("sha256 mismatch")),
        "{:?}",
        after.error()
    );
    assert_eq!(fx.db(Call::Transition(Status::Failed)), 0);
    assert!(
        fx.objects.object(r.key.as_str()).is_some(),
        "still there: not yet failed"
    );

    let err = fx.complete(r.upload_id).await.unwrap_err();
    let Error::VerificationFailed(failed) = err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    assert_eq!(failed.status(), Status::Failed);
    assert!(failed.error().unwrap().contains("sha256 mismatch"));
    assert!(fx.objects.object(r.key.as_str()).is_none());
    assert_eq!(
        fx.objects.versions(r.key.as_str()),
        0,
        "no version left behind"
    );
    assert_eq!(fx.s3(Call::Purge), 2);
}

/// When the final `failed` write fails after the object is deleted, the verdict recorded before
/// the delete (`Failing`) is what the completion taken over after the lease carries out.
#[tokio::test]
async fn a_failed_verdict_whose_write_failed_keeps_its_reason_when_taken_over() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 8);
    let r = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    fx.sessions.faults.fail(Call::Transition(Status::Failed), 1);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(err, Error::Upstream(_)), "{err:?}");
    assert_eq!(fx.peek(r.upload_id).status(), Status::Completing);
    assert!(fx.objects.object(r.key.as_str()).is_none());

    fx.clock.advance(LEASE + Duration::from_secs(1));
    let err = fx.complete(r.upload_id).await.unwrap_err();
    let Error::VerificationFailed(failed) = err else {
        panic!("expected VerificationFailed, got {err:?}");
    };
    let why = failed.error().map(str::to_owned).unwrap_or_default();
    assert!(why.contains("sha256 mismatch"), "recorded reason: {why:?}");
    assert_eq!(failed.sha256(), Some(Sha256::of(&data)));
}
