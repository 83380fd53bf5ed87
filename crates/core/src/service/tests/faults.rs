//! Upstream faults at every step.

use super::*;

#[tokio::test]
async fn an_upstream_fault_at_any_step_leaves_a_state_the_next_complete_resumes() {
    struct Case {
        fault: Call,
        /// The record right after the failed `complete`.
        left: Status,
        /// The failed call still holds the lease (nobody could release it).
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
            true,
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
