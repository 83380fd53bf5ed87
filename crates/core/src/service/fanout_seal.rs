//! The seals on a fan-out's segment ends (`receipt::SealedEnd`): the worker that hashed a
//! segment seals its end before recording it, and the ends are trusted, to send only the
//! missing segments or to walk to the verdict, only with a seal that checks against the
//! current receipt key. An end without one counts as not found: its segment is hashed again
//! (delivered again by the take-over, or re-sent by the worker that finds the set complete).
//! A service that issues no receipts trusts the ends as recorded.

use super::Uploads;
use crate::domain::{SegmentEnd, UploadRecord};
use crate::error::Error;
use crate::ports::ObjectInfo;
use crate::receipt::SealedEnd;
use crate::segments::Segment;

impl Uploads {
    /// `end`, what segment `index` of `record` gave on `info`, sealed by this process (which
    /// hashed those bytes) when this service issues receipts. A signer that fails is an
    /// upstream fault: nothing is recorded, the message is delivered again.
    pub(super) async fn sealed_end(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        index: u16,
        segment: &Segment,
        end: [u8; 32],
    ) -> Result<SegmentEnd, Error> {
        let Some(receipts) = &self.receipts else {
            return Ok(SegmentEnd { end, seal: None });
        };
        let sealed = SealedEnd {
            record,
            etag: &info.etag,
            version_id: info.version_id.as_deref(),
            index,
            segment,
            end: &end,
        };
        let seal = receipts.seal_end(&sealed).await?;
        Ok(SegmentEnd {
            end,
            seal: Some(seal),
        })
    }

    /// Each segment's end as recorded on `record` and trusted: `None` where none is recorded,
    /// and, when this service issues receipts, where its seal is missing or is not this
    /// upload's, version's, segment's and end's. `Err`: the keys cannot be read (upstream).
    pub(super) async fn trusted_ends(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        segs: &[Segment],
    ) -> Result<Vec<Option<[u8; 32]>>, Error> {
        let Some(fanned) = record.fanned() else {
            return Ok(vec![None; segs.len()]);
        };
        let mut out = Vec::with_capacity(segs.len());
        for (i, segment) in segs.iter().enumerate() {
            let index = u16::try_from(i).ok();
            let Some((index, entry)) = index.and_then(|x| Some((x, fanned.ends.entry(x)?))) else {
                out.push(None);
                continue;
            };
            let trusted = match &self.receipts {
                None => true,
                Some(receipts) => {
                    let sealed = SealedEnd {
                        record,
                        etag: &info.etag,
                        version_id: info.version_id.as_deref(),
                        index,
                        segment,
                        end: &entry.end,
                    };
                    receipts.is_sealed_end(&sealed, entry.seal.as_ref()).await?
                }
            };
            if !trusted {
                tracing::warn!(
                    index,
                    "a segment end without this process's seal: hashing the segment again"
                );
            }
            out.push(trusted.then_some(entry.end));
        }
        Ok(out)
    }
}
