//! Verification fanned out over the verifier's queue: one message per segment (the client's
//! `part_states` cut the object), so N verifier functions read N segments at once, each at one
//! function's bandwidth. The holder pins the object version and sends the messages under its
//! lease; each worker hashes its segment from the declared state before it (every read pinned to
//! that version) and records the end with a conditional write on the holder's token (a stale
//! holder's result is refused) over exactly the ends it read (none lost to a concurrent
//! worker). The worker whose write completes the set walks the chain (`segments::walk`, the one
//! walk the in-process path uses: the same verdict, bit for bit) and records the verdict under
//! the same lease. A crash in between leaves the ends on the record: the sweep's take-over
//! finds them all and writes the verdict, or sends only the missing segments.

use std::time::Instant;

use futures::FutureExt as _;
use sha2::Digest as _;
use sha2::digest::common::hazmat::SerializableState as _;

use super::finish::CHANGED;
use super::{Budget, Uploads, secs};
use crate::domain::{
    Chained, Change, LeaseToken, PartPlan, Progress, Saved, Status, UploadId, UploadRecord,
    timestamp_now,
};
use crate::error::{Error, chain};
use crate::hash::VerifyError;
use crate::ports::{ObjectInfo, PortError, SegmentMessage};
use crate::segments::{Segment, end_of, hash_span, segments, walk};

/// The largest segment sent as one message: at ~75 MB/s (one function's network) it is hashed
/// in ~11.5 minutes, inside one 15-minute invocation. A claim whose segments are larger is
/// verified sequentially, pausing and resuming across invocations.
pub const MAX_SEGMENT_BYTES: u64 = 48 << 30;

impl Uploads {
    /// The segments this run fans out, when it does: fan-out on, a queue to send them to, a
    /// verifier run (an API request hands large objects over instead), a fresh start (a
    /// paused sequential run continues as it began), more than one segment, each small enough
    /// for one invocation.
    pub(super) fn fans_out(
        &self,
        record: &UploadRecord,
        plan: &PartPlan,
        resume: Option<&Progress>,
        budget: Budget,
    ) -> Option<Vec<Segment>> {
        let queue = self.verifier.as_ref().is_some_and(|q| q.carries_segments());
        if !self.verify.fan_out || !queue || budget.starts_verifier || resume.is_some() {
            return None;
        }
        let segs = segments(plan, &record.part_states);
        let fits = segs.iter().all(|s| s.end - s.start <= MAX_SEGMENT_BYTES);
        (segs.len() > 1 && fits).then_some(segs)
    }

    /// Pins `info` and sends the segments not found yet (all of them on a fresh fan-out; only
    /// the missing ones after a take-over); with every end found, writes the verdict.
    pub(super) async fn fan_out(
        &self,
        record: UploadRecord,
        info: &ObjectInfo,
        segs: &[Segment],
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let same_object = record
            .object()
            .is_some_and(|o| o.etag == info.etag && o.version_id == info.version_id);
        let record = match record.fanned() {
            Some(_) if same_object => record,
            _ => {
                let fan_out = Change::FanOut {
                    etag: info.etag.clone(),
                    version_id: info.version_id.clone(),
                    lease_until: self.clock.now() + secs(self.limits.completion_lease),
                };
                self.write_held(&record, fan_out, &timestamp_now()).await?
            }
        };
        let (Some(_), Some(token)) = (record.fanned(), record.lease_token()) else {
            // Taken over between the write and now: the new holder goes on.
            return Ok(record);
        };
        let trusted = match self.trusted_ends(&record, info, segs).await {
            Ok(t) => t,
            Err(e) => {
                self.release(&record, &e).await;
                return Err(e);
            }
        };
        if let Some(ends) = all_found(&trusted) {
            return self.conclude(record, info, segs, &ends, budget).await;
        }
        match self.send_missing(&record, token, segs, &trusted).await {
            Ok(sent) => {
                tracing::info!(
                    segments = segs.len(),
                    sent,
                    size = info.size,
                    "verification fanned out by segments"
                );
                Ok(record)
            }
            Err(e) => {
                self.release(&record, &e).await;
                Err(e.into())
            }
        }
    }

