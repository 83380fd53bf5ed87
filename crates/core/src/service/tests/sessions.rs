//! Abort, posted objects, unsized sessions.

use super::*;

#[tokio::test]
async fn abort_racing_complete_exactly_one_wins() {
    let data = bytes(100 * KIB, 20);
    let (mut aborted, mut completed) = (0, 0);
    for delay in 0..6 {
        let fx = Fx::new(limits());
        let r = fx.uploaded(&data, None).await;
        let id = r.upload_id;
        let abort = async {
            for _ in 0..delay {
                tokio::task::yield_now().await;
            }
            fx.uploads.abort(OWNER, id).await
        };
        let (c, a) = tokio::join!(fx.complete(id), abort);
        match (c, a) {
            (Ok(v), Err(Error::Conflict(c))) => {
                assert!(
                    matches!(
                        c,
                        Conflict::WrongState {
                            action: Action::Abort,
                            ..
                        }
                    ),
                    "{c:?}"
                );
                assert_verified(&v, &data);
                assert_eq!(fx.peek(id).status(), Status::Verified);
                assert!(fx.objects.object(r.key.as_str()).is_some());
                completed += 1;
            }
            (Err(Error::Conflict(c)), Ok(())) => {
                let aborted_state = Conflict::WrongState {
                    action: Action::Complete,
                    status: Status::Aborted,
                };
                assert!(
                    c == aborted_state
                        || matches!(c, Conflict::MultipartGone | Conflict::WrongState { .. }),
                    "{c:?}"
                );
                assert_eq!(fx.peek(id).status(), Status::Aborted);
                assert!(!fx.objects.has_upload(&s3_upload_id(&r)));
                assert!(fx.objects.object(r.key.as_str()).is_none());
                assert_eq!(fx.s3(Call::CompleteMultipart), 0);
                aborted += 1;
            }
            other => panic!("delay {delay}: {other:?}"),
        }
    }
    assert!(
        aborted > 0 && completed > 0,
        "aborted {aborted}, completed {completed}"
    );
}

#[tokio::test]
async fn a_posted_object_is_verified_when_its_owner_reads_it() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 21);
    let (r, _form) = fx
        .uploads
        .create_post(OWNER, declared(Some(Sha256::of(&data))), None)
        .await
        .unwrap();
    assert_eq!((r.kind.clone(), r.plan), (Kind::Post, None));

    // Nothing posted yet.
    let before = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_eq!(before.status(), Status::Pending);
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(Conflict::NotArrived)),
        "{err:?}"
    );

    fx.objects.put_object(r.key.as_str(), &data);
    let settled = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_verified(&settled, &data);
    assert_eq!(settled.size(), Some(data.len() as u64));
    // Later reads, completes and S3's event find it done.
    assert_eq!(
        fx.uploads
            .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
            .await
            .unwrap(),
        settled
    );
    assert_eq!(fx.complete(r.upload_id).await.unwrap(), settled);
    let event = fx
        .uploads
        .on_object_created(r.key.as_str(), None, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(event, EventOutcome::Ignored(_)), "{event:?}");
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn a_posted_object_with_the_wrong_digest_is_deleted_and_failed() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 22);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(Some(Sha256::of(b"x"))), None)
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), &data);
    let settled = fx
        .uploads
        .get_settled(OWNER, r.upload_id, Budget::request(fx.uploads.limits()))
        .await
        .unwrap();
    assert_eq!(settled.status(), Status::Failed);
    assert!(settled.error().unwrap().contains("sha256 mismatch"));
    assert!(fx.objects.object(r.key.as_str()).is_none());
}

