//! Recording one segment's end on the fan-out's record: a conditional write on the holder's
//! lease token, the pinned ETag and exactly the ends read, so workers finishing together merge
//! (each retry follows another worker's write) and a stale holder's end is refused.

use super::{Uploads, secs};
use crate::domain::{Change, Guard, LeaseToken, SegmentEnd, Status, UploadRecord, timestamp_now};
use crate::error::Error;
use crate::ports::PortError;
use crate::segments::Segment;

impl Uploads {
    /// Records segment `index`'s end over the ends read, re-reading and merging when another
    /// worker wrote first; with whether this write completed the set of `total` ends. `None`:
    /// the lease is no longer `token`'s, or the fan-out is over or its failure decided.
    pub(super) async fn record_end(
        &self,
        mut record: UploadRecord,
        token: LeaseToken,
        index: u16,
        seg: &Segment,
        end: SegmentEnd,
        total: usize,
    ) -> Result<Option<(UploadRecord, bool)>, Error> {
        let guard = Guard {
            status: Status::Completing,
            lease_expired_by: None,
            holder: Some(token),
        };
        // Each retry follows another worker's successful write: at most one per segment.
        for _ in 0..=crate::segments::MAX_KEPT_STATES + 1 {
            let (Some(before), Some(etag)) = (record.fanned().cloned(), record.etag()) else {
                return Ok(None);
            };
            // An end recorded already is kept when this service seals none (as ever) or when it
            // is this very one; any other (unsealed, planted, or another worker's seal of the
            // same end) is replaced by this one, whose seal checks.
            if before
                .ends
                .entry(index)
                .is_some_and(|e| end.seal.is_none() || *e == end)
            {
                return Ok(Some((record, false)));
            }
            let completes = before.ends.get(index).is_none() && before.ends.len() + 1 == total;
            let mut after = before.clone();
            if before.ends.get(index).is_none() {
                after.hashed = after.hashed.saturating_add(seg.end - seg.start);
            }
            after.ends.insert_sealed(index, end);
            let done = Change::SegmentDone {
                etag: etag.to_owned(),
                version_id: record.version_id().map(str::to_owned),
                before,
                after,
                lease_until: self.clock.now() + secs(self.limits.completion_lease),
            };
            let id = record.upload_id;
            match self
                .sessions
                .transition(id, guard, done, &timestamp_now())
                .await
            {
                Ok(written) => return Ok(Some((written, completes))),
                Err(PortError::PreconditionFailed) => match self.sessions.get(id).await? {
                    Some(r) if r.lease_token() == Some(token) && r.error().is_none() => record = r,
                    _ => return Ok(None),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "a segment's end kept losing to other writes".into(),
        ))
    }
}
