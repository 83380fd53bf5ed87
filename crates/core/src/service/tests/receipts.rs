//! Receipts: only a verified record has one; it states exactly the record's verdict, signed by
//! the key the published set names; a rotation keeps old receipts checkable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use vu_contract::receipt::{Claims, Header, Jwks};

use super::*;
use crate::domain::{ObjectVersion, State, Verified};
use crate::memory::MemorySigner;
use crate::receipt::Receipts;

const ISSUER: &str = "https://uploads.example";

pub(super) fn with_key(fx: Fx, seed: &str) -> Fx {
    let uploads = fx.uploads;
    Fx {
        uploads: uploads.with_receipts(Receipts::new(
            Arc::new(MemorySigner::from_seed(seed)),
            ISSUER,
        )),
        ..fx
    }
}

pub(super) fn split(receipt: &str) -> (Header, Claims, Signature, String) {
    let parts: Vec<&str> = receipt.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS: {receipt}");
    let header = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    let sig = Signature::from_slice(&B64URL.decode(parts[2]).unwrap()).unwrap();
    (header, claims, sig, format!("{}.{}", parts[0], parts[1]))
}

/// The published key `kid` names, as a verifier would pick it.
fn key_of(jwks: &Jwks, kid: &str) -> VerifyingKey {
    let jwk = jwks.find(kid).expect("the receipt's kid is published");
    let mut sec1 = vec![4u8];
    sec1.extend(B64URL.decode(&jwk.x).unwrap());
    sec1.extend(B64URL.decode(&jwk.y).unwrap());
    VerifyingKey::from_sec1_bytes(&sec1).unwrap()
}

