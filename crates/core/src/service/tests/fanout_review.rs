//! What an outside review of the fan-out by segments (issue 24) found, each fixed: states of a
//! refused completion outliving its reopening, a segment arriving after a decided failure, re-sends
//! of untrusted ends growing quadratically, and a take-over leaving the fan-out's version.

use super::fanout::{SIZE, deliver, fanned_out, states_of};
use super::fanout_seal::{sealed_fan_out, sealing};
use super::*;
use crate::domain::{Chained, Change, Guard, timestamp_now};
use crate::ports::SessionStore as _;

/// Found: `part_states` kept by a completion S3 refused survive the reopening (nothing removes
/// `part_states`; a claim with no states writes none), and are cut against the re-measured plan
/// of the fixed parts. When the new part size is not whole blocks every run fails with
/// `CorruptProgress` (not a verdict, released, retried with back-off for ever).
#[tokio::test]
async fn states_declared_at_a_refused_completion_go_with_its_reopening() {
    let fx = Fx::new(unsized_allowed(limits()));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let upload = s3_upload_id(&r);
    let first = bytes(10 * MIB + 100, 1);
    fx.objects
        .put_part(&upload, part(1), &first[..5 * MIB as usize], None)
        .unwrap();
    fx.objects
        .put_part(
            &upload,
            part(2),
            &first[5 * MIB as usize..10 * MIB as usize],
            None,
        )
        .unwrap();
    fx.objects
        .put_part(&upload, part(3), &first[10 * MIB as usize..], None)
        .unwrap();
    let states = states_of(&first, &[1, 2]);
    fx.objects.faults.fail_with(
        Call::CompleteMultipart,
        PortError::Rejected("InvalidPart".into()),
    );
    let budget = Budget::request(fx.uploads.limits());
    let refused = fx
        .uploads
        .complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Conflict(Conflict::PartRejected)),
        "{refused:?}"
    );
    assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);

    // The client fixes its parts: 5 MiB + 1 each (any size S3 accepts), and completes without
    // states this time.
    let p = (5 * MIB + 1) as usize;
    let second = bytes(2 * (5 * MIB + 1) + 100, 2);
    fx.objects
        .put_part(&upload, part(1), &second[..p], None)
        .unwrap();
    fx.objects
        .put_part(&upload, part(2), &second[p..2 * p], None)
        .unwrap();
    fx.objects
        .put_part(&upload, part(3), &second[2 * p..], None)
        .unwrap();
    let answer = fx.complete(r.upload_id).await;
    let now = fx.peek(r.upload_id);
    assert!(
        answer.is_ok(),
        "{answer:?}; record {:?}, last error {:?}, states {:?}",
        now.status(),
        now.fault(),
        now.part_states
    );
    assert_verified(&answer.unwrap(), &second);
}

/// Found: a segment delivered after a `Failing` verdict was written (the deciding worker is
/// deleting the object, or died doing so) is hashed in full, then its `SegmentDone` (which
/// requires no `error`) is refused, re-read, and retried 129 times in a row with no pause: the
/// token has not changed, so `record_end` never sees that it cannot win.
#[tokio::test]
async fn a_segment_after_a_decided_failure_neither_hashes_nor_spins() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 61);
    let (svc, _, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    assert_eq!(sent.len(), 4);
    assert!(matches!(
        deliver(&svc, &sent[0]).await,
        EventOutcome::Segments(_)
    ));
    let record = fx.peek(record.upload_id);
    // Another worker's read found the object changed: `Failing` is written under the lease.
    let failing = Change::Failing {
        sha256: None,
        etag: None,
        version_id: None,
        error: "the object changed during verification".into(),
        chained: Chained::default(),
    };
    fx.sessions
        .transition(
            record.upload_id,
            Guard::held(&record),
            failing,
            &timestamp_now(),
        )
        .await
        .unwrap();
    let (reads, writes) = (
        fx.s3(Call::GetRange),
        fx.db(Call::Transition(Status::Completing)),
    );
    let out = svc.on_segment(&sent[1], Budget::verifier(None)).await;
    let spent = fx.db(Call::Transition(Status::Completing)) - writes;
    let read = fx.s3(Call::GetRange) - reads;
    assert!(
        spent <= 1 && read == 0,
        "a segment of a decided failure: {read} ranged GETs, {spent} refused writes in a row; {out:?}"
    );
}

/// Found: once every end is recorded but some are untrusted (a receipt key rotated mid
/// fan-out, or ends planted), *every* worker that records an end re-sends every segment still
/// untrusted, not only the one that completed the set: k untrusted ends cost k(k+1)/2 messages
/// (8,128 for 127), each a worker that hashes its whole segment (≤ 48 GiB) when it arrives
/// before the first copy's end is recorded.
#[tokio::test]
async fn a_key_rotated_mid_fan_out_resends_each_untrusted_segment_once() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 63);
    let (svc, queue, r, sent) = sealed_fan_out(&fx, &data).await;
    for m in &sent[..3] {
        deliver(&svc, m).await;
    }
    // The receipt key rotates: the last worker runs with the new one.
    let rotated = sealing(&fx, &queue, "B");
    deliver(&rotated, &sent[3]).await;
    let mut queued = queue.take();
    let mut total = queued.len();
    while !queued.is_empty() && fx.peek(r.upload_id).status() == Status::Completing {
        let m = queued.remove(0);
        deliver(&rotated, &m).await;
        let more = queue.take();
        total += more.len();
        queued.extend(more);
    }
    assert_eq!(fx.peek(r.upload_id).status(), Status::Verified);
    assert!(
        total <= 3,
        "{total} segment messages queued for 3 untrusted ends"
    );
}

/// Found: a take-over of a fan-out read the key's current version, so an object replaced under
/// the key mid fan-out was fanned out again and verified instead of the completed version. It
/// now stays on the fan-out's version, keeps its ends and sends only the missing segments.
#[tokio::test]
async fn a_fan_out_taken_over_after_the_object_was_replaced_stays_on_its_version() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 64);
    let (svc, queue, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    let pinned = record.version_id().map(str::to_owned).unwrap();
    deliver(&svc, &sent[0]).await;
    deliver(&svc, &sent[2]).await;
    // Someone writes other bytes under the key: a new version, the pinned one untouched.
    fx.objects.put_object(record.key.as_str(), &bytes(SIZE, 65));
    fx.clock.advance(LEASE + Duration::from_secs(1));
    svc.sweep(10, Budget::verifier(None)).await.unwrap();
    let out = svc
        .continue_verification(record.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
    let taken = fx.peek(record.upload_id);
    assert_eq!(taken.version_id(), Some(&*pinned));
    assert_eq!(taken.fanned().unwrap().ends.len(), 2);
    let resent = queue.take();
    let indexes: Vec<u16> = resent.iter().map(|m| m.index).collect();
    assert_eq!(indexes, [1, 3]);
    deliver(&svc, &resent[0]).await;
    let verified = done(deliver(&svc, &resent[1]).await);
    assert_verified(&verified, &data);
    assert_eq!(verified.version_id(), Some(&*pinned));
    assert_eq!(
        fx.objects.object(record.key.as_str()).as_deref(),
        Some(&data[..])
    );
}
