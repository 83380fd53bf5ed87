//! Verification by segments from the client's chaining values (`part_states`), end to end over
//! the in-memory ports: the same verdict as one sequential stream, whatever the states say.

use vu_contract::{Chain, ChainState, PartStates};

use super::*;
use crate::domain::{Chained, Invalid};

/// Four parts of 5 MiB (the last 1000 bytes).
const SIZE: u64 = 15 * MIB + 1000;

/// The chaining value after each of `parts` (part numbers), from `data` in parts of 5 MiB.
fn states_of(data: &[u8], parts: &[u16]) -> PartStates {
    let mut states = PartStates::default();
    for &n in parts {
        let mut chain = Chain::new();
        chain.update(&data[..usize::from(n) * 5 * MIB as usize]);
        states.insert(n, chain.state().unwrap());
    }
    states
}

impl Fx {
    async fn complete_chained(
        &self,
        id: UploadId,
        states: &PartStates,
    ) -> Result<UploadRecord, Error> {
        let budget = Budget::request(self.uploads.limits());
        self.uploads
            .complete_chained(OWNER, id, None, None, states, budget)
            .await
    }
}

#[tokio::test]
async fn all_links_holding_verifies_in_several_segments() {
    let fx = Fx::new(limits());
    let data = bytes(SIZE, 40);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let v = fx
        .complete_chained(r.upload_id, &states_of(&data, &[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(v.status(), Status::Verified);
    assert_eq!(v.sha256(), Some(Sha256::of(&data)));
    assert_eq!(
        v.chained,
        Chained {
            segments: 4,
            mismatch_part: None
        }
    );
    assert_eq!(v, fx.peek(r.upload_id));
    let wire = vu_contract::Record::from(&v);
    assert_eq!((wire.segments, wire.mismatch_part), (4, None));
    // Each byte read once: 15 MiB + 1000 in 64 KiB ranges, cut at the part boundaries.
    assert_eq!(fx.s3(Call::GetRange), 3 * 80 + 1);
}

#[tokio::test]
async fn without_states_the_verdict_rests_on_one_segment() {
    let fx = Fx::new(limits());
    let data = bytes(SIZE, 41);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let v = fx.complete(r.upload_id).await.unwrap();
    assert_eq!(v.chained, Chained::SEQUENTIAL);
}

#[tokio::test]
async fn a_wrong_state_with_the_right_bytes_still_verifies() {
    let fx = Fx::new(limits());
    let data = bytes(SIZE, 42);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let mut states = states_of(&data, &[1, 2, 3]);
    states.insert(2, ChainState::from_bytes([0x5A; 32]));
    let v = fx.complete_chained(r.upload_id, &states).await.unwrap();
    assert_eq!(v.status(), Status::Verified);
    assert_eq!(v.sha256(), Some(Sha256::of(&data)));
    assert_eq!(v.chained.mismatch_part, None);
}

#[tokio::test]
async fn a_changed_byte_in_part_k_fails_naming_part_k() {
    for k in 1..=4u16 {
        let fx = Fx::new(limits());
        let sent = bytes(SIZE, 43);
        let mut landed = sent.clone();
        landed[(usize::from(k) - 1) * 5 * MIB as usize + 77] ^= 0x80;
        let r = fx.create(SIZE, Some(Sha256::of(&sent))).await;
        fx.put_parts(&r, &landed);
        let err = fx
            .complete_chained(r.upload_id, &states_of(&sent, &[1, 2, 3]))
            .await
            .unwrap_err();
        let Error::VerificationFailed(failed) = err else {
            panic!("expected VerificationFailed, got {err:?}");
        };
        assert_eq!(failed.status(), Status::Failed, "part {k}");
        assert_eq!(failed.chained.mismatch_part, Some(k), "part {k}");
        assert_eq!(failed.sha256(), Some(Sha256::of(&landed)), "part {k}");
        assert!(
            failed
                .error()
                .is_some_and(|e| e.contains(&format!("part {k} is the first"))),
            "{:?}",
            failed.error()
        );
        assert!(fx.objects.object(r.key.as_str()).is_none(), "deleted");
    }
}

#[tokio::test]
async fn partial_states_cut_segments_where_given() {
    let fx = Fx::new(limits());
    let data = bytes(SIZE, 44);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let v = fx
        .complete_chained(r.upload_id, &states_of(&data, &[2]))
        .await
        .unwrap();
    assert_eq!((v.status(), v.chained.segments), (Status::Verified, 2));
}

#[tokio::test]
async fn states_that_do_not_fit_the_parts_are_refused_and_nothing_changes() {
    let fx = Fx::new(limits());
    let data = bytes(SIZE, 45);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let before = fx.peek(r.upload_id);
    // n = part_count: the last part ends in padding.
    let mut past_the_end = states_of(&data, &[1]);
    past_the_end.insert(4, ChainState::INITIAL);
    let err = fx
        .complete_chained(r.upload_id, &past_the_end)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(Invalid { field, .. }) if field == "part_states"),
        "{err:?}"
    );
    assert_eq!(fx.peek(r.upload_id), before);
    assert_eq!(fx.s3(Call::CompleteMultipart), 0);

    // Parts that are not whole 64-byte blocks have no chaining values between them.
    let req = NewUpload {
        filename: Filename::parse("odd.bin").unwrap(),
        size: 2 * (5 * MIB + 1),
        content_type: ContentType::default(),
        sha256: None,
        part_size: Some(5 * MIB + 1),
        metadata: Metadata::default(),
        part_checksums: false,
    };
    let odd = fx.uploads.create(OWNER, req).await.unwrap().record;
    fx.put_parts(&odd, &bytes(2 * (5 * MIB + 1), 46));
    let before = fx.peek(odd.upload_id);
    let mut one = PartStates::default();
    one.insert(1, ChainState::INITIAL);
    let err = fx.complete_chained(odd.upload_id, &one).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert_eq!(fx.peek(odd.upload_id), before);
}

#[tokio::test]
async fn the_verifier_function_verifies_by_the_claims_segments() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 47);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let handed = fx
        .complete_chained(r.upload_id, &states_of(&data, &[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(handed.status(), Status::Verifying);
    assert_eq!(handed.part_states.len(), 3, "kept with the claim");
    let v = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_eq!((v.status(), v.chained.segments), (Status::Verified, 4));
    assert_eq!(v.sha256(), Some(Sha256::of(&data)));
}

#[tokio::test]
async fn past_its_deadline_it_resumes_sequentially_to_the_same_digest() {
    let fx = Fx::new(large_limits());
    let data = bytes(SIZE, 48);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    fx.complete_chained(r.upload_id, &states_of(&data, &[1, 2, 3]))
        .await
        .unwrap();
    let paused = fx.pause_once(r.upload_id).await;
    assert!(paused.saved_progress().is_some());
    let v = done(
        fx.uploads
            .continue_verification(r.upload_id, Budget::verifier(None))
            .await
            .unwrap(),
    );
    assert_eq!(v.status(), Status::Verified);
    assert_eq!(v.sha256(), Some(Sha256::of(&data)));
    assert_eq!(v.chained, Chained::SEQUENTIAL);
}