    /// Sends the segments whose end is not found (`trusted[i]` is `None`) under `token`'s
    /// lease; how many.
    async fn send_missing(
        &self,
        record: &UploadRecord,
        token: LeaseToken,
        segs: &[Segment],
        trusted: &[Option<[u8; 32]>],
    ) -> Result<usize, PortError> {
        let messages: Vec<SegmentMessage> = segs
            .iter()
            .zip(trusted)
            .enumerate()
            .filter_map(|(i, (s, end))| {
                let index = u16::try_from(i).ok()?;
                end.is_none().then(|| SegmentMessage {
                    upload_id: record.upload_id.to_string(),
                    token: token.to_string(),
                    index,
                    start: s.start,
                    end: s.end,
                    from: s.declared_start,
                })
            })
            .collect();
        match &self.verifier {
            Some(queue) => queue
                .send_segments(&messages)
                .await
                .map(|()| messages.len()),
            None => Err(PortError::Rejected("no verifier queue".into())),
        }
    }

    /// One segment message (the `verifier` function): hashes the segment from its declared
    /// state on the pinned version and records its end under the fan-out's lease; the write
    /// that completes the set writes the verdict. A message from a holder that was taken over,
    /// or for a session no longer fanned out, is acknowledged and does nothing.
    pub async fn on_segment(
        &self,
        msg: &SegmentMessage,
        budget: Budget,
    ) -> Result<super::EventOutcome, Error> {
        use super::EventOutcome as Outcome;
        let id = UploadId::parse(&msg.upload_id)?;
        let token = LeaseToken::parse(&msg.token)?;
        let Some(record) = self.sessions.get(id).await? else {
            return Ok(Outcome::Ignored("no session with this id"));
        };
        let stale = "a segment of a fan-out whose holder was taken over, or that is over";
        if record.status() != Status::Completing || record.lease_token() != Some(token) {
            return Ok(Outcome::Ignored(stale));
        }
        if record.error().is_some() {
            // A worker found the object changed or gone: the failure is being carried out.
            return Ok(Outcome::Ignored("a fan-out whose verdict is decided"));
        }
        let (Some(_), Some(object), Some(plan)) = (record.fanned(), record.object(), record.plan)
        else {
            return Ok(Outcome::Ignored(stale));
        };
        let segs = segments(&plan, &record.part_states);
        let index = usize::from(msg.index);
        let Some(seg) = segs
            .get(index)
            .filter(|s| (s.start, s.end, s.declared_start) == (msg.start, msg.end, msg.from))
        else {
            tracing::warn!(
                index,
                "a segment message that is not one of the record's segments"
            );
            return Ok(Outcome::Ignored("not one of the session's segments"));
        };
        let info = ObjectInfo {
            size: plan.size(),
            etag: object.etag.clone(),
            version_id: object.version_id.clone(),
        };
        let found = self.trusted_ends(&record, &info, &segs).await?;
        // Whether this delivery is the one to re-send the segments whose ends are recorded but
        // not trusted (once every end is recorded): the worker whose write completed the set,
        // or a delivery again of an end recorded already (its first run may have died before
        // sending). Any other worker leaves them be, so k untrusted ends cost k messages.
        let (record, resends) = match found[index] {
            // Delivered again: recorded already; only the verdict may be left to write.
            Some(_) => (record, true),
            None => {
                let started = Instant::now();
                let key = record.key.as_str();
                let hashed = hash_span(
                    self.objects.as_ref(),
                    key,
                    &info,
                    self.verify,
                    seg.start,
                    seg.end,
                    seg.declared_start,
                    budget.deadline,
                )
                .await;
                let end = match hashed.and_then(|c| c.map(|c| end_of(seg, c)).transpose()) {
                    Ok(Some(end)) => end,
                    // Sized to fit one invocation; one that did not is delivered again.
                    Ok(None) => return Err(Error::Internal("a segment outlived its run".into())),
                    Err(e) => {
                        let verdict = self.unreadable(record, &info, e).await;
                        return super::EventOutcome::of(verdict);
                    }
                };
                tracing::info!(
                    index,
                    bytes = seg.end - seg.start,
                    seconds = started.elapsed().as_secs_f64(),
                    "segment hashed"
                );
                let end = self.sealed_end(&record, &info, msg.index, seg, end).await?;
                let total = segs.len();
                match self
                    .record_end(record, token, msg.index, seg, end, total)
                    .await?
                {
                    Some(written) => written,
                    None => return Ok(Outcome::Ignored(stale)),
                }
            }
        };
        if record.fanned().is_some_and(|f| f.ends.len() == segs.len()) {
            let trusted = self.trusted_ends(&record, &info, &segs).await?;
            if let Some(ends) = all_found(&trusted) {
                let verdict = self.conclude(record, &info, &segs, &ends, budget).await;
                return super::EventOutcome::of(verdict);
            }
            // Every end recorded, not every one sealed: those segments are hashed again.
            if resends {
                self.send_missing(&record, token, &segs, &trusted).await?;
            }
        }
        Ok(Outcome::Segments(Box::new(record)))
    }

