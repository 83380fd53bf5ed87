//! Saved hashing progress is continued from only under the seal of the process that hashed it:
//! a state written into the table by anyone else is hashed again from byte 0, so no receipt
//! signs a digest resting on bytes the object does not hold.

use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState as _;

use super::receipts::{split, with_key};
use super::*;
use crate::domain::{Pinned, Progress};

/// Rewrites the saved progress of `id` in the table, as a table writer could.
fn rewrite_progress(fx: &Fx, id: UploadId, change: impl FnOnce(&mut Progress)) {
    let mut record = fx.peek(id);
    if let State::Verifying {
        pinned: Some(Pinned {
            progress: Some(p), ..
        }),
        ..
    } = &mut record.state
    {
        change(p);
    } else {
        panic!("no saved progress: {record:?}");
    }
    fx.sessions.put(record);
}

/// One verifier run of `id` on `uploads`, to the verdict.
async fn continued(uploads: &Uploads, id: UploadId) -> UploadRecord {
    done(
        uploads
            .continue_verification(id, Budget::verifier(None))
            .await
            .unwrap(),
    )
}

/// The object was read again from its first byte since `reads_before`.
fn assert_read_from_byte_0(fx: &Fx, reads_before: usize, data: &[u8], what: &str) {
    assert_eq!(
        fx.s3(Call::GetRange) - reads_before,
        data.len().div_ceil(RANGE as usize),
        "read from byte 0 ({what})"
    );
}

#[tokio::test]
async fn progress_is_sealed_and_continued_from_where_it_stopped() {
    let fx = with_key(Fx::new(large_limits()), "A");
    let data = bytes(300 * KIB, 51);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    let paused = fx.pause_once(r.upload_id).await;
    let saved = paused.saved_progress().unwrap();
    assert!(saved.seal.is_some(), "sealed: {saved:?}");
    let reads_before = fx.s3(Call::GetRange);
    let record = continued(&fx.uploads, r.upload_id).await;
    assert_verified(&record, &data);
    let rest = (data.len() as u64 - saved.hashed).div_ceil(RANGE) as usize;
    assert_eq!(fx.s3(Call::GetRange) - reads_before, rest, "continued");
}

/// The attack: the state of bytes of one's choosing (zeros), with its true count, so that the
/// rest of the object hashed on top of it gives a digest of a file that was never uploaded.
#[tokio::test]
async fn a_state_written_into_the_table_is_hashed_again_from_byte_0_and_the_receipt_states_the_objects_own_digest()
 {
    let fx = with_key(Fx::new(large_limits()), "A");
    let data = bytes(300 * KIB, 52);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    let paused = fx.pause_once(r.upload_id).await;
    let seal = paused.saved_progress().unwrap().seal;
    let hashed = paused.saved_progress().unwrap().hashed;
    let mut chosen = sha2::Sha256::new();
    chosen.update(vec![0u8; usize::try_from(hashed).unwrap()]);
    let forged = chosen.serialize().to_vec();
    // Forged with the old seal kept, then with none: neither is continued from.
    for keep_seal in [true, false] {
        let fx = if keep_seal {
            &fx
        } else {
            &with_key(Fx::new(large_limits()), "A")
        };
        let id = if keep_seal {
            r.upload_id
        } else {
            let r = fx.uploaded(&data, None).await;
            fx.complete(r.upload_id).await.unwrap();
            fx.pause_once(r.upload_id).await;
            r.upload_id
        };
        rewrite_progress(fx, id, |p| {
            p.state = forged.clone();
            p.seal = if keep_seal { seal } else { None };
        });
        let reads_before = fx.s3(Call::GetRange);
        let record = continued(&fx.uploads, id).await;
        assert_verified(&record, &data);
        assert_read_from_byte_0(fx, reads_before, &data, &format!("seal kept: {keep_seal}"));
        let receipt = fx.uploads.receipt(OWNER, id).await.unwrap().unwrap();
        let (_, claims, _, _) = split(&receipt);
        assert_eq!(claims.sha256, Sha256::of(&data));
    }
}

/// A seal is bound to its upload: one moved onto another upload's identical progress (same
/// bytes, same count) does not carry over.
#[tokio::test]
async fn a_seal_moved_to_another_upload_is_not_continued_from() {
    let fx = with_key(Fx::new(large_limits()), "A");
    let data = bytes(300 * KIB, 53);
    let (a, b) = (
        fx.uploaded(&data, None).await,
        fx.uploaded(&data, None).await,
    );
    for id in [a.upload_id, b.upload_id] {
        fx.complete(id).await.unwrap();
        fx.pause_once(id).await;
    }
    let from_a = fx.peek(a.upload_id).saved_progress().unwrap().clone();
    rewrite_progress(&fx, b.upload_id, |p| *p = from_a.clone());
    let reads_before = fx.s3(Call::GetRange);
    assert_verified(&continued(&fx.uploads, b.upload_id).await, &data);
    assert_read_from_byte_0(&fx, reads_before, &data, "a moved seal");
}

/// After a rotation, progress sealed by the retired key is hashed again: whoever may still use
/// a retired key must not steer what the current one signs.
#[tokio::test]
async fn progress_sealed_by_a_retired_key_is_hashed_again_from_byte_0() {
    let fx = with_key(Fx::new(large_limits()), "A");
    let data = bytes(300 * KIB, 54);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    fx.pause_once(r.upload_id).await;
    let rotated = fx
        .other(large_limits())
        .with_receipts(crate::receipt::Receipts::new(
            Arc::new(crate::memory::MemorySigner::from_seed("A").rotated("B")),
            "https://uploads.example",
        ));
    let reads_before = fx.s3(Call::GetRange);
    assert_verified(&continued(&rotated, r.upload_id).await, &data);
    assert_read_from_byte_0(&fx, reads_before, &data, "a retired key's seal");
}
