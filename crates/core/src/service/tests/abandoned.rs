//! Sessions whose multipart upload S3 no longer holds (the bucket's lifecycle aborts incomplete
//! uploads after a day) end `aborted` and give their reservation back, instead of holding it
//! until their TTL with no way to resume.

use super::*;

/// A pending session of `len` bytes, one part uploaded, whose multipart upload S3 then aborted.
async fn abandoned(fx: &Fx, seed: u32) -> UploadRecord {
    let data = bytes(6 * MIB, seed);
    let r = fx.create(data.len() as u64, Some(Sha256::of(&data))).await;
    let mpu = s3_upload_id(&r);
    fx.objects
        .put_part(&mpu, part(1), &data[..5 * MIB as usize], None)
        .unwrap();
    assert_eq!(fx.sessions.reserved(OWNER), (1, data.len() as u64));
    fx.objects
        .abort_multipart(r.key.as_str(), &mpu)
        .await
        .unwrap();
    r
}

#[tokio::test]
async fn a_session_whose_multipart_upload_s3_aborted_is_closed_by_its_owners_next_request() {
    for request in ["resume", "complete"] {
        let fx = Fx::new(limits());
        let r = abandoned(&fx, 50).await;
        let answer = match request {
            "resume" => fx.uploads.list_parts(OWNER, r.upload_id).await.map(|_| ()),
            _ => fx.complete(r.upload_id).await.map(|_| ()),
        };
        assert!(
            matches!(answer, Err(Error::Conflict(Conflict::MultipartGone))),
            "{request}: {answer:?}"
        );
        let closed = fx.peek(r.upload_id);
        assert_eq!(closed.status(), Status::Aborted, "{request}");
        assert_eq!(
            fx.sessions.reserved(OWNER),
            (0, 0),
            "{request}: slot given back"
        );
        assert_eq!(fx.announcer.of(r.upload_id), [Status::Aborted], "{request}");
    }
}

#[tokio::test]
async fn the_sweep_closes_pending_sessions_past_their_abort_age_and_only_those() {
    let fx = Fx::new(limits());
    // S3's lifecycle aborted this one's multipart upload; not yet this one's (it runs late).
    let gone = abandoned(&fx, 52).await;
    let late = fx.create(6 * MIB, None).await;
    // A form never posted, and one whose object arrived but whose event was lost.
    let (never, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let (arrived, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    let data = bytes(2000, 53);
    fx.objects.put_object(arrived.key.as_str(), &data);

    // Younger than the abort age: the sweep leaves every one alone.
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    for r in [&gone, &late, &never, &arrived] {
        assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);
    }
    assert_eq!(fx.sessions.reserved(OWNER).0, 4);

    fx.clock
        .advance(crate::service::ABANDONED_AFTER + Duration::from_secs(60));
    let young = fx.create(6 * MIB, None).await;
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    assert_eq!(fx.peek(gone.upload_id).status(), Status::Aborted);
    assert_eq!(fx.announcer.of(gone.upload_id), [Status::Aborted]);
    // Age alone closes nothing live: S3 still holds `late`'s upload and `never`'s form may
    // still be posted until the session expires (the lifecycle age and TTL are settings).
    for r in [&late, &never] {
        assert_eq!(fx.peek(r.upload_id).status(), Status::Pending);
    }
    assert!(
        fx.objects.has_upload(&s3_upload_id(&late)),
        "a live upload is never aborted on age"
    );

    // Once their sessions have expired, they are closed, and the upload aborted in S3 too.
    fx.clock.advance(Duration::from_secs(5 * 24 * 3600 + 60));
    fx.uploads.sweep(200, Budget::verifier(None)).await.unwrap();
    for r in [&gone, &late, &never] {
        assert_eq!(fx.peek(r.upload_id).status(), Status::Aborted);
        assert_eq!(fx.announcer.of(r.upload_id), [Status::Aborted]);
    }
    assert!(
        !fx.objects.has_upload(&s3_upload_id(&late)),
        "aborted in S3 too"
    );
    assert_verified(&fx.peek(arrived.upload_id), &data);
    assert_eq!(fx.peek(young.upload_id).status(), Status::Pending);
    assert_eq!(
        fx.sessions.reserved(OWNER),
        (1, 6 * MIB),
        "only the young session holds a slot"
    );
}