    /// Every end is known and trusted (`ends`): walks the chain (re-hashing from the true state
    /// after a broken link, as the in-process path does) and writes the verdict under the
    /// fan-out's lease. A re-hash that meets the run's deadline hands the object over to a
    /// sequential run.
    async fn conclude(
        &self,
        record: UploadRecord,
        info: &ObjectInfo,
        segs: &[Segment],
        ends: &[[u8; 32]],
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        let key = record.key.as_str();
        let rehash = |s: &Segment, from| {
            let (objects, cfg) = (self.objects.as_ref(), self.verify);
            hash_span(
                objects,
                key,
                info,
                cfg,
                s.start,
                s.end,
                from,
                budget.deadline,
            )
            .boxed()
        };
        match walk(segs, ends, record.expected_sha256, rehash).await {
            Ok(Some(v)) => {
                tracing::info!(
                    segments = v.segments,
                    mismatch_part = v.mismatch_part,
                    "verified digest by segments fanned out"
                );
                let chained = Chained {
                    segments: v.segments,
                    mismatch_part: v.mismatch_part,
                };
                self.record_verdict(record, v.digest, info.clone(), chained)
                    .await
            }
            Ok(None) => self.hand_over_sequential(&record, info).await,
            Err(e) => self.unreadable(record, info, e).await,
        }
    }

    /// A broken chain too long to re-hash in this run: a sequential verification from byte 0
    /// (saved progress at 0, so the next run streams and pauses rather than fanning out again).
    async fn hand_over_sequential(
        &self,
        record: &UploadRecord,
        info: &ObjectInfo,
    ) -> Result<UploadRecord, Error> {
        tracing::info!(
            "a broken chain to re-hash past this run's deadline; verifying sequentially"
        );
        let saved = Saved {
            etag: info.etag.clone(),
            version_id: info.version_id.clone(),
            progress: Progress {
                hashed: 0,
                state: sha2::Sha256::new().serialize().to_vec(),
                seal: None,
            },
        };
        self.hand_to_verifier(record, Some(saved)).await
    }

    /// A read that failed: the object changed or went (a verdict, as for any verification), or
    /// an upstream fault (the message is delivered again; the lease is kept for the others).
    async fn unreadable(
        &self,
        record: UploadRecord,
        info: &ObjectInfo,
        e: VerifyError,
    ) -> Result<UploadRecord, Error> {
        let why = match &e {
            VerifyError::Read(PortError::PreconditionFailed) => CHANGED,
            VerifyError::Read(PortError::NotFound) => {
                "the object version being verified no longer exists"
            }
            _ => {
                tracing::warn!(error = %chain(&e), "a segment could not be read; delivered again");
                return Err(match e {
                    VerifyError::Read(p) => p.into(),
                    other => Error::Internal(Box::new(other)),
                });
            }
        };
        self.fail(record, None, Some(info), why.into(), Chained::default())
            .await
    }
}

/// Every end, when every one is found.
fn all_found(trusted: &[Option<[u8; 32]>]) -> Option<Vec<[u8; 32]>> {
    trusted.iter().copied().collect()
}
