//! Ranged GETs that keep their deadline: a body that stalls or breaks resumes from the byte it
//! reached, and nothing past the range end is read.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;

use super::{BODY_RESUMES, S3Objects, port_error};
use vu_core::ports::{BoxError, Pin, PortError, Upstream};

/// The bytes of `range` of the pinned object, as the chunks that arrived.
pub(super) async fn range(
    s3: &S3Objects,
    key: &str,
    range: Range<u64>,
    pin: Pin<'_>,
) -> Result<Vec<Bytes>, PortError> {
    let (start, end) = (range.start, range.end);
    let len = end - start;
    let mut chunks = Vec::new();
    let mut at = start;
    let mut resumes = 0;
    while at < end {
        let out = s3
            .client
            .get_object()
            .bucket(&s3.bucket)
            .key(key)
            .range(format!("bytes={at}-{}", end - 1))
            .if_match(format!("\"{}\"", pin.etag))
            .set_version_id(pin.version_id.map(str::to_owned))
            .send()
            .await
            .map_err(port_error)?;
        let mut body = out.body;
        let broke: Option<BoxError> = loop {
            match tokio::time::timeout(s3.stall_timeout, body.try_next()).await {
                Ok(Ok(Some(mut chunk))) => {
                    // A server that sends past the range end is not read further.
                    let room = usize::try_from(end - at).unwrap_or(usize::MAX);
                    chunk.truncate(room);
                    at += chunk.len() as u64;
                    chunks.push(chunk);
                    if at >= end {
                        break None;
                    }
                }
                Ok(Ok(None)) => break None,
                Ok(Err(e)) => break Some(Box::new(e)),
                Err(_) => break Some(format!("no data for {:?}", s3.stall_timeout).into()),
            }
        };
        if at >= end {
            break;
        }
        // A body that breaks or ends early resumes from the byte it reached; the bytes
        // already received stay, so the digest is the same as a clean read.
        resumes += 1;
        if resumes > BODY_RESUMES {
            let source = broke
                .unwrap_or_else(|| format!("ranged GET ended {} bytes early", end - at).into());
            return Err(PortError::unavailable(Upstream::S3, source));
        }
        tracing::warn!(error = ?broke, at, resumes, "ranged GET body broke; resuming");
        tokio::time::sleep(Duration::from_millis(50 << resumes)).await;
    }
    if at != end {
        return Err(PortError::unavailable(
            Upstream::S3,
            format!("ranged GET returned {} bytes, expected {len}", at - start),
        ));
    }
    Ok(chunks)
}
