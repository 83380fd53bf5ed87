//! Verification fanned out over the verifier's queue, one segment a message, over the in-memory
//! ports: segments finishing out of order, twice and from a stale holder; a crash between the
//! last end and the verdict; and always the verdict one sequential stream gives.

use std::sync::Mutex;

use vu_contract::queue::SegmentMessage;
use vu_contract::{Chain, ChainState, PartStates};

use super::*;
use crate::domain::Chained;

/// Four parts of 5 MiB (the last 1000 bytes): past `large_limits`' inline bound.
pub(super) const SIZE: u64 = 15 * MIB + 1000;

/// A verifier queue that carries segments: what was sent, for the test to deliver.
#[derive(Default)]
pub(super) struct Queue {
    segments: Mutex<Vec<SegmentMessage>>,
    continued: Mutex<Vec<UploadId>>,
}

#[async_trait::async_trait]
impl crate::ports::Continuation for Queue {
    async fn schedule(&self, id: UploadId) -> Result<(), PortError> {
        self.continued.lock().unwrap().push(id);
        Ok(())
    }

    fn carries_segments(&self) -> bool {
        true
    }

    async fn send_segments(&self, segments: &[SegmentMessage]) -> Result<(), PortError> {
        self.segments.lock().unwrap().extend_from_slice(segments);
        Ok(())
    }
}

impl Queue {
    pub(super) fn take(&self) -> Vec<SegmentMessage> {
        std::mem::take(&mut *self.segments.lock().unwrap())
    }
}

/// The chaining value after each of `parts`, from `data` in parts of 5 MiB.
pub(super) fn states_of(data: &[u8], parts: &[u16]) -> PartStates {
    let mut states = PartStates::default();
    for &n in parts {
        let mut chain = Chain::new();
        chain.update(&data[..usize::from(n) * 5 * MIB as usize]);
        states.insert(n, chain.state().unwrap());
    }
    states
}

/// A session of `data` with `states` declared, handed to the verifier by the API (too large to
/// verify inline), and the verifier run that fans it out: the service on a queue that carries
/// segments, the queue, and the segments it sent.
pub(super) async fn fanned_out(
    fx: &Fx,
    data: &[u8],
    states: &PartStates,
) -> (Uploads, Arc<Queue>, UploadRecord, Vec<SegmentMessage>) {
    let queue = Arc::new(Queue::default());
    let svc = fx.other(large_limits()).with_verifier(queue.clone());
    fanned_out_by(fx, svc, queue, data, states).await
}

/// As `fanned_out`, by `svc` (on `queue`).
pub(super) async fn fanned_out_by(
    fx: &Fx,
    svc: Uploads,
    queue: Arc<Queue>,
    data: &[u8],
    states: &PartStates,
) -> (Uploads, Arc<Queue>, UploadRecord, Vec<SegmentMessage>) {
    let r = fx.uploaded(data, Some(Sha256::of(data))).await;
    let budget = Budget::request(svc.limits());
    let handed = svc
        .complete_chained(OWNER, r.upload_id, None, None, states, budget)
        .await
        .unwrap();
    assert_eq!(handed.status(), Status::Verifying);
    let out = svc
        .continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    let EventOutcome::Segments(record) = out else {
        panic!("expected the verification fanned out, got {out:?}");
    };
    assert_eq!(record.status(), Status::Completing);
    let sent = queue.take();
    (svc, queue, *record, sent)
}

pub(super) async fn deliver(svc: &Uploads, msg: &SegmentMessage) -> EventOutcome {
    svc.on_segment(msg, Budget::verifier(None)).await.unwrap()
}

/// The record one sequential verification of `data` gives, for comparison.
async fn sequential(data: &[u8]) -> UploadRecord {
    let fx = Fx::new(limits());
    let r = fx.uploaded(data, Some(Sha256::of(data))).await;
    fx.complete(r.upload_id).await.unwrap()
}

