//! Upstream faults at every step.

use super::*;

#[tokio::test]
async fn an_upstream_fault_at_any_step_leaves_a_state_the_next_complete_resumes() {
    struct Case {
        fault: Call,
        /// The record right after the failed `complete`.
        left: Status,
        /// The failed call still holds the lease (nobody could release it). Since leases are
        /// released on every exit path, only a caller that dies keeps one.
        lease_held: bool,
        /// CompleteMultipartUpload calls in all: a resumed completion does not repeat it.
        s3_completions: usize,
    }
    let case = |fault, left, lease_held, s3_completions| Case {
        fault,
        left,
        lease_held,
        s3_completions,
    };
    let cases = [
        case(Call::GetSession, Status::Pending, false, 1),
        case(Call::ListParts, Status::Pending, false, 1),
        case(
            Call::Transition(Status::Completing),
            Status::Pending,
            false,
            1,
        ),
        case(Call::CompleteMultipart, Status::Completing, false, 2),
        case(Call::Head, Status::Completing, false, 1),
        case(Call::GetRange, Status::Completing, false, 1),
        case(
            Call::Transition(Status::Verified),
            Status::Completing,
            false,
            1,
        ),
    ];
    let data = bytes(5 * MIB + 1000, 19);
    for c in cases {
        let fx = Fx::new(impatient_limits());
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        let id = r.upload_id;
        fx.fail_once(c.fault);

        let err = fx.complete(id).await.unwrap_err();
        let what = format!("{:?}", c.fault);
        assert!(
            matches!(err, Error::Upstream(PortError::Unavailable { .. })),
            "{what}: {err:?}"
        );
        let left = fx.peek(id);
        assert_eq!(left.status(), c.left, "{what}");
        assert!(left.error().is_none() && left.sha256().is_none(), "{what}");
        if c.lease_held {
            assert!(left.lease_until() >= fx.clock.now(), "{what}");
            // The next caller answers the record still held (202), not a conflict.
            let waiting = fx.complete(id).await.unwrap();
            assert_eq!(waiting, left, "{what}");
            fx.clock.advance(LEASE + Duration::from_secs(1));
        } else {
            assert_eq!(left.lease_until(), 0, "{what}: released");
        }

        let verified = fx.complete(id).await.unwrap();
        assert_verified(&verified, &data);
        assert_eq!(fx.s3(Call::CompleteMultipart), c.s3_completions, "{what}");
        assert_eq!(
            fx.objects.object(r.key.as_str()).as_deref(),
            Some(&data[..])
        );
        assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
    }
}

/// Only the object's absence or a digest mismatch is a verdict: S3 refusing access (an IAM or
/// KMS change, a skewed clock), throttling or a 5xx on the HEAD after completion, or on the
/// reads, leaves the session `completing` with the cause, deletes nothing, and verifies once S3
/// answers again.
#[tokio::test]
async fn an_upstream_error_on_the_object_is_never_a_verdict_and_deletes_nothing() {
    for call in [Call::Head, Call::GetRange] {
        let fx = Fx::new(limits());
        let data = bytes(300 * KIB, 61);
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        fx.objects.faults.fail(call, 1);

        let err = fx.complete(r.upload_id).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Upstream(PortError::Unavailable {
                    service: Upstream::S3,
                    ..
                })
            ),
            "{call:?}: {err:?}"
        );
        let kept = fx.peek(r.upload_id);
        assert_eq!(kept.status(), Status::Completing, "{call:?}");
        let fault = kept.fault().unwrap();
        assert_eq!(
            (fault.cause.as_str(), fault.attempts),
            ("S3 request failed", 1)
        );
        assert_eq!(
            fx.s3(Call::Purge) + fx.s3(Call::Delete),
            0,
            "nothing deleted"
        );
        assert!(fx.objects.object(r.key.as_str()).is_some());

        // S3 answers again: the next attempt verifies, and the fault is gone with the verdict.
        let verified = fx.complete(r.upload_id).await.unwrap();
        assert_verified(&verified, &data);
        assert_eq!(verified.fault(), None);
    }
}

/// A fault that repeats backs off: the first is retried at once, each next one waits longer,
/// and meanwhile neither a `complete` nor the sweep hammers the failing upstream.
#[tokio::test]
async fn repeated_upstream_faults_back_off_and_the_sweep_finishes_after_them() {
    let fx = Fx::new(impatient_limits());
    let data = bytes(300 * KIB, 62);
    let r = fx.uploaded(&data, None).await;
    fx.objects.faults.fail(Call::Head, 2);
    assert!(fx.complete(r.upload_id).await.is_err());
    assert_eq!(fx.peek(r.upload_id).lease_until(), 0, "the first: at once");
    assert!(fx.complete(r.upload_id).await.is_err());
    let second = fx.peek(r.upload_id);
    assert_eq!(second.fault().map(|f| f.attempts), Some(2));
    let wait = second.lease_until() - fx.clock.now();
    assert!(
        (29..=30).contains(&wait),
        "the second waits 30 s, not {wait}"
    );

    // Inside the back-off: a client is answered the running record; the sweep leaves it.
    let heads = fx.s3(Call::Head);
    let waiting = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(waiting.status(), Status::Completing);
    let swept = fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    assert!(swept.is_empty(), "{swept:?}");
    assert_eq!(fx.s3(Call::Head), heads, "S3 was not asked again");

    // After it, the sweep resumes it (no verifier configured: it verifies here).
    fx.clock.advance(Duration::from_secs(31));
    let swept = fx.uploads.sweep(10, Budget::verifier(None)).await.unwrap();
    assert_eq!(swept, [r.upload_id]);
    assert_verified(&fx.peek(r.upload_id), &data);
}
