//! Reservations never leak: a give-back that fails is retried by the sweep until the slot is
//! free (with or without an announcer), and a reopened session's reservation lives as long as
//! the session.

use super::*;
use crate::ports::{OwnerLimit, SessionStore};

/// One open session per owner.
fn one_open() -> Limits {
    Limits {
        max_open_sessions_per_owner: 1,
        ..limits()
    }
}

fn sweep_budget() -> Budget {
    Budget::verifier(None)
}

#[tokio::test]
async fn a_failed_give_back_is_retried_by_the_sweep_until_the_slot_is_free() {
    let fx = Fx::new(one_open());
    let data = bytes(1000, 100);
    let r = fx.uploaded(&data, None).await;
    // Throttled three times: at the verdict and at the sweep's first two tries.
    fx.sessions.faults.fail(Call::Unreserve, 3);
    assert_verified(&fx.complete(r.upload_id).await.unwrap(), &data);
    assert_eq!(
        fx.sessions.reserved(OWNER),
        (1, 1000),
        "the slot is still held"
    );
    assert!(
        fx.peek(r.upload_id).unannounced(),
        "the mark stays until the reservation is back"
    );
    assert_eq!(fx.announcer.of(r.upload_id), [Status::Verified]);
    let refused = fx.uploads.create(OWNER, new_upload(1)).await.unwrap_err();
    assert!(matches!(
        refused,
        Error::OverLimit(OwnerLimit::OpenSessions(1))
    ));
    for _ in 0..2 {
        assert!(fx.uploads.sweep(10, sweep_budget()).await.is_err());
        assert_eq!(fx.sessions.reserved(OWNER), (1, 1000));
        assert!(fx.peek(r.upload_id).unannounced());
    }
    fx.uploads.sweep(10, sweep_budget()).await.unwrap();
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
    assert!(
        !fx.peek(r.upload_id).unannounced(),
        "cleared once given back"
    );
    fx.uploads.create(OWNER, new_upload(1)).await.unwrap();
    // Done: a further sweep gives back nothing more (the new session keeps its slot).
    fx.uploads.sweep(10, sweep_budget()).await.unwrap();
    assert_eq!(fx.sessions.reserved(OWNER), (1, 1));
}

#[tokio::test]
async fn a_give_back_is_retried_by_an_instance_with_no_announcer() {
    let fx = Fx::new(one_open());
    let unconfigured = Uploads::new(fx.objects.clone(), fx.sessions.clone(), one_open(), VERIFY)
        .with_clock(fx.clock.clone());
    let data = bytes(1000, 101);
    let r = fx.uploaded(&data, None).await;
    fx.sessions.faults.fail(Call::Unreserve, 2);
    let completed = unconfigured
        .complete(OWNER, r.upload_id, None, None, Budget::request(&one_open()))
        .await
        .unwrap();
    assert_verified(&completed, &data);
    assert_eq!(fx.sessions.reserved(OWNER), (1, 1000));
    assert!(unconfigured.sweep(10, sweep_budget()).await.is_err());
    assert_eq!(fx.sessions.reserved(OWNER), (1, 1000));
    unconfigured.sweep(10, sweep_budget()).await.unwrap();
    assert_eq!(
        fx.sessions.reserved(OWNER),
        (0, 0),
        "given back by the sweep"
    );
    // The mark stays for an instance that announces, which gives back nothing twice.
    assert!(fx.peek(r.upload_id).unannounced());
    unconfigured.create(OWNER, new_upload(1)).await.unwrap();
    for sweeper in [&unconfigured, &fx.uploads] {
        sweeper.sweep(10, sweep_budget()).await.unwrap();
        assert_eq!(
            fx.sessions.reserved(OWNER),
            (1, 1),
            "the new session keeps its slot"
        );
    }
    assert!(!fx.peek(r.upload_id).unannounced());
    assert_eq!(fx.announcer.of(r.upload_id), [Status::Verified]);
}

#[tokio::test]
async fn a_reopened_session_extends_its_reservation() {
    let fx = Fx::new(one_open());
    let data = bytes(5 * MIB + 10, 102);
    let r = fx.uploaded(&data, None).await;
    let created_expiry = fx
        .sessions
        .reservation(OWNER, r.upload_id)
        .unwrap()
        .expires_at;
    // Most of the session's life later, S3 refuses the parts: the session is pending again,
    // with a new expiry.
    let ttl = one_open().session_ttl;
    fx.clock.advance(ttl - Duration::from_secs(60));
    fx.objects.faults.fail_with(
        Call::CompleteMultipart,
        PortError::Rejected("InvalidPart".into()),
    );
    fx.complete(r.upload_id).await.unwrap_err();
    let reopened = fx.peek(r.upload_id);
    assert_eq!(reopened.status(), Status::Pending);
    let held = fx.sessions.reservation(OWNER, r.upload_id).unwrap();
    assert_eq!(Some(held.expires_at), reopened.expires_at());
    assert!(held.expires_at > created_expiry);
    // Past the first expiry the session is live, and so is its slot.
    fx.clock.advance(Duration::from_secs(120));
    let refused = fx.uploads.create(OWNER, new_upload(1)).await.unwrap_err();
    assert!(matches!(
        refused,
        Error::OverLimit(OwnerLimit::OpenSessions(1))
    ));
    assert_verified(&fx.complete(r.upload_id).await.unwrap(), &data);
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
}

#[tokio::test]
async fn a_reopened_session_whose_reservation_expired_reserves_again() {
    let fx = Fx::new(one_open());
    let data = bytes(5 * MIB + 10, 103);
    let r = fx.uploaded(&data, None).await;
    // Its reservation expired and was given back (by the owner's next create).
    let limits = fx.uploads.owner_limits();
    fx.sessions
        .unreserve(OWNER, r.upload_id, limits)
        .await
        .unwrap();
    fx.objects.faults.fail_with(
        Call::CompleteMultipart,
        PortError::Rejected("InvalidPart".into()),
    );
    fx.complete(r.upload_id).await.unwrap_err();
    assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);
    assert_eq!(fx.sessions.reserved(OWNER), (1, data.len() as u64));
}

fn new_upload(size: u64) -> NewUpload {
    NewUpload {
        filename: Filename::parse("f.bin").unwrap(),
        size,
        content_type: ContentType::default(),
        sha256: None,
        part_size: None,
        metadata: Metadata::default(),
        part_checksums: false,
    }
}
