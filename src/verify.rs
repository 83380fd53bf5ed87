//! Streams an object back from S3 through SHA-256 in constant memory.
//!
//! Several ranged GETs are in flight at once (network-bound), while one thread outside the
//! tokio workers hashes the ranges strictly in order (CPU-bound). Memory is bounded by
//! `(concurrency + 1) × range_bytes` whatever the object's size.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use sha2::Digest as _;

use crate::config::VerifyConfig;
use crate::domain::Sha256;
use crate::ports::{ObjectStore, PortError};

/// The SHA-256 of `size` bytes of `key`, refusing (`PreconditionFailed`) to mix two objects if the
/// object's ETag stops being `etag` mid-way.
pub async fn sha256_object(
    store: &dyn ObjectStore,
    key: &str,
    size: u64,
    etag: &str,
    cfg: VerifyConfig,
) -> Result<Sha256, PortError> {
    let range = cfg.range_bytes.max(1);
    let ranges = (0..size.div_ceil(range)).map(move |i| (i * range, range.min(size - i * range)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(1);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = sha2::Sha256::new();
        let mut hashed = 0u64;
        while let Some(chunks) = rx.blocking_recv() {
            for c in chunks {
                hashed += c.len() as u64;
                h.update(&c);
            }
        }
        (Sha256::from_bytes(h.finalize().into()), hashed)
    });

    let mut fetched = stream::iter(ranges)
        .map(|(start, len)| store.get_range(key, start, len, etag))
        .buffered(cfg.concurrency.max(1));
    let fed = async {
        while let Some(chunks) = fetched.try_next().await? {
            if tx.send(chunks).await.is_err() {
                break;
            }
        }
        Ok::<_, PortError>(())
    }
    .await;
    drop(tx);
    let joined = hasher.await;
    fed?;
    let (digest, hashed) = joined.map_err(|e| PortError::Unavailable {
        service: "hasher",
        source: Box::new(e),
    })?;
    if hashed != size {
        return Err(PortError::Unavailable {
            service: "S3",
            source: format!("read {hashed} bytes of a {size}-byte object").into(),
        });
    }
    Ok(digest)
}
