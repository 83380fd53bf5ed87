//! Per-owner limits: reserved in one conditional write at create, given back when the session is
//! final or expires; unsized sessions are refused unless allowed, and when allowed hold what they
//! reserved and no more, and are signed no part number past what the reservation can hold.

use super::*;
use crate::ports::OwnerLimit;

/// Few sessions and bytes; unsized sessions allowed, reserving 6 MiB (two parts at S3's minimum).
fn few(open: u64, bytes: u64) -> Limits {
    Limits {
        max_open_sessions_per_owner: open,
        max_pending_bytes_per_owner: bytes,
        unsized_session_max_bytes: 6 * MIB,
        unsized_sessions: true,
        ..limits()
    }
}

fn new_upload(size: u64) -> NewUpload {
    NewUpload {
        filename: Filename::parse("f.bin").unwrap(),
        size,
        content_type: ContentType::default(),
        sha256: None,
        part_size: None,
        metadata: Metadata::default(),
        part_checksums: false,
    }
}

fn over(e: Error) -> OwnerLimit {
    match e {
        Error::OverLimit(limit) => limit,
        other => panic!("expected OverLimit, got {other:?}"),
    }
}

#[tokio::test]
async fn racing_creates_never_pass_the_open_sessions_limit() {
    let fx = Fx::new(few(3, u64::MAX / 4));
    let attempts = (0..6).map(|_| fx.uploads.create(OWNER, new_upload(1000)));
    let results = futures::future::join_all(attempts).await;
    let created: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(created.len(), 3);
    for e in results.into_iter().filter_map(Result::err) {
        assert_eq!(over(e), OwnerLimit::OpenSessions(3));
    }
    let refused = fx.uploads.create(OWNER, new_upload(1)).await.unwrap_err();
    assert!(matches!(refused, Error::OverLimit(_)), "{:?}", refused);
    assert!(
        fx.uploads.create("bob", new_upload(1)).await.is_ok(),
        "per owner"
    );
    assert_eq!(fx.sessions.reserved(OWNER), (3, 3000));
}

#[tokio::test]
async fn a_session_gives_its_reservation_back_when_final() {
    let fx = Fx::new(few(2, u64::MAX / 4));
    let data = bytes(1000, 90);
    let verified = fx.uploaded(&data, None).await;
    let aborted = fx.create(10, None).await;
    assert!(fx.uploads.create(OWNER, new_upload(1)).await.is_err());
    assert_verified(&fx.complete(verified.upload_id).await.unwrap(), &data);
    fx.uploads.abort(OWNER, aborted.upload_id).await.unwrap();
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
    // A failed verification gives it back too.
    let failing = fx.uploaded(&data, Some(Sha256::of(b"other"))).await;
    assert!(fx.complete(failing.upload_id).await.is_err());
    assert_eq!(fx.peek(failing.upload_id).status(), Status::Failed);
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
    assert!(fx.uploads.create(OWNER, new_upload(1)).await.is_ok());
}

#[tokio::test]
async fn pending_bytes_are_limited_and_unsized_sessions_reserve_their_maximum() {
    let fx = Fx::new(few(100, 10 * MIB));
    fx.uploads.create(OWNER, new_upload(3 * MIB)).await.unwrap();
    let too_much = fx.uploads.create(OWNER, new_upload(8 * MIB)).await;
    assert_eq!(
        over(too_much.unwrap_err()),
        OwnerLimit::PendingBytes(10 * MIB)
    );
    // 6 MiB reserved for an unsized session: 9 MiB in all.
    fx.uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    assert_eq!(fx.sessions.reserved(OWNER), (2, 9 * MIB));
    let form = fx.uploads.create_post(OWNER, declared(None), None).await;
    assert_eq!(over(form.unwrap_err()), OwnerLimit::PendingBytes(10 * MIB));
}

