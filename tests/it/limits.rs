//! Per-owner limits on DynamoDB's own expressions: the owner's reservations item, its
//! conditions and its give-backs. (Racing creates are the state-machine tests' to show: moto
//! does not serialize concurrent updates of one item as DynamoDB does.)

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
async fn an_owners_limits_hold_on_dynamodb() {
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
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(uploads.create(&owner, new_upload(1000)).await.unwrap());
    }
    let fourth = uploads.create(&owner, new_upload(1000)).await.unwrap_err();
    assert!(
        matches!(fourth, Error::OverLimit(OwnerLimit::OpenSessions(3))),
        "{fourth:?}"
    );
    assert!(
        uploads
            .create("someone-else", new_upload(1000))
            .await
            .is_ok(),
        "per owner"
    );
    // Aborting one gives its place back; bytes are limited too (2,000 held).
    uploads
        .abort(&owner, created[0].record.upload_id)
        .await
        .unwrap();
    let too_big = uploads.create(&owner, new_upload(8_001)).await.unwrap_err();
    assert!(
        matches!(too_big, Error::OverLimit(OwnerLimit::PendingBytes(10_000))),
        "{too_big:?}"
    );
    uploads.create(&owner, new_upload(8_000)).await.unwrap();
    let full = uploads.create(&owner, new_upload(1)).await.unwrap_err();
    assert!(matches!(full, Error::OverLimit(_)), "{full:?}");
}