#[tokio::test]
async fn duplicate_events_for_a_posted_object_verify_once() {
    let fx = Fx::new(limits());
    let data = bytes(150 * KIB, 23);
    let (r, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    fx.objects.put_object(r.key.as_str(), &data);
    let key = r.key.as_str();

    let (a, b) = tokio::join!(
        fx.uploads
            .on_object_created(key, None, Budget::verifier(None)),
        fx.uploads
            .on_object_created(key, None, Budget::verifier(None))
    );
    // The duplicate that finds the other verifying fails, to be delivered again after the lease.
    let (won, lost) = match (a, b) {
        (Ok(EventOutcome::Done(w)), l) | (l, Ok(EventOutcome::Done(w))) => (*w, l),
        other => panic!("{other:?}"),
    };
    assert_verified(&won, &data);
    assert!(
        matches!(lost, Err(Error::Conflict(_)) | Ok(EventOutcome::Ignored(_))),
        "{lost:?}"
    );
    let third = fx
        .uploads
        .on_object_created(key, None, Budget::verifier(None))
        .await
        .unwrap();
    assert!(matches!(third, EventOutcome::Ignored(_)), "{third:?}");
    assert_eq!(fx.db(Call::Transition(Status::Verified)), 1);
}

#[tokio::test]
async fn an_unsized_session_is_measured_at_completion() {
    let fx = Fx::new(unsized_allowed(limits()));
    let data = bytes(5 * MIB + 100, 24);
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    assert_eq!(r.plan, None);
    let id = s3_upload_id(&r);
    let (one, two) = data.split_at(usize::try_from(5 * MIB).unwrap());
    fx.objects.put_part(&id, part(1), one, None).unwrap();
    fx.objects.put_part(&id, part(2), two, None).unwrap();

    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &data);
    let plan = verified.plan.unwrap();
    assert_eq!(
        (plan.size(), plan.part_size(), plan.part_count()),
        (data.len() as u64, 5 * MIB, 2)
    );
}

#[tokio::test]
async fn an_unsized_session_that_fits_no_plan_or_limit_stays_pending() {
    let fx = Fx::new(unsized_allowed(Limits {
        max_object_bytes: 250,
        ..limits()
    }));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let id = s3_upload_id(&r);
    // The last part larger than the first: no plan.
    fx.objects.put_part(&id, part(1), &[1; 100], None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 200], None).unwrap();
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Parts(PartsError::Unmeasurable(_))),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status(), after.plan), (Status::Pending, None));

    // A plan, but over the size limit.
    fx.objects.put_part(&id, part(1), &[1; 200], None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 100], None).unwrap();
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 300,
                max: 250
            }
        ),
        "{err:?}"
    );
    let after = fx.peek(r.upload_id);
    assert_eq!((after.status(), after.plan), (Status::Pending, None));
    assert_eq!(fx.db(Call::Transition(Status::Completing)), 0);
}

/// A refused completion reopens an unsized session and forgets the plan measured for it, so the
/// parts the client fixes (here: the last one re-sent with another length) are measured afresh.
#[tokio::test]
async fn a_reopened_unsized_session_is_measured_again() {
    let fx = Fx::new(unsized_allowed(limits()));
    let r = fx
        .uploads
        .create_unsized(OWNER, declared(None))
        .await
        .unwrap();
    let id = s3_upload_id(&r);
    let first = bytes(5 * MIB, 25);
    fx.objects.put_part(&id, part(1), &first, None).unwrap();
    fx.objects.put_part(&id, part(2), &[2; 100], None).unwrap();
    let rejected = PortError::Rejected("InvalidPart".into());
    fx.objects
        .faults
        .fail_with(Call::CompleteMultipart, rejected);
    let err = fx.complete(r.upload_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict(Conflict::PartRejected)),
        "{err:?}"
    );
    let reopened = fx.peek(r.upload_id);
    assert_eq!(reopened.status(), Status::Pending);

    fx.objects.put_part(&id, part(2), &[3; 200], None).unwrap();
    let mut data = first.clone();
    data.extend_from_slice(&[3; 200]);
    let verified = fx.complete(r.upload_id).await;
    assert_verified(&verified.unwrap(), &data);
}

#[tokio::test]
async fn an_empty_file_uploads_and_verifies_as_multipart_or_form_post() {
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let fx = Fx::new(limits());
    let r = fx.uploaded(&[], Some(Sha256::of(&[]))).await;
    assert_eq!(r.plan.map(|p| (p.size(), p.part_count())), Some((0, 1)));
    let verified = fx.complete(r.upload_id).await.unwrap();
    assert_verified(&verified, &[]);
    assert_eq!(
        verified.sha256().map(|d| d.to_hex()).as_deref(),
        Some(EMPTY)
    );

    let (posted, _) = fx
        .uploads
        .create_post(OWNER, declared(None), None)
        .await
        .unwrap();
    fx.objects.put_object(posted.key.as_str(), &[]);
    let settled = fx
        .uploads
        .get_settled(
            OWNER,
            posted.upload_id,
            Budget::request(fx.uploads.limits()),
        )
        .await
        .unwrap();
    assert_verified(&settled, &[]);
}