#[tokio::test]
async fn segments_finishing_out_of_order_give_the_sequential_verdict() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 60);
    let (svc, _, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    assert_eq!(sent.len(), 4);
    let token = record.lease_token().unwrap().to_string();
    assert!(
        sent.iter()
            .all(|m| m.token == token && m.upload_id == record.upload_id.to_string())
    );
    let reads_before = fx.s3(Call::GetRange);
    // The last segment first, then the others backwards: each recorded, progress visible.
    for (n, msg) in sent.iter().rev().take(3).enumerate() {
        let out = deliver(&svc, msg).await;
        assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
        let now = fx.peek(record.upload_id);
        assert_eq!(now.fanned().unwrap().ends.len(), n + 1);
        let hashed: u64 = sent.iter().rev().take(n + 1).map(|m| m.end - m.start).sum();
        assert_eq!(now.verified_bytes(), hashed, "bytes hashed across segments");
    }
    let verified = done(deliver(&svc, &sent[0]).await);
    assert_eq!(verified.status(), Status::Verified);
    assert_eq!(verified.sha256(), Some(Sha256::of(&data)));
    assert_eq!(
        verified.chained,
        Chained {
            segments: 4,
            mismatch_part: None
        }
    );
    // Every byte read once, each read pinned to the version the fan-out pinned.
    assert_eq!(fx.s3(Call::GetRange) - reads_before, 3 * 80 + 1);
    assert_eq!(verified.version_id(), record.version_id());
    let seq = sequential(&data).await;
    assert_eq!(
        (
            verified.sha256(),
            verified.status(),
            verified.verified_bytes()
        ),
        (seq.sha256(), seq.status(), seq.verified_bytes())
    );
    assert_eq!(verified, fx.peek(record.upload_id));
}

#[tokio::test]
async fn a_segment_delivered_twice_is_recorded_once_and_hashed_once() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 61);
    let (svc, _, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    deliver(&svc, &sent[1]).await;
    let once = fx.peek(record.upload_id);
    let reads = fx.s3(Call::GetRange);
    let again = deliver(&svc, &sent[1]).await;
    assert!(matches!(again, EventOutcome::Segments(_)), "{again:?}");
    assert_eq!(fx.s3(Call::GetRange), reads, "a redelivery reads nothing");
    assert_eq!(fx.peek(record.upload_id).fanned(), once.fanned());
    for msg in [&sent[0], &sent[2], &sent[3]] {
        deliver(&svc, msg).await;
    }
    let verified = fx.peek(record.upload_id);
    assert_eq!(verified.sha256(), Some(Sha256::of(&data)));
    // After the verdict, a late copy changes nothing.
    let late = deliver(&svc, &sent[3]).await;
    assert!(matches!(late, EventOutcome::Ignored(_)), "{late:?}");
    assert_eq!(fx.peek(record.upload_id), verified);
}

