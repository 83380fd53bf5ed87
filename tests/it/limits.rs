//! Per-owner limits on DynamoDB itself: the owner's reservations item takes racing creates one
//! conditional write at a time.

use crate::helpers::*;
use verified_uploads::config::Limits;
use verified_uploads::domain::{ContentType, Filename, Metadata};
use verified_uploads::error::Error;
use verified_uploads::ports::OwnerLimit;
use verified_uploads::service::NewUpload;

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

#[tokio::test]
async fn racing_creates_never_pass_an_owners_limits_on_dynamodb() {
    let uploads = uploads_with(
        Limits {
            max_open_sessions_per_owner: 3,
            max_pending_bytes_per_owner: 10_000,
            ..test_limits()
        },
        small_ranges(),
    )
    .await;
    let owner = format!("owner-{}", ulid::Ulid::new());
    let attempts = (0..6).map(|_| uploads.create(&owner, new_upload(1000)));
    let results = futures::future::join_all(attempts).await;
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 3, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::OverLimit(OwnerLimit::OpenSessions(3))),
                "{e:?}"
            );
        }
    }
    // Aborting one gives its place back; bytes are limited too.
    let first = created[0].record.upload_id;
    uploads.abort(&owner, first).await.unwrap();
    let too_big = uploads.create(&owner, new_upload(9_000)).await.unwrap_err();
    assert!(
        matches!(too_big, Error::OverLimit(OwnerLimit::PendingBytes(10_000))),
        "{too_big:?}"
    );
    uploads.create(&owner, new_upload(8_000)).await.unwrap();
    let full = uploads.create(&owner, new_upload(1)).await.unwrap_err();
    assert!(matches!(full, Error::OverLimit(_)), "{full:?}");
}
