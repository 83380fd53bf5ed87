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
        announced.unannounced(),
        "announced before the mark is cleared"
    );
    let mut as_stored = announced.clone();
    as_stored.mark_announced();
    assert_eq!(as_stored, verified);
    for id in [ok.upload_id, bad.upload_id, gone.upload_id] {
        assert!(!fx.peek(id).unannounced(), "{id}");
    }
    // Asking again (a second `complete`, a second `DELETE`) announces nothing more.
    fx.complete(ok.upload_id).await.unwrap();
    fx.uploads.abort(OWNER, gone.upload_id).await.unwrap();
    assert_eq!(fx.announcer.sent().len(), 3);
    assert_eq!(
        fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap(),
        []
    );
    assert_eq!(fx.announcer.sent().len(), 3);
}

#[tokio::test]
async fn a_verdict_whose_write_failed_is_never_announced() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 61);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.fail_once(Call::Transition(Status::Verified));
    fx.complete(r.upload_id).await.unwrap_err();
    assert_eq!(fx.peek(r.upload_id).status(), Status::Completing);
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
            other.complete(OWNER, id, None, None, Budget::request(other.limits())),
            abort
        );
        let written = fx.peek(id).status();
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
    assert_eq!(verified.status(), Status::Verified);
    assert!(fx.announcer.sent().is_empty());
    assert!(fx.peek(r.upload_id).unannounced());

    // The sweep's first try fails too: the mark stays for the next.
    fx.announcer.faults.fail(Call::Announce, 1);
    fx.uploads
        .sweep(10, Budget::verifier(None))
        .await
        .unwrap_err();
    assert!(fx.peek(r.upload_id).unannounced());

    fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    assert_eq!(fx.announcer.of(r.upload_id), [Status::Verified]);
    assert!(!fx.peek(r.upload_id).unannounced());
    fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
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
    assert!(fx.peek(r.upload_id).unannounced());
    fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    assert_eq!(
        fx.announcer.of(r.upload_id),
        [Status::Verified, Status::Verified]
    );
    assert!(!fx.peek(r.upload_id).unannounced());
}

// ---- Review: failing tests (each names what it proves) ----

/// An announcer that EventBridge refuses for one record, always (a per-entry failure such as
/// `MalformedDetail`, a record the bus's policy rejects), and accepts every other.
struct RefusesOne(UploadId, Arc<MemoryAnnouncer>);

#[async_trait::async_trait]
impl crate::ports::Announcer for RefusesOne {
    async fn announce(&self, record: &UploadRecord) -> Result<(), PortError> {
        if record.upload_id == self.0 {
            return Err(PortError::unavailable(
                crate::ports::Upstream::Events,
                "EventBridge refused the event: MalformedDetail",
            ));
        }
        self.1.announce(record).await
    }
}

#[tokio::test]
async fn one_verdict_that_cannot_be_announced_does_not_hold_back_every_other() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 80);
    // Two verdicts whose inline announcements failed (EventBridge throttled both).
    let poison = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let other = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.announcer.faults.fail(Call::Announce, 2);
    fx.complete(poison.upload_id).await.unwrap();
    fx.complete(other.upload_id).await.unwrap();
    assert!(fx.peek(poison.upload_id).unannounced() && fx.peek(other.upload_id).unannounced());

    // The sweep's announcer refuses the first record it finds, on every run.
    let sweeper = fx
        .other(limits())
        .with_announcer(Arc::new(RefusesOne(poison.upload_id, fx.announcer.clone())));
    for _ in 0..5 {
        let _ = sweeper.sweep(200, Budget::verifier(None)).await;
    }
    // The other verdict is owed an announcement that nothing blocks but its neighbour.
    assert_eq!(
        fx.announcer.of(other.upload_id),
        [Status::Verified],
        "a verdict stays unannounced behind one that EventBridge refuses"
    );
}

#[tokio::test]
async fn a_stalled_session_that_cannot_be_redriven_does_not_hold_back_announcements() {
    let fx = Fx::new(large_limits());
    // A verdict whose inline announcement failed.
    let small = bytes(50 * KIB, 81);
    let v = fx.uploaded(&small, Some(Sha256::of(&small))).await;
    fx.announcer.faults.fail(Call::Announce, 1);
    fx.complete(v.upload_id).await.unwrap();
    assert!(fx.peek(v.upload_id).unannounced());
    // A session handed over by an API that could not start the verifier: stalled at once.
    let big = bytes(300 * KIB, 82);
    let s = fx.uploaded(&big, Some(Sha256::of(&big))).await;
    assert_eq!(
        fx.complete(s.upload_id).await.unwrap().status(),
        Status::Verifying
    );
    // The sweep's re-drive keeps failing (the verifier's queue is gone, or its send is denied).
    let sweeper = fx.other(large_limits()).with_verifier(Arc::new(NoQueue));
    fx.clock.advance(LEASE + Duration::from_secs(1));
    for _ in 0..3 {
        assert!(sweeper.sweep(200, Budget::verifier(None)).await.is_err());
    }
    assert_eq!(
        fx.announcer.of(v.upload_id),
        [Status::Verified],
        "announcements wait on an unrelated re-drive"
    );
}

struct NoQueue;

#[async_trait::async_trait]
impl crate::ports::Continuation for NoQueue {
    async fn schedule(&self, _: UploadId) -> Result<(), PortError> {
        Err(PortError::unavailable(
            crate::ports::Upstream::Queue,
            "AWS.SimpleQueueService.NonExistentQueue",
        ))
    }
}

#[tokio::test]
async fn an_instance_without_an_announcer_does_not_clear_verdicts_owed_an_announcement() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 83);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.announcer.faults.fail(Call::Announce, 1);
    fx.complete(r.upload_id).await.unwrap();
    assert!(fx.peek(r.upload_id).unannounced());
    // A sweep over the same table by an instance with no EVENT_BUS_NAME (a local server or
    // a stack deployed with EventBusName="") ...
    let unconfigured = Uploads::new(fx.objects.clone(), fx.sessions.clone(), limits(), VERIFY)
        .with_clock(fx.clock.clone());
    unconfigured
        .sweep(10, Budget::verifier(None))
        .await
        .unwrap();
    // ... and the verdict is never announced by anyone.
    fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    assert_eq!(
        fx.announcer.of(r.upload_id),
        [Status::Verified],
        "the mark was cleared with nothing announced"
    );
}
