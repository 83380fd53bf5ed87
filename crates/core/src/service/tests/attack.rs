//! Hostile review of the fan-out by segments (issue 24): failing tests for the findings.

use super::fanout::{Queue, SIZE, deliver, states_of};
use super::*;
use crate::domain::{Change, Chained, Guard, timestamp_now};
use crate::ports::SessionStore as _;

/// Finding: `part_states` kept by a completion S3 refused survive the reopening (nothing removes
/// `part_states`; a claim with no states writes none), and are cut against the re-measured plan
/// of the fixed parts. When the new part size is not whole blocks every run fails with
/// `CorruptProgress` (not a verdict, released, retried with back-off for ever).
#[tokio::test]
async fn attack_states_kept_from_a_refused_completion_do_not_strand_a_remeasured_session() {
    let fx = Fx::new(unsized_allowed(limits()));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let upload = s3_upload_id(&r);
    let first = bytes(10 * MIB + 100, 1);
    fx.objects.put_part(&upload, part(1), &first[..5 * MIB as usize], None).unwrap();
    fx.objects
        .put_part(&upload, part(2), &first[5 * MIB as usize..10 * MIB as usize], None)
        .unwrap();
    fx.objects.put_part(&upload, part(3), &first[10 * MIB as usize..], None).unwrap();
    let states = states_of(&first, &[1, 2]);
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, PortError::Rejected("InvalidPart".into()));
    let budget = Budget::request(fx.uploads.limits());
    let refused = fx
        .uploads
        .complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(Conflict::PartRejected)), "{refused:?}");
    assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);

    // The client fixes its parts: 5 MiB + 1 each (any size S3 accepts), and completes without
    // states this time.
    let p = (5 * MIB + 1) as usize;
    let second = bytes(2 * (5 * MIB + 1) + 100, 2);
    fx.objects.put_part(&upload, part(1), &second[..p], None).unwrap();
    fx.objects.put_part(&upload, part(2), &second[p..2 * p], None).unwrap();
    fx.objects.put_part(&upload, part(3), &second[2 * p..], None).unwrap();
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

/// Finding: a segment delivered after a `Failing` verdict was written (the deciding worker is
/// deleting the object, or died doing so) is hashed in full, then its `SegmentDone` (which
/// requires no `error`) is refused, re-read, and retried 129 times in a row with no pause: the
/// token has not changed, so `record_end` never sees that it cannot win.
#[tokio::test]
async fn attack_a_segment_after_a_decided_failure_neither_hashes_nor_spins() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 61);
    let queue = Arc::new(Queue::default());
    let svc = fx.other(large_limits()).with_verifier(queue.clone());
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let states = states_of(&data, &[1, 2, 3]);
    let budget = Budget::request(svc.limits());
    svc.complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap();
    let out = svc
        .continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    let EventOutcome::Segments(record) = out else {
        panic!("{out:?}")
    };
    let sent = queue.take();
    assert_eq!(sent.len(), 4);
    assert!(matches!(deliver(&svc, &sent[0]).await, EventOutcome::Segments(_)));
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
        .transition(record.upload_id, Guard::held(&record), failing, &timestamp_now())
        .await
        .unwrap();
    let (reads, writes) = (fx.s3(Call::GetRange), fx.db(Call::Transition(Status::Completing)));
    let out = svc.on_segment(&sent[1], Budget::verifier(None)).await;
    let spent = fx.db(Call::Transition(Status::Completing)) - writes;
    let read = fx.s3(Call::GetRange) - reads;
    assert!(
        spent <= 1 && read == 0,
        "a segment of a decided failure: {read} ranged GETs, {spent} refused writes in a row; {out:?}"
    );
}

/// Finding: a fan-out written in form 1 (`d1273e4`, before the seals) and still in flight when
/// this version is deployed can never record another end: `SegmentDone` requires the stored
/// `segment_ends` to equal `item::fanned(before)`, which re-encodes what was read in form 2.
/// Every worker's write is refused (129 times, then the message fails; the take-over keeps the
/// same form-1 attribute as `same_object`): the session never gets a verdict.
#[tokio::test]
async fn attack_a_form_one_fan_out_in_flight_at_the_upgrade_can_record_an_end() {
    use base64::Engine as _;
    use crate::domain::{Value, attr, from_item, to_item};
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 62);
    let queue = Arc::new(Queue::default());
    let svc = fx.other(large_limits()).with_verifier(queue.clone());
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let states = states_of(&data, &[1, 2, 3]);
    let budget = Budget::request(svc.limits());
    svc.complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap();
    svc.continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    // The item as the previous version wrote it: form 1, no end yet.
    let mut item = to_item(&fx.peek(r.upload_id));
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&0u64.to_be_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&v1);
    item.insert(attr::SEGMENT_ENDS.into(), Value::S(b64));
    let read = from_item(&item).unwrap();
    let before = read.fanned().expect("form 1 reads").clone();
    let mut after = before.clone();
    after.ends.insert(1, [7; 32]);
    let done = Change::SegmentDone {
        etag: read.etag().unwrap().to_owned(),
        version_id: read.version_id().map(str::to_owned),
        before,
        after,
        lease_until: 0,
    };
    let guard = Guard {
        status: Status::Completing,
        lease_expired_by: None,
        holder: read.lease_token(),
    };
    let refused: Vec<_> = done
        .condition(&guard)
        .into_iter()
        .filter(|c| !c.holds(&item))
        .collect();
    assert!(refused.is_empty(), "never holds on a form-1 item: {refused:?}");
}

/// Finding: once every end is recorded but some are untrusted (a receipt key rotated mid
/// fan-out, or ends planted), *every* worker that records an end re-sends every segment still
/// untrusted, not only the one that completed the set: k untrusted ends cost k(k+1)/2 messages
/// (8,128 for 127), each a worker that hashes its whole segment (≤ 48 GiB) when it arrives
/// before the first copy's end is recorded.
#[tokio::test]
async fn attack_a_key_rotated_mid_fan_out_resends_each_segment_once() {
    use crate::receipt::Receipts;
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 63);
    let queue = Arc::new(Queue::default());
    let signer = |seed| {
        Receipts::new(
            Arc::new(crate::memory::MemorySigner::from_seed(seed)),
            "https://uploads.example",
        )
    };
    let svc = fx
        .other(large_limits())
        .with_verifier(queue.clone())
        .with_receipts(signer("A"));
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let states = states_of(&data, &[1, 2, 3]);
    let budget = Budget::request(svc.limits());
    svc.complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap();
    svc.continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    let sent = queue.take();
    assert_eq!(sent.len(), 4);
    for m in &sent[..3] {
        deliver(&svc, m).await;
    }
    // The receipt key rotates: the last worker runs with the new one.
    let rotated = fx
        .other(large_limits())
        .with_verifier(queue.clone())
        .with_receipts(signer("B"));
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
    assert!(total <= 3, "{total} segment messages queued for 3 untrusted ends");
}
