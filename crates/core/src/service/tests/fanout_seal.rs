//! A fan-out's segment ends are trusted only under the seal of the worker that hashed them:
//! an end written into the table by anyone else (forged, or a sealed one moved from another
//! segment or upload) counts as not found and its segment is hashed again, so no receipt signs
//! a digest walked from ends the object's bytes did not give.

use vu_contract::queue::SegmentMessage;

use super::fanout::{Queue, SIZE, deliver, fanned_out_by, states_of};
use super::receipts::split;
use super::*;
use crate::domain::SegmentEnd;
use crate::receipt::Receipts;

/// A service that issues receipts, signing with the key of `seed`, on `queue`.
pub(super) fn sealing(fx: &Fx, queue: &Arc<Queue>, seed: &str) -> Uploads {
    fx.other(large_limits())
        .with_verifier(queue.clone())
        .with_receipts(Receipts::new(
            Arc::new(crate::memory::MemorySigner::from_seed(seed)),
            "https://uploads.example",
        ))
}

/// A session of `data` (parts of 5 MiB, every state declared) fanned out by a service that
/// issues receipts (key "A"): the service, its queue, the record and the segments sent.
pub(super) async fn sealed_fan_out(
    fx: &Fx,
    data: &[u8],
) -> (Uploads, Arc<Queue>, UploadRecord, Vec<SegmentMessage>) {
    let queue = Arc::new(Queue::default());
    let svc = sealing(fx, &queue, "A");
    let out = fanned_out_by(fx, svc, queue, data, &states_of(data, &[1, 2, 3])).await;
    assert_eq!(out.3.len(), 4);
    out
}

/// Writes `end` as segment `index`'s end of `id` in the table, as a table writer could.
fn plant(fx: &Fx, id: UploadId, index: u16, end: SegmentEnd) {
    let mut record = fx.peek(id);
    match &mut record.state {
        State::Completing {
            pinned: Some(p), ..
        } => p
            .fanned
            .as_mut()
            .expect("fanned out")
            .ends
            .insert_sealed(index, end),
        other => panic!("not fanned out: {other:?}"),
    }
    fx.sessions.put(record);
}

fn entry(fx: &Fx, id: UploadId, index: u16) -> SegmentEnd {
    *fx.peek(id).fanned().unwrap().ends.entry(index).unwrap()
}

/// The verdict is the object's own and so is the digest its receipt signs.
async fn assert_own_receipt(svc: &Uploads, fx: &Fx, id: UploadId, data: &[u8]) {
    let verified = fx.peek(id);
    assert_eq!(verified.status(), Status::Verified, "{verified:?}");
    assert_eq!(verified.sha256(), Some(Sha256::of(data)));
    let receipt = svc.receipt(OWNER, id).await.unwrap().expect("a receipt");
    let (_, claims, _, _) = split(&receipt);
    assert_eq!(claims.sha256, Sha256::of(data));
}

#[tokio::test]
async fn each_segment_end_is_sealed_and_the_verdict_signed() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 70);
    let (svc, _, record, sent) = sealed_fan_out(&fx, &data).await;
    for msg in &sent[..3] {
        deliver(&svc, msg).await;
    }
    for i in 0..3 {
        assert!(
            entry(&fx, record.upload_id, i).seal.is_some(),
            "segment {i}"
        );
    }
    done(deliver(&svc, &sent[3]).await);
    assert_own_receipt(&svc, &fx, record.upload_id, &data).await;
}