#[tokio::test]
async fn a_stale_holders_segment_is_refused_and_the_new_holder_sends_only_the_rest() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 62);
    let (svc, queue, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    deliver(&svc, &sent[0]).await;
    deliver(&svc, &sent[2]).await;
    // The holder's lease runs out; the sweep's re-drive takes the completion over.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let redriven = svc.sweep(10, Budget::verifier(None)).await.unwrap();
    assert_eq!(redriven, [record.upload_id]);
    let out = svc
        .continue_verification(record.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
    let taken = fx.peek(record.upload_id);
    assert_ne!(taken.lease_token(), record.lease_token());
    // The ends found before the take-over are facts about the pinned version: kept.
    assert_eq!(taken.fanned().unwrap().ends.len(), 2);
    let resent = queue.take();
    let indexes: Vec<u16> = resent.iter().map(|m| m.index).collect();
    assert_eq!(indexes, [1, 3]);
    // The old holder's last messages are refused: nothing written.
    for stale in [&sent[1], &sent[3]] {
        let out = deliver(&svc, stale).await;
        assert!(matches!(out, EventOutcome::Ignored(_)), "{out:?}");
        assert_eq!(fx.peek(record.upload_id), taken);
    }
    deliver(&svc, &resent[0]).await;
    let verified = done(deliver(&svc, &resent[1]).await);
    assert_eq!(verified.sha256(), Some(Sha256::of(&data)));
    assert_eq!(verified.chained.segments, 4);
}

#[tokio::test]
async fn a_crash_between_the_last_end_and_the_verdict_is_finished_by_the_sweep() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 63);
    let (svc, queue, record, sent) = fanned_out(&fx, &data, &states_of(&data, &[1, 2, 3])).await;
    for msg in &sent[..3] {
        deliver(&svc, msg).await;
    }
    // The last worker records its end, then its verdict write fails (as if it died there).
    fx.fail_once(Call::Transition(Status::Verified));
    let crashed = svc.on_segment(&sent[3], Budget::verifier(None)).await;
    assert!(crashed.is_err(), "{crashed:?}");
    let left = fx.peek(record.upload_id);
    assert_eq!(left.status(), Status::Completing);
    assert_eq!(left.fanned().unwrap().ends.len(), 4);
    // Whatever the hold left (released, or a lease running out), the sweep finishes it,
    // reading no byte again: every end is on the record.
    fx.clock.advance(LEASE + Duration::from_secs(1));
    let reads = fx.s3(Call::GetRange);
    svc.sweep(10, Budget::verifier(None)).await.unwrap();
    let verified = done(
        svc.continue_verification(record.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_eq!(verified.status(), Status::Verified);
    assert_eq!(verified.sha256(), Some(Sha256::of(&data)));
    assert_eq!(fx.s3(Call::GetRange), reads);
    assert!(queue.take().is_empty(), "nothing sent again");
}

#[tokio::test]
async fn a_wrong_state_with_the_right_bytes_still_verifies_when_fanned_out() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 64);
    let mut states = states_of(&data, &[1, 2, 3]);
    states.insert(2, ChainState::from_bytes([0x5A; 32]));
    let (svc, _, record, sent) = fanned_out(&fx, &data, &states).await;
    for msg in sent.iter().rev() {
        deliver(&svc, msg).await;
    }
    let verified = fx.peek(record.upload_id);
    assert_eq!(verified.status(), Status::Verified);
    assert_eq!(verified.sha256(), Some(Sha256::of(&data)));
    assert_eq!(verified.chained.mismatch_part, None);
}

#[tokio::test]
async fn a_changed_byte_fanned_out_fails_naming_its_part_like_the_sequential_digest() {
    let fx = Fx::new(large_limits());
    let sent_bytes = bytes(SIZE, 65);
    let mut landed = sent_bytes.clone();
    landed[2 * 5 * MIB as usize + 9] ^= 1;
    let queue = Arc::new(Queue::default());
    let svc = fx.other(large_limits()).with_verifier(queue.clone());
    let r = fx.create(SIZE, Some(Sha256::of(&sent_bytes))).await;
    fx.put_parts(&r, &landed);
    let states = states_of(&sent_bytes, &[1, 2, 3]);
    let budget = Budget::request(svc.limits());
    svc.complete_chained(OWNER, r.upload_id, None, None, &states, budget)
        .await
        .unwrap();
    svc.continue_verification(r.upload_id, Budget::verifier(None))
        .await
        .unwrap();
    for msg in queue.take() {
        deliver(&svc, &msg).await;
    }
    let failed = fx.peek(r.upload_id);
    assert_eq!(failed.status(), Status::Failed);
    assert_eq!(failed.sha256(), Some(Sha256::of(&landed)));
    assert_eq!(failed.chained.mismatch_part, Some(3));
    assert!(fx.objects.object(r.key.as_str()).is_none(), "deleted");
}