#[tokio::test]
async fn an_expired_session_gives_its_reservation_back() {
    let fx = Fx::new(few(1, u64::MAX / 4));
    fx.uploads.create(OWNER, new_upload(1)).await.unwrap();
    assert!(fx.uploads.create(OWNER, new_upload(1)).await.is_err());
    fx.clock
        .advance(limits().session_ttl + Duration::from_secs(1));
    assert!(fx.uploads.create(OWNER, new_upload(1)).await.is_ok());
}

#[tokio::test]
async fn an_unsized_session_holds_no_more_than_it_reserved() {
    let fx = Fx::new(few(100, u64::MAX / 4));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let upload = s3_upload_id(&r);
    // Two parts of 5 MiB: more than the 6 MiB the session reserved.
    fx.objects
        .put_part(&upload, part(1), &bytes(5 * MIB, 91), None)
        .unwrap();
    let signed = fx.uploads.sign_parts_of(&r, &[(part(2), None)]).await;
    assert!(
        signed.is_ok(),
        "5 MiB held of 6: one more part may be signed"
    );
    fx.objects
        .put_part(&upload, part(2), &bytes(5 * MIB, 92), None)
        .unwrap();
    // 10 MiB held: no more URLs, not even for a part number within 1..=2 (a part again).
    let refused = fx
        .uploads
        .sign_parts_of(&r, &[(part(2), None)])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::TooLarge { .. }), "{:?}", refused);
    let refused = fx.complete(r.upload_id).await.unwrap_err();
    assert!(matches!(refused, Error::TooLarge { .. }), "{:?}", refused);
    assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);
}

#[tokio::test]
async fn a_content_type_outside_the_allow_list_is_refused_at_every_create_before_anything_is_held()
{
    let fx = Fx::new(Limits {
        allowed_content_types: crate::domain::AllowedContentTypes::parse("image/*,application/pdf")
            .unwrap(),
        ..few(10, u64::MAX / 4)
    });
    let typed = |t: &str| UnsizedUpload {
        content_type: ContentType::parse(t).unwrap(),
        ..declared(None)
    };
    let sized = |t: &str| NewUpload {
        content_type: ContentType::parse(t).unwrap(),
        ..new_upload(1000)
    };
    // A type never declared is application/octet-stream, and refused like any other.
    let refused = [
        fx.uploads.create(OWNER, sized("text/html")).await.err(),
        fx.uploads.create(OWNER, new_upload(1000)).await.err(),
        fx.uploads
            .create_planned(OWNER, typed("text/html"), 1000, 5 * MIB)
            .await
            .err(),
        fx.uploads
            .create_unsized(OWNER, typed("video/mp4"))
            .await
            .err(),
        fx.uploads
            .create_post(OWNER, typed("application/pdfx"), None)
            .await
            .err(),
    ];
    for e in refused {
        let e = e.expect("refused");
        assert!(matches!(e, Error::ContentTypeNotAllowed { .. }), "{e:?}");
        assert!(matches!(e, Error::ContentTypeNotAllowed { .. }), "{:?}", e);
    }
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
    assert_eq!(fx.objects.faults.count(Call::CreateMultipart), 0);
    assert_eq!(fx.objects.faults.count(Call::PresignPost), 0);

    // Allowed types, whatever their case and parameters, go through every route.
    fx.uploads.create(OWNER, sized("IMAGE/PNG")).await.unwrap();
    fx.uploads
        .create_planned(OWNER, typed("application/pdf; x=1"), 1000, 5 * MIB)
        .await
        .unwrap();
    fx.uploads
        .create_unsized(OWNER, typed("image/webp"))
        .await
        .unwrap();
    fx.uploads
        .create_post(OWNER, typed("image/jpeg"), None)
        .await
        .unwrap();
    assert_eq!(fx.sessions.reserved(OWNER).0, 4);
}