/// The attack: the last segment's end (the digest) planted before its worker runs, unsealed
/// or with another segment's seal: the worker hashes it anyway and records its own.
#[tokio::test]
async fn a_planted_segment_end_is_not_trusted_and_the_receipt_states_the_objects_own_digest() {
    for borrow_seal in [false, true] {
        let fx = Fx::new(large_limits());
        let data = bytes(SIZE, 71);
        let (svc, queue, record, sent) = sealed_fan_out(&fx, &data).await;
        let id = record.upload_id;
        deliver(&svc, &sent[0]).await;
        let chosen = Sha256::of(b"a file that was never uploaded").to_bytes();
        let seal = borrow_seal.then(|| entry(&fx, id, 0).seal.unwrap());
        plant(&fx, id, 3, SegmentEnd { end: chosen, seal });
        deliver(&svc, &sent[1]).await;
        // Every end recorded now, one not sealed: the last worker sends that segment again.
        let reads = fx.s3(Call::GetRange);
        let out = deliver(&svc, &sent[2]).await;
        assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
        assert!(fx.s3(Call::GetRange) > reads);
        let resent: Vec<u16> = queue.take().iter().map(|m| m.index).collect();
        assert_eq!(resent, [3], "seal borrowed: {borrow_seal}");
        assert_eq!(fx.peek(id).status(), Status::Completing);
        // The planted end's segment is hashed: its true end replaces the planted one.
        let reads = fx.s3(Call::GetRange);
        done(deliver(&svc, &sent[3]).await);
        assert!(fx.s3(Call::GetRange) > reads, "the last segment hashed");
        assert_own_receipt(&svc, &fx, id, &data).await;
    }
}

/// Every end planted (a forged chain) and the holder taken over: the take-over trusts none
/// and sends every segment again.
#[tokio::test]
async fn a_forged_chain_found_by_a_take_over_is_hashed_again() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 72);
    let (svc, queue, record, _) = sealed_fan_out(&fx, &data).await;
    let id = record.upload_id;
    for i in 0..4u16 {
        let end = [0x42 ^ u8::try_from(i).unwrap(); 32];
        plant(
            &fx,
            id,
            i,
            SegmentEnd {
                end,
                seal: Some([7; 64]),
            },
        );
    }
    fx.clock.advance(LEASE + Duration::from_secs(1));
    svc.sweep(10, Budget::verifier(None)).await.unwrap();
    let out = svc
        .continue_verification(id, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
    let resent = queue.take();
    let indexes: Vec<u16> = resent.iter().map(|m| m.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    for msg in &resent {
        deliver(&svc, msg).await;
    }
    assert_own_receipt(&svc, &fx, id, &data).await;
}

/// A seal is bound to its upload and segment: a true, sealed end moved to the same segment of
/// another upload of the same bytes, or to another segment, is not trusted.
#[tokio::test]
async fn a_sealed_end_moved_to_another_upload_or_segment_is_not_trusted() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 73);
    let (svc, _, a, sent_a) = sealed_fan_out(&fx, &data).await;
    deliver(&svc, &sent_a[1]).await;
    let from_a = entry(&fx, a.upload_id, 1);
    let (svc_b, queue_b, b, sent_b) = sealed_fan_out(&fx, &data).await;
    // The same end of the same bytes, sealed for upload a: not b's.
    plant(&fx, b.upload_id, 1, from_a);
    let reads = fx.s3(Call::GetRange);
    let out = deliver(&svc_b, &sent_b[1]).await;
    assert!(matches!(out, EventOutcome::Segments(_)), "{out:?}");
    assert!(fx.s3(Call::GetRange) > reads, "segment 1 of b hashed again");
    let own = entry(&fx, b.upload_id, 1);
    assert_eq!(own.end, from_a.end);
    assert_ne!(own.seal, from_a.seal);
    // b's own sealed end of segment 0, moved to segment 2 of b: not trusted there.
    deliver(&svc_b, &sent_b[0]).await;
    plant(&fx, b.upload_id, 2, entry(&fx, b.upload_id, 0));
    deliver(&svc_b, &sent_b[3]).await;
    let resent: Vec<u16> = queue_b.take().iter().map(|m| m.index).collect();
    assert_eq!(resent, [2]);
    done(deliver(&svc_b, &sent_b[2]).await);
    assert_own_receipt(&svc_b, &fx, b.upload_id, &data).await;
}
