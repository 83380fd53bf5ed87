//! Racing and dying completions.

use super::*;

#[tokio::test]
async fn racing_completes_verify_once_and_both_answer_the_verified_record() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 1000, 1);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;

    let (a, b) = tokio::join!(fx.complete(r.upload_id), fx.complete(r.upload_id));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_verified(&a, &data);
    assert_eq!(a, b, "the waiter answers the winner's record");
    assert_eq!(fx.peek(r.upload_id), a);
    // Both tried to claim; only one went on.
    assert_eq!(fx.db(Call::Transition(Status::Completing)), 2);
    assert_eq!(fx.s3(Call::CompleteMultipart), 1);
    assert_eq!(fx.s3(Call::Head), 1);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    assert_eq!(
        fx.objects.object(r.key.as_str()).as_deref(),
        Some(&data[..])
    );
    assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
}

#[tokio::test]
async fn a_dead_holders_completion_is_taken_over_exactly_once() {
    // The holder died before completing in S3, or after (the multipart upload is gone).
    for died_after_s3 in [false, true] {
        let fx = Fx::new(limits());
        let data = bytes(5 * MIB + 333, 2);
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        let id = r.upload_id;
        let mut dead = fx.peek(id);
        dead.state = State::Completing {
            hold: Hold::Leased(Lease {
                until: fx.clock.now() + LEASE.as_secs() as i64,
                token: LeaseToken::generate(),
            }),
            fault: None,
            pinned: None,
            failing: None,
        };
        fx.sessions.put(dead);
        if died_after_s3 {
            let (key, mpu) = (r.key.as_str(), s3_upload_id(&r));
            let parts: Vec<ListedPart> = fx.objects.list_parts(key, &mpu).await.unwrap();
            fx.objects
                .complete_multipart(key, &mpu, &parts)
                .await
                .unwrap();
        }
        let before = fx.s3(Call::CompleteMultipart);

        // While the lease runs, nobody else may touch it: out of patience, a caller answers the
        // record as it stands (202, poll it), never a conflict.
        let waiting = fx
            .other(impatient_limits())
            .complete(OWNER, id, None, None, Budget::request(&impatient_limits()))
            .await
            .unwrap();
        assert_eq!(waiting.status(), Status::Completing);
        assert_eq!(fx.peek(id), waiting, "untouched");

        fx.clock.advance(LEASE + Duration::from_secs(1));
        let (a, b) = tokio::join!(fx.complete(id), fx.complete(id));
        let (a, b) = (a.unwrap(), b.unwrap());

        assert_verified(&a, &data);
        assert_eq!(a, b);
        // Two take-over attempts; only the winner went on to list the parts.
        assert_eq!(
            fx.db(Call::Transition(Status::Completing)),
            2,
            "{died_after_s3}"
        );
        assert_eq!(fx.s3(Call::ListParts), 1 + usize::from(died_after_s3));
        assert_eq!(
            fx.s3(Call::CompleteMultipart) - before,
            usize::from(!died_after_s3),
            "S3's completion is not repeated"
        );
        assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
    }
}

#[tokio::test]
async fn a_complete_taken_over_mid_verification_answers_the_new_holders_verdict_not_409() {
    // Issue 23 item 9: A claims and hashes, then stalls (a loaded machine) past its lease right
    // before it records its verdict; B (a client retrying after its timeout) takes the completion
    // over. A's verdict write is refused while B still runs: A waits for B's verdict.
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 6);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let id = r.upload_id;
    let (a, (b, held_by_b)) = tokio::join!(fx.complete(id), take_over_a_stalled_verdict(&fx, id));
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(held_by_b.status(), Status::Completing);
    assert_verified(&a, &data);
    assert_verified(&b, &data);
    // The loser answers the new holder's verdict: B's write (`unannounced` aside, which B's
    // announcement clears whenever it lands).
    let write = |r: &UploadRecord| {
        (
            r.sha256(),
            r.etag().map(str::to_owned),
            r.verified_at().map(str::to_owned),
        )
    };
    assert_eq!(write(&a), write(&b));
    assert_eq!(write(&fx.peek(id)), write(&b));
    // A's claim and B's take-over; A's refused verdict and B's.
    assert_eq!(fx.db(Call::Transition(Status::Completing)), 2);
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 2);
    assert_eq!(
        fx.s3(Call::CompleteMultipart),
        1,
        "S3's completion is not repeated"
    );
}

#[tokio::test]
async fn a_loser_out_of_time_answers_the_running_record_not_409() {
    // As above, but A has no time left to wait (`COMPLETION_WAIT_SECONDS` 0): it answers the
    // record B is still completing, which the API sends as 202 for the client to poll.
    let fx = Fx::new(impatient_limits());
    let data = bytes(300 * KIB, 7);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let id = r.upload_id;
    let (a, (b, held_by_b)) = tokio::join!(fx.complete(id), take_over_a_stalled_verdict(&fx, id));
    let a = a.unwrap();

    assert_eq!(a.status(), Status::Completing);
    assert_eq!(a, held_by_b, "B's completion, as it stood when A read it");
    assert_verified(&b.unwrap(), &data);
}

