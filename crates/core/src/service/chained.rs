//! A completion's hashing by segments: when the claim kept the client's chaining values
//! (`part_states`), the object is hashed from them, segment by segment and several at once
//! (`segments.rs` says why the digest is exactly the object's). A run resuming saved progress, or
//! one whose deadline passes first, hashes sequentially instead: the verdict is the same.

use std::time::Instant;

use super::Uploads;
use crate::domain::{Chained, PartPlan, UploadRecord};
use crate::hash::{Hashed, Progress, VerifyError};
use crate::ports::ObjectInfo;
use crate::segments::{ChainVerdict, Claimed, verify_by_segments};

impl Uploads {
    /// The object's digest and what it rests on: segments from the declared states on a fresh
    /// start; else (a resumed run, or the deadline passed first) one stream, which pauses and
    /// resumes across runs.
    pub(super) async fn hash_chained(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        plan: &PartPlan,
        resume: Option<Progress>,
        deadline: Option<Instant>,
    ) -> (Result<Hashed, VerifyError>, Chained) {
        let by_segments = match resume {
            None => self.by_segments(record, info, plan, deadline).await,
            Some(_) => Ok(None),
        };
        match by_segments {
            Ok(Some(v)) => {
                let chained = Chained {
                    segments: v.segments,
                    mismatch_part: v.mismatch_part,
                };
                (Ok(Hashed::Done(v.digest)), chained)
            }
            Ok(None) => (
                self.hash(&record.key, info, resume, deadline).await,
                Chained::SEQUENTIAL,
            ),
            Err(e) => (Err(e), Chained::default()),
        }
    }

    /// The verdict by segments; `None` when the record kept no states or the deadline came
    /// first (the caller then hashes sequentially).
    async fn by_segments(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
        plan: &PartPlan,
        deadline: Option<Instant>,
    ) -> Result<Option<ChainVerdict>, VerifyError> {
        if record.part_states.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let claimed = Claimed {
            plan,
            states: &record.part_states,
            expected: record.expected_sha256,
        };
        let key = record.key.as_str();
        let verdict = verify_by_segments(
            self.objects.as_ref(),
            key,
            info,
            claimed,
            self.verify,
            deadline,
        )
        .await?;
        match &verdict {
            Some(v) => tracing::info!(
                size = info.size,
                segments = v.segments,
                mismatch_part = v.mismatch_part,
                seconds = started.elapsed().as_secs_f64(),
                "verified digest by segments"
            ),
            None => tracing::info!("deadline reached hashing segments; hashing sequentially"),
        }
        Ok(verdict)
    }
}
