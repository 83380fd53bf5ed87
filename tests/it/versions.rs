//! The S3 adapter's version handling against the emulator's versioned bucket.

use std::time::Duration;

use crate::helpers::*;
use vu_aws::S3Objects;
use vu_core::domain::UploadId;
use vu_core::ports::ObjectStore;

async fn put(key: &str, body: &[u8]) -> String {
    let out = s3_client()
        .await
        .put_object()
        .bucket(bucket())
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
    out.version_id().unwrap().to_owned()
}

async fn versions(key: &str) -> Vec<String> {
    let out = s3_client()
        .await
        .list_object_versions()
        .bucket(bucket())
        .prefix(key)
        .send()
        .await
        .unwrap();
    let versions = out.versions().iter().map(|v| (v.key(), v.version_id()));
    let markers = out
        .delete_markers()
        .iter()
        .map(|m| (m.key(), m.version_id()));
    let mut ids: Vec<String> = versions
        .chain(markers)
        .filter(|(k, _)| *k == Some(key))
        .filter_map(|(_, v)| v.map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn purge_leaves_only_the_kept_version_and_head_reads_any_version() {
    let store = S3Objects::new(&sdk().await, bucket(), Duration::from_secs(5)).unwrap();
    let key = format!("uploads/{}/a.bin", UploadId::generate());
    // A sibling key sharing the prefix is not touched.
    let sibling = format!("{key}.other");
    put(&sibling, b"sibling").await;
    let first = put(&key, b"first").await;
    let second = put(&key, b"second version").await;
    store.delete(&key, None).await.unwrap();
    put(&key, b"third").await;

    let head = store.head(&key, Some(&second)).await.unwrap().unwrap();
    assert_eq!(
        (head.size, head.version_id.as_deref()),
        (14, Some(&*second))
    );
    assert_eq!(store.head(&key, None).await.unwrap().unwrap().size, 5);

    assert_eq!(
        store.purge(&key, Some(&second)).await.unwrap(),
        3,
        "first, a delete marker, third"
    );
    assert_eq!(versions(&key).await, vec![second.clone()]);
    assert_eq!(
        stored_sha256(&key, None).await,
        Some(sha256_hex(b"second version"))
    );
    assert_ne!(first, second);

    assert_eq!(store.purge(&key, None).await.unwrap(), 1);
    assert!(versions(&key).await.is_empty());
    assert!(store.head(&key, None).await.unwrap().is_none());
    assert_eq!(
        stored_sha256(&sibling, None).await,
        Some(sha256_hex(b"sibling"))
    );
}

/// Every version the adapter deletes is tagged first with the tag the bucket's lifecycle expires
/// by (template.yaml), so a delete that is lost still ends a day later; nothing else is tagged.
#[tokio::test]
async fn a_version_is_tagged_for_the_lifecycle_on_moto() {
    let store = S3Objects::new(&sdk().await, bucket(), Duration::from_secs(5)).unwrap();
    let key = format!("uploads/{}/a.bin", UploadId::generate());
    let kept = put(&key, b"verified").await;
    let doomed = put(&key, b"replayed").await;
    store.mark_for_removal(&key, Some(&doomed)).await.unwrap();
    let tags = |version: String| {
        let key = key.clone();
        async move {
            s3_client()
                .await
                .get_object_tagging()
                .bucket(bucket())
                .key(key)
                .version_id(version)
                .send()
                .await
                .unwrap()
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect::<Vec<_>>()
        }
    };
    let (name, value) = vu_aws::REMOVAL_TAG;
    assert_eq!(tags(doomed).await, [(name.to_owned(), value.to_owned())]);
    assert!(
        tags(kept.clone()).await.is_empty(),
        "the kept version is never tagged"
    );
    // A purge tags what it deletes (gone here, as the delete worked) and never the one it keeps.
    assert_eq!(store.purge(&key, Some(&kept)).await.unwrap(), 1);
    assert!(tags(kept).await.is_empty());
}