/// Holds the first verdict write (A's, from `fx.uploads`) until its lease has run out and B, a
/// second instance, has taken the completion over and is about to record its own verdict; lets
/// A's write go (it is refused) and holds B's until A has read the record (`completing` under B).
/// B's answer, and the record as A read it.
async fn take_over_a_stalled_verdict(
    fx: &Fx,
    id: UploadId,
) -> (Result<UploadRecord, Error>, UploadRecord) {
    let a_writes = fx.sessions.faults.park(Call::Transition(Status::Verified));
    a_writes.reached().await;
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let b_writes = fx.sessions.faults.park(Call::Transition(Status::Verified));
    let retrier = fx.other(limits());
    let steer = async {
        b_writes.reached().await;
        let reads = fx.db(Call::GetSession);
        a_writes.release();
        while fx.db(Call::GetSession) == reads {
            tokio::task::yield_now().await;
        }
        let held_by_b = fx.peek(id);
        b_writes.release();
        held_by_b
    };
    tokio::join!(
        retrier.complete(OWNER, id, None, None, Budget::request(retrier.limits())),
        steer
    )
}

#[tokio::test]
async fn a_completion_s3_refuses_reopens_the_session_with_409() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 10, 3);
    let r = fx.uploaded(&data, None).await;
    let rejected = PortError::Rejected("InvalidPart".into());
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, rejected);

    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        // S3's own words are logged, never echoed.
        matches!(&err, Error::Conflict(Conflict::PartRejected) if !err.to_string().contains("InvalidPart")),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status(), after.lease_until()), (Status::Pending, 0));
    assert!(fx.objects.has_upload(&s3_upload_id(&r)));
    assert!(fx.objects.object(r.key.as_str()).is_none());

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &data);
    assert_eq!(fx.s3(Call::CompleteMultipart), 2);
}

#[tokio::test]
async fn a_part_replaced_during_completion_reopens_and_the_next_complete_takes_the_new_bytes() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 4);
    let r = fx.uploaded(&data, None).await;
    let replaced = bytes(300 * KIB, 5);
    // The client re-PUTs part 1 after `complete` listed the parts and before S3 completes them
    // (`join!` rotates which future it polls first, so this lands a step or two later).
    let replace = async {
        while fx.s3(Call::ListParts) == 0 {
            tokio::task::yield_now().await;
        }
        fx.objects
            .put_part(&s3_upload_id(&r), part(1), &replaced, None)
            .unwrap();
    };
    let (first, ()) = tokio::join!(fx.complete(r.upload_id), replace);
    let err = first.unwrap_err();
    assert!(
        // S3's own words are logged, never echoed.
        matches!(&err, Error::Conflict(Conflict::PartRejected) if !err.to_string().contains("InvalidPart")),
        "{err:?}"
    );
    assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &replaced);
}

#[tokio::test]
async fn a_completion_never_replaces_an_object_already_under_its_key() {
    let fx = Fx::new(limits());
    let data = bytes(300 * KIB, 80);
    let r = fx.uploaded(&data, None).await;
    let key = r.key.as_str();
    fx.objects.put_object(key, b"somebody else's object");

    let refused = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(refused, Error::Conflict(Conflict::KeyTaken)),
        "{refused:?}"
    );
    assert_eq!(
        fx.objects.object(key).as_deref(),
        Some(&b"somebody else's object"[..]),
        "S3 kept it (If-None-Match: *)"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!(after.status(), Status::Pending, "nothing stuck: {after:?}");
    assert!(after.sha256().is_none());
}

#[tokio::test]
async fn a_retried_completion_that_finds_its_own_object_goes_on_to_verify() {
    let fx = Fx::new(limits());
    let data = bytes(5 * MIB + 300, 81);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let key = r.key.as_str();
    // The completion's CompleteMultipartUpload lands but its answer is lost; the SDK's retry
    // finds the object there and S3 answers 412.
    let park = fx.objects.faults.park(Call::CompleteMultipart);
    let lost_answer = async {
        park.reached().await;
        let parts = fx.objects.list_parts(key, &s3_upload_id(&r)).await.unwrap();
        fx.objects
            .complete_multipart(key, &s3_upload_id(&r), &parts)
            .await
            .unwrap();
        fx.objects
            .faults
            .fail_with(Call::CompleteMultipart, PortError::PreconditionFailed);
        park.release();
    };
    let (verified, ()) = tokio::join!(fx.complete(r.upload_id), lost_answer);
    assert_verified(&verified.unwrap(), &data);
}

/// A `CompleteMultipartUpload` slower than the request's whole inline budget: the budget starts
/// with the request (not once S3 answered), so the request hashes no further than its deadline
/// and hands the object to the verifier with what it hashed, lease let go, instead of hashing
/// on past API Gateway's 29 s with the session leased. Without the delay it verifies inline.
#[tokio::test]
async fn a_slow_completion_in_s3_hands_over_at_the_requests_deadline_not_after_it() {
    let budget = Duration::from_secs(1);
    let limits = Limits {
        verify_inline_budget: budget,
        ..limits()
    };
    for slow in [false, true] {
        let fx = Fx::new(limits.clone());
        let started = Arc::new(super::verifier::Started::default());
        let api = fx.other(limits.clone()).with_verifier(started.clone());
        let data = bytes(4 * MIB, 83);
        let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
        let park = fx.objects.faults.park(Call::CompleteMultipart);
        let s3 = async {
            park.reached().await;
            if slow {
                tokio::time::sleep(budget * 2).await;
            }
            park.release();
        };
        let request = api.complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(api.limits()),
        );
        let (answer, ()) = tokio::join!(request, s3);
        let record = answer.unwrap();
        if !slow {
            assert_verified(&record, &data);
            continue;
        }
        assert_eq!(record.status(), Status::Verifying, "{record:?}");
        assert!(
            record.verified_bytes() < data.len() as u64 / 2,
            "at most the ranges in flight at the deadline: {}",
            record.verified_bytes()
        );
        assert_eq!(*started.0.lock().unwrap(), [r.upload_id]);
        assert_eq!(fx.peek(r.upload_id).status(), Status::Verifying);
    }
}
