//! Verdicts announced (EventBridge): once each, only after the write that made them, and by the
//! sweep when the announcement failed or its announcer died.

use super::*;

#[tokio::test]
async fn every_verdict_is_announced_once_after_the_write_that_made_it() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 60);

    let ok = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let verified = fx.complete(ok.upload_id).await.unwrap();
    assert_eq!(fx.announcer.of(ok.upload_id), [Status::Verified]);

    let bad = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    fx.complete(bad.upload_id).await.unwrap_err();
    assert_eq!(fx.announcer.of(bad.upload_id), [Status::Failed]);

    let gone = fx.uploaded(&data, None).await;
    fx.uploads.abort(OWNER, gone.upload_id).await.unwrap();
    assert_eq!(fx.announcer.of(gone.upload_id), [Status::Aborted]);

    // What was announced is the record as written, and the mark is cleared once it went out.
    let sent = fx.announcer.sent();
    let announced = sent.iter().find(|r| r.upload_id == ok.upload_id).unwrap();
    assert!(
        announced.unannounced,
        "announced before the mark is cleared"
    );
    let as_stored = UploadRecord {
        unannounced: false,
        ..announced.clone()
    };
    assert_eq!(as_stored, verified);
    for id in [ok.upload_id, bad.upload_id, gone.upload_id] {
        assert!(!fx.peek(id).unannounced, "{id}");
    }
    // Asking again (a second `complete`, a second `DELETE`) announces nothing more.
    fx.complete(ok.upload_id).await.unwrap();
    fx.uploads.abort(OWNER, gone.upload_id).await.unwrap();
    assert_eq!(fx.announcer.sent().len(), 3);
    assert_eq!(fx.uploads.sweep(10, None).await.unwrap(), []);
    assert_eq!(fx.announcer.sent().len(), 3);
}

#[tokio::test]
async fn a_verdict_whose_write_failed_is_never_announced() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 61);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.fail_once(Call::Transition(Status::Verified));
    fx.complete(r.upload_id).await.unwrap_err();
    assert_eq!(fx.peek(r.upload_id).status, Status::Completing);
    assert!(fx.announcer.sent().is_empty());

    // The next caller finishes it, and only that verdict is announced.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    fx.complete(r.upload_id).await.unwrap();
    assert_eq!(fx.announcer.of(r.upload_id), [Status::Verified]);
}

#[tokio::test]
async fn racing_completions_and_aborts_announce_only_the_verdict_that_was_written() {
    let data = bytes(100 * KIB, 62);
    for delay in 0..6 {
        let fx = Fx::new(limits());
        let r = fx.uploaded(&data, None).await;
        let id = r.upload_id;
        let other = fx.other(limits());
        let abort = async {
            for _ in 0..delay {
                tokio::task::yield_now().await;
            }
            fx.uploads.abort(OWNER, id).await
        };
        let _ = tokio::join!(
            fx.complete(id),
            other.complete(OWNER, id, None, None),
            abort
        );
        let written = fx.peek(id).status;
        assert!(written.is_final(), "delay {delay}: {written:?}");
        assert_eq!(fx.announcer.of(id), [written], "delay {delay}");
    }
}

#[tokio::test]
async fn an_announcement_that_failed_is_sent_by_the_sweep() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 63);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.announcer.faults.fail(Call::Announce, 1);

    // The verdict stands; only its announcement is owed.
    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(verified.status, Status::Verified);
    assert!(fx.announcer.sent().is_empty());
    assert!(fx.peek(r.upload_id).unannounced);

    // The sweep's first try fails too: the mark stays for the next.
    fx.announcer.faults.fail(Call::Announce, 1);
    fx.uploads.sweep(10, None).await.unwrap_err();
    assert!(fx.peek(r.upload_id).unannounced);

    fx.uploads.sweep(10, None).await.unwrap();
    assert_eq!(fx.announcer.of(r.upload_id), [Status::Verified]);
    assert!(!fx.peek(r.upload_id).unannounced);
    fx.uploads.sweep(10, None).await.unwrap();
    assert_eq!(fx.announcer.sent().len(), 1);
}

#[tokio::test]
async fn a_verdict_whose_announcer_died_before_clearing_is_announced_again() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 64);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    // Announced, but the mark's clearing failed (the holder died in between): at-least-once
    // means it goes out again, with the same upload id and status to drop it by.
    fx.sessions.faults.fail(Call::Announced, 1);
    fx.complete(r.upload_id).await.unwrap();
    assert!(fx.peek(r.upload_id).unannounced);
    fx.uploads.sweep(10, None).await.unwrap();
    assert_eq!(
        fx.announcer.of(r.upload_id),
        [Status::Verified, Status::Verified]
    );
    assert!(!fx.peek(r.upload_id).unannounced);
}
