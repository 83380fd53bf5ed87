#![allow(clippy::unwrap_used)]

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use serde_json::json;
use vu_contract::Sha256;
use vu_contract::receipt::Jwk;

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).unwrap()
}

fn jwk(key: &SigningKey, kid: &str) -> Jwk {
    let p = key.verifying_key().to_encoded_point(false);
    Jwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: B64URL.encode(p.x().unwrap()),
        y: B64URL.encode(p.y().unwrap()),
        kid: kid.into(),
        alg: "ES256".into(),
        use_: "sig".into(),
    }
}

fn claims(data: &[u8]) -> serde_json::Value {
    json!({
        "iss": "verified-uploads", "sub": "01JDZ4Q8X6M3V9T2K7R5N1B0CD", "iat": 1_767_225_600,
        "upload_id": "01JDZ4Q8X6M3V9T2K7R5N1B0CD", "owner": "alice", "bucket": "b",
        "key": "uploads/01JDZ4Q8X6M3V9T2K7R5N1B0CD/f.bin", "version_id": "v1",
        "size": data.len(), "sha256": Sha256::of(data).to_hex(), "etag": "\"e\"",
        "verified_at": "2026-01-01T00:00:00.000Z",
    })
}

fn sign(key: &SigningKey, kid: &str, alg: &str, claims: &serde_json::Value) -> String {
    let header = json!({ "alg": alg, "typ": TYPE, "kid": kid });
    let input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", B64URL.encode(sig.to_bytes()))
}

#[test]
fn a_receipt_checks_with_the_key_its_kid_names_and_nothing_else() {
    let data = b"the file";
    let (a, b) = (key(1), key(2));
    let keys = Jwks {
        keys: vec![jwk(&b, "kb"), jwk(&a, "ka")],
    };
    let receipt = sign(&a, "ka", "ES256", &claims(data));
    let c = check(&receipt, &keys).unwrap();
    assert_eq!((c.size, c.sha256), (8, Sha256::of(data)));
    assert_eq!(check(&format!("{receipt}\n"), &keys).unwrap(), c);

    // Any field changed, the signature kept.
    for (field, value) in [
        ("size", json!(9)),
        ("sha256", json!(Sha256::of(b"other").to_hex())),
        ("owner", json!("mallory")),
        ("version_id", json!("v2")),
    ] {
        let mut forged = claims(data);
        forged[field] = value;
        let (head, rest) = receipt.split_once('.').unwrap();
        let sig = rest.rsplit_once('.').unwrap().1;
        let tampered = format!("{head}.{}.{sig}", B64URL.encode(forged.to_string()));
        assert_eq!(
            check(&tampered, &keys),
            Err(Refused::BadSignature),
            "{field}"
        );
    }
    // Another key, claiming to be the published one; a key the set does not hold.
    assert_eq!(
        check(&sign(&b, "ka", "ES256", &claims(data)), &keys),
        Err(Refused::BadSignature)
    );
    assert_eq!(
        check(&sign(&key(3), "kc", "ES256", &claims(data)), &keys),
        Err(Refused::UnknownKey("kc".into()))
    );
    assert!(matches!(
        check(&sign(&a, "ka", "HS256", &claims(data)), &keys),
        Err(Refused::NotAReceipt { .. })
    ));
    assert_eq!(check("a.b", &keys), Err(Refused::Malformed));
    assert_eq!(check("", &keys), Err(Refused::Malformed));
}

#[tokio::test]
async fn the_file_must_be_the_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    std::fs::write(&path, b"the file").unwrap();
    let a = key(1);
    let keys = Jwks {
        keys: vec![jwk(&a, "ka")],
    };
    let c = check(&sign(&a, "ka", "ES256", &claims(b"the file")), &keys).unwrap();
    assert_eq!(check_file(&c, &path).await.unwrap(), Ok(()));
    std::fs::write(&path, b"the filE").unwrap();
    assert!(matches!(
        check_file(&c, &path).await.unwrap(),
        Err(Refused::OtherFile(why)) if why.contains("SHA-256")
    ));
    std::fs::write(&path, b"the file!").unwrap();
    assert!(matches!(
        check_file(&c, &path).await.unwrap(),
        Err(Refused::OtherFile(why)) if why.contains("bytes")
    ));
}