#[tokio::test]
async fn a_verified_upload_has_a_receipt_stating_its_verdict_signed_by_a_published_key() {
    let fx = with_key(Fx::new(limits()), "A");
    let data = bytes(300 * KIB, 41);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    let verified = fx.complete(r.upload_id).await.unwrap();

    let receipt = fx
        .uploads
        .receipt(OWNER, r.upload_id)
        .await
        .unwrap()
        .unwrap();
    let (header, claims, sig, signed) = split(&receipt);
    assert_eq!(
        (header.alg.as_str(), header.typ.as_str()),
        ("ES256", "vu-receipt+jwt")
    );
    let jwks = fx.uploads.jwks().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    key_of(&jwks, &header.kid)
        .verify(signed.as_bytes(), &sig)
        .expect("the signature verifies with the published key");

    let verified_at = verified.verified_at().unwrap().to_owned();
    let iat =
        time::OffsetDateTime::parse(&verified_at, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp();
    assert_eq!(
        claims,
        Claims {
            iss: ISSUER.into(),
            sub: r.upload_id.to_string(),
            iat,
            upload_id: r.upload_id.to_string(),
            owner: OWNER.into(),
            bucket: verified.bucket.clone(),
            key: verified.key.as_str().into(),
            version_id: verified.version_id().map(str::to_owned),
            size: data.len() as u64,
            sha256: Sha256::of(&data),
            etag: verified.etag().unwrap().into(),
            verified_at,
        }
    );

    // A pure function of the record and the key: asked again, the same receipt.
    let again = fx
        .uploads
        .receipt(OWNER, r.upload_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, receipt);
    // Another caller's id answers exactly like an unknown one.
    assert!(matches!(
        fx.uploads.receipt("mallory", r.upload_id).await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_changed_claim_or_another_key_does_not_verify() {
    let fx = with_key(Fx::new(limits()), "A");
    let data = bytes(100 * KIB, 42);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    let receipt = fx
        .uploads
        .receipt(OWNER, r.upload_id)
        .await
        .unwrap()
        .unwrap();
    let (header, mut claims, sig, _) = split(&receipt);
    let key = key_of(&fx.uploads.jwks().await.unwrap(), &header.kid);

    claims.size += 1;
    let head = receipt.split('.').next().unwrap();
    let forged = format!(
        "{head}.{}",
        B64URL.encode(serde_json::to_vec(&claims).unwrap())
    );
    assert!(key.verify(forged.as_bytes(), &sig).is_err());

    let other = MemorySigner::from_seed("B").verifying_key();
    let (.., signed) = split(&receipt);
    assert!(other.verify(signed.as_bytes(), &sig).is_err());
}

#[tokio::test]
async fn failed_in_flight_and_pending_uploads_have_no_receipt() {
    let fx = with_key(Fx::new(large_limits()), "A");
    // Pending.
    let pending = fx.create(10 * KIB, None).await;
    let conflict = |e| matches!(e, Err(Error::Conflict(Conflict::NotVerified { status })) if status == Status::Pending);
    assert!(conflict(fx.uploads.receipt(OWNER, pending.upload_id).await));

    // Failed: a digest mismatch.
    let data = bytes(50 * KIB, 43);
    let r = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(
        fx.uploads.receipt(OWNER, r.upload_id).await,
        Err(Error::Conflict(Conflict::NotVerified {
            status: Status::Failed
        }))
    ));

    // In flight: over 100 KiB goes to the verifier, the record is `verifying`.
    let data = bytes(300 * KIB, 44);
    let r = fx.uploaded(&data, None).await;
    let handed = fx.complete(r.upload_id).await.unwrap();
    assert!(handed.status().is_in_flight(), "{:?}", handed.status());
    assert!(matches!(
        fx.uploads.receipt(OWNER, r.upload_id).await,
        Err(Error::Conflict(Conflict::NotVerified { status })) if status.is_in_flight()
    ));
}

#[tokio::test]
async fn after_a_rotation_old_receipts_still_verify_and_new_ones_name_the_new_key() {
    let fx = Fx::new(limits());
    let data = bytes(100 * KIB, 45);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    let old = Receipts::new(Arc::new(MemorySigner::from_seed("A")), ISSUER);
    let rotated = Receipts::new(Arc::new(MemorySigner::from_seed("A").rotated("B")), ISSUER);
    let record = fx.peek(r.upload_id);
    let old_receipt = old.issue(&record).await.unwrap().unwrap();
    let new_receipt = rotated.issue(&record).await.unwrap().unwrap();

    let jwks = rotated.jwks().await.unwrap();
    assert_eq!(jwks.keys.len(), 2, "the retired key stays published");
    let (old_header, old_claims, old_sig, old_signed) = split(&old_receipt);
    let (new_header, new_claims, new_sig, new_signed) = split(&new_receipt);
    assert_ne!(old_header.kid, new_header.kid);
    assert_eq!(jwks.keys[0].kid, new_header.kid, "the signing key first");
    assert_eq!(old_claims, new_claims);
    key_of(&jwks, &old_header.kid)
        .verify(old_signed.as_bytes(), &old_sig)
        .expect("a receipt signed before the rotation still verifies");
    key_of(&jwks, &new_header.kid)
        .verify(new_signed.as_bytes(), &new_sig)
        .unwrap();
}

#[tokio::test]
async fn without_a_signer_no_receipt_and_no_keys() {
    let fx = Fx::new(limits());
    let data = bytes(10 * KIB, 46);
    let r = fx.uploaded(&data, None).await;
    fx.complete(r.upload_id).await.unwrap();
    assert_eq!(fx.uploads.receipt(OWNER, r.upload_id).await.unwrap(), None);
    assert!(fx.uploads.jwks().await.unwrap().keys.is_empty());
}

#[tokio::test]
async fn a_signer_fault_at_the_verdict_is_an_upstream_fault_and_the_retry_verifies_with_a_receipt()
{
    let signer = Arc::new(MemorySigner::from_seed("A"));
    let fx = Fx::new(limits());
    let uploads = fx
        .other(limits())
        .with_receipts(Receipts::new(signer.clone(), ISSUER));
    let data = bytes(10 * KIB, 47);
    let r = fx.uploaded(&data, Some(Sha256::of(&data))).await;
    signer.faults.fail(Call::Sign, 1);
    let budget = || Budget::request(uploads.limits());
    let err = uploads
        .complete(OWNER, r.upload_id, None, None, budget())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Upstream(PortError::Unavailable {
                service: Upstream::Kms,
                ..
            })
        ),
        "{err:?}"
    );
    // Not a verdict: still in flight, the cause kept, the lease let go, the object kept.
    let held = fx.peek(r.upload_id);
    assert_eq!(held.status(), Status::Completing, "{held:?}");
    assert!(held.fault().is_some(), "{held:?}");
    assert_eq!(held.lease_until(), 0);
    assert_eq!(fx.objects.versions(held.key.as_str()), 1);
    assert!(fx.announcer.of(r.upload_id).is_empty());

    // KMS answers again: the retry verifies, with its receipt.
    let verified = uploads
        .complete(OWNER, r.upload_id, None, None, budget())
        .await
        .unwrap();
    assert_verified(&verified, &data);
    assert!(verified.receipt().is_some());
    assert_eq!(signer.faults.count(Call::Sign), 2);
}

#[tokio::test]
async fn the_receipt_is_signed_once_with_the_verdict_and_the_event_carries_it() {
    let signer = Arc::new(MemorySigner::from_seed("A"));
    let fx = Fx::new(limits());
    let uploads = fx
        .other(limits())
        .with_receipts(Receipts::new(signer.clone(), ISSUER));
    let data = bytes(20 * KIB, 48);
    let r = fx.uploaded(&data, None).await;
    let verified = uploads
        .complete(
            OWNER,
            r.upload_id,
            None,
            None,
            Budget::request(uploads.limits()),
        )
        .await
        .unwrap();
    let stored = verified
        .receipt()
        .expect("stored with the verdict")
        .to_owned();
    for _ in 0..3 {
        let served = uploads.receipt(OWNER, r.upload_id).await.unwrap();
        assert_eq!(served.as_deref(), Some(stored.as_str()));
    }
    assert_eq!(
        signer.faults.count(Call::Sign),
        1,
        "served, never signed again"
    );
    let sent = fx.announcer.sent();
    let event = sent.iter().find(|s| s.upload_id == r.upload_id).unwrap();
    assert_eq!(event.receipt(), Some(stored.as_str()));
}

#[tokio::test]
async fn a_record_forged_in_the_table_gets_no_receipt() {
    let signer = Arc::new(MemorySigner::from_seed("A"));
    let fx = Fx::new(limits());
    let uploads = fx
        .other(limits())
        .with_receipts(Receipts::new(signer.clone(), ISSUER));
    // Someone with write access to the table marks a pending upload verified, with a digest of
    // their choosing: nothing hashed it, so nothing signs it.
    let pending = fx.create(10 * KIB, None).await;
    let forged = UploadRecord {
        state: State::Verified(Verified {
            sha256: Sha256::of(b"what the forger wants vouched for"),
            object: ObjectVersion {
                etag: "\"forged\"".into(),
                version_id: Some("v-forged".into()),
            },
            verified_at: "2026-12-06T00:00:00.000Z".into(),
            bytes: 10 * KIB,
            announced: true,
            receipt: None,
        }),
        ..pending
    };
    fx.sessions.put(forged);
    assert_eq!(
        uploads.receipt(OWNER, pending.upload_id).await.unwrap(),
        None
    );
    assert_eq!(signer.faults.count(Call::Sign), 0);
}
