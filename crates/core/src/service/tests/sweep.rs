//! The sweep is fair and bounded: sessions that keep failing upstream do not starve the rest,
//! a session being verified normally is not re-sent, and one run's work is bounded by its limit.

use crate::domain::Fault;

use super::*;

/// What the verifier function's schedule passes (`SWEEP_LIMIT`).
const LIMIT: u32 = 200;
/// More sessions failing the same way than one run re-drives.
const FAILING: usize = 230;
const HEALTHY: usize = 20;

/// Room for every session these tests open, and large objects handed to the verifier.
fn many() -> Limits {
    Limits {
        max_open_sessions_per_owner: 1000,
        ..large_limits()
    }
}

/// A small uploaded session whose holder died: its lease ran out at `until`; with `fault`, it
/// has been failing upstream and is backing off until then.
async fn stalled(fx: &Fx, seed: u32, until: i64, fault: Option<Fault>) -> (UploadRecord, Vec<u8>) {
    let data = bytes(1000, seed);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let mut dead = fx.peek(r.upload_id);
    let hold = match fault {
        Some(_) => Hold::BackingOff { until },
        None => Hold::Leased(Lease {
            until,
            token: LeaseToken::generate(),
        }),
    };
    dead.state = State::Completing {
        hold,
        fault,
        pinned: None,
        failing: None,
    };
    fx.sessions.put(dead);
    (r, data)
}

fn attempts(fx: &Fx, r: &UploadRecord) -> u32 {
    fx.peek(r.upload_id).fault().map_or(0, |f| f.attempts)
}

#[tokio::test]
async fn sessions_that_keep_failing_do_not_starve_the_rest_and_the_run_is_bounded() {
    let fx = Fx::new(many());
    let now = fx.clock.now();
    // Failing for a while (their S3 objects are unreachable to this service): they have been
    // due for longer than any healthy session, so oldest-first alone would take them first.
    let fault = Fault {
        cause: "S3 request failed".into(),
        attempts: 3,
    };
    let mut failing = Vec::new();
    for i in 0..FAILING {
        let (r, _) = stalled(&fx, i as u32, now - 600, Some(fault.clone())).await;
        fx.objects.fail_key(r.key.as_str());
        failing.push(r);
    }
    let mut healthy = Vec::new();
    for i in 0..HEALTHY {
        healthy.push(stalled(&fx, 1000 + i as u32, now - 60, None).await);
    }
    // Being verified normally: a live holder, and a hand-over whose continuation is queued.
    let live = stalled(&fx, 2000, now + 30, None).await.0;
    let big = bytes(300 * KIB, 2001);
    let queued = fx.uploaded(&big, Some(Sha256::of(&big))).await;
    assert_eq!(
        fx.complete(queued.upload_id).await.unwrap().status(),
        Status::Verifying
    );
    let reads_before = fx.db(Call::GetSession);

    // One run (no verifier configured: it verifies what it re-drives itself).
    let run = fx.uploads.sweep(LIMIT, Budget::verifier(None)).await;
    assert!(run.is_err(), "the failing ones failed again and say so");
    for (r, data) in &healthy {
        assert_verified(&fx.peek(r.upload_id), data);
    }
    let retried = failing.iter().filter(|r| attempts(&fx, r) == 4).count();
    assert_eq!(
        retried,
        LIMIT as usize - HEALTHY,
        "the failing ones fill the rest of the run and no more"
    );
    assert!(
        failing
            .iter()
            .all(|r| fx.peek(r.upload_id).status() == Status::Completing)
    );
    // Bounded: one read of the index, each session read once at most (the window is twice the
    // limit) and once more by the re-drive that takes it.
    assert_eq!(fx.db(Call::Stalled), 1);
    let reads = fx.db(Call::GetSession) - reads_before;
    assert!(
        reads <= 2 * LIMIT as usize + LIMIT as usize,
        "{reads} reads"
    );
    // Nothing being verified normally was touched.
    assert_eq!(fx.peek(live.upload_id).status(), Status::Completing);
    assert_eq!(fx.peek(live.upload_id).lease_until(), now + 30);
    assert_eq!(fx.peek(queued.upload_id).status(), Status::Verifying);
    assert_eq!(
        fx.s3(Call::GetRange) as u64,
        HEALTHY as u64,
        "one range per small object"
    );

    println!(
        "sweep: {FAILING} failing + {HEALTHY} healthy due, limit {LIMIT}: run 1 re-drove {} ({HEALTHY} healthy, {retried} failing), {reads} session reads, 1 index read",
        HEALTHY + retried
    );

    // The next run (five minutes on) reaches every failing session not yet retried: they are not
    // starved either, and each retried one backs off further.
    fx.clock.advance(Duration::from_secs(300));
    let _ = fx.uploads.sweep(LIMIT, Budget::verifier(None)).await;
    assert!(failing.iter().all(|r| attempts(&fx, r) >= 4));
}

#[tokio::test]
async fn a_queued_hand_over_is_sent_again_only_after_its_continuation_was_due() {
    let fx = Fx::new(many());
    let started = Arc::new(verifier_started());
    let sweeper = fx.other(many()).with_verifier(started.clone());
    let big = bytes(300 * KIB, 3000);
    let r = fx.uploaded(&big, Some(Sha256::of(&big))).await;
    fx.complete(r.upload_id).await.unwrap();
    // Swept twice while the continuation may still be queued (a lease from the hand-over).
    for _ in 0..2 {
        fx.clock.advance(LEASE / 2 - Duration::from_secs(1));
        assert!(
            sweeper
                .sweep(LIMIT, Budget::verifier(None))
                .await
                .unwrap()
                .is_empty()
        );
    }
    fx.clock.advance(LEASE);
    assert_eq!(
        sweeper.sweep(LIMIT, Budget::verifier(None)).await.unwrap(),
        [r.upload_id]
    );
    assert_eq!(started.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_run_with_no_time_left_re_drives_nothing() {
    let fx = Fx::new(many());
    let (r, _) = stalled(&fx, 4000, fx.clock.now() - 60, None).await;
    let over = Budget::verifier(Some(Instant::now()));
    assert!(fx.uploads.sweep(LIMIT, over).await.unwrap().is_empty());
    assert_eq!(fx.peek(r.upload_id).status(), Status::Completing);
    assert_eq!(fx.db(Call::GetSession), 0);
}

fn verifier_started() -> super::verifier::Started {
    super::verifier::Started::default()
}