/// `ALLOW_UNSIZED_SESSIONS` off (the default): an unsized multipart create is refused before
/// anything is reserved, created in S3 or recorded; a form POST, bounded by its policy, is not.
/// A session created while they were allowed is signed nothing more once they are not, and
/// still completes with the parts S3 holds.
#[tokio::test]
async fn an_unsized_session_is_refused_unless_allowed_and_nothing_is_held() {
    assert!(!Limits::default().unsized_sessions, "off by default");
    let fx = Fx::new(limits());
    let refused = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::SizeRequired), "{refused:?}");
    assert_eq!(fx.sessions.reserved(OWNER), (0, 0));
    assert_eq!(
        (
            fx.s3(Call::CreateMultipart),
            fx.db(Call::Reserve),
            fx.db(Call::CreateSession)
        ),
        (0, 0, 0)
    );
    // Sized sessions, and forms with or without a size, are not refused.
    fx.uploads
        .create_planned(OWNER, declared(None), 1000, 5 * MIB)
        .await
        .unwrap();
    fx.uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    assert_eq!(fx.sessions.reserved(OWNER).0, 2);

    // Allowed: created as before, reserving UNSIZED_SESSION_MAX_BYTES.
    let allowed = fx.other(unsized_allowed(limits()));
    let (_, before) = fx.sessions.reserved(OWNER);
    let r = allowed.create_unsized(OWNER, declared(None)).await.unwrap();
    assert_eq!(r.plan, None);
    assert_eq!(fx.s3(Call::CreateMultipart), 2);
    assert_eq!(
        fx.sessions.reserved(OWNER),
        (3, before + limits().unsized_session_max_bytes)
    );
    let data = bytes(5 * MIB + 7, 93);
    let (one, two) = data.split_at(usize::try_from(5 * MIB).unwrap());
    let signed = allowed
        .sign_parts_of(&r, &[(part(1), None), (part(2), None)])
        .await
        .unwrap();
    assert_eq!(signed.len(), 2);
    let upload = s3_upload_id(&r);
    fx.objects.put_part(&upload, part(1), one, None).unwrap();

    // Not allowed any more (another instance, or after a redeploy): no more URLs for it...
    let refused = fx
        .uploads
        .sign_parts_of(&r, &[(part(2), None)])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::SizeRequired), "{refused:?}");
    // ...but the parts S3 holds still complete it.
    fx.objects.put_part(&upload, part(2), two, None).unwrap();
    assert_verified(&fx.complete(r.upload_id).await.unwrap(), &data);
}

/// With unsized sessions allowed, a session is signed part numbers up to what its reservation
/// holds at S3's minimum part size, and no further: before any byte lands, 1,024 URLs (of up to
/// 5 GiB each) for the default 5 GiB reservation, where all 10,000 could be signed before.
#[tokio::test]
async fn an_unsized_session_is_signed_no_part_number_past_its_reservation() {
    // 6 MiB reserved: two parts of 5 MiB at most.
    let fx = Fx::new(few(100, u64::MAX / 4));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let presigned = fx.s3(Call::PresignParts);
    let refused = fx
        .uploads
        .sign_parts_of(&r, &[(part(1), None), (part(3), None)])
        .await
        .unwrap_err();
    match refused {
        Error::Invalid(i) => {
            assert_eq!(i.field, "part_numbers");
            assert!(i.reason.contains("outside 1..=2"), "{}", i.reason);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(fx.s3(Call::PresignParts), presigned, "nothing signed");
    let signed = fx
        .uploads
        .sign_parts_of(&r, &[(part(1), None), (part(2), None)])
        .await
        .unwrap();
    assert_eq!(signed.len(), 2);

    // The defaults: 5 GiB reserved, so part numbers 1..=1024, before any byte lands, whatever
    // is asked for.
    let fx = Fx::new(unsized_allowed(limits()));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let mut urls = 0;
    let mut highest = 0;
    for n in 1..=u64::from(PartNumber::MAX) {
        if let Ok(signed) = fx.uploads.sign_parts_of(&r, &[(part(n), None)]).await {
            urls += signed.len();
            highest = n;
        }
    }
    assert_eq!((urls, highest), (1024, 1024));
}
