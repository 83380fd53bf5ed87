//! `finish`: a completion this caller holds, step by step: complete the multipart upload in S3,
//! find the object to verify, hash it (or hand it to the verifier function), record the verdict.
//! An upstream fault releases the lease, so the next caller resumes at once. Every write is
//! conditional on this caller's lease token: a holder that was taken over writes nothing.

use std::time::{Duration, Instant};

use super::lease::{Held, lost};
use super::{Budget, Uploads, secs};
use crate::domain::{
    Chained, Change, ListedPart, ObjectKey, PartPlan, Saved, Sha256, Status, UploadRecord,
    timestamp_now,
};
use crate::error::{Error, chain};
use crate::hash::{self, Hashed, Progress, VerifyError};
use crate::ports::{ObjectInfo, PortError};

pub(super) const CHANGED: &str = "the object changed during verification";

/// The object a completion verifies.
enum Target {
    /// Its size and ETag, and the progress to resume from.
    Ready(ObjectInfo, Option<Progress>),
    /// It cannot verify: missing, the wrong size, or not the object a paused run started on.
    Unverifiable {
        object: Option<ObjectInfo>,
        why: String,
    },
}

impl Uploads {
    /// Runs a completion this caller holds (status `completing`): completes the multipart upload
    /// (`parts` is `None` when S3 already did), then verifies the object and records the verdict.
    pub(super) async fn finish(
        &self,
        record: UploadRecord,
        parts: Option<Vec<ListedPart>>,
        budget: Budget,
    ) -> Result<UploadRecord, Error> {
        // A verdict decided by a holder that died before carrying it out.
        if record.error().is_some() {
            return self.carry_out_failure(record).await;
        }
        let plan = self.planned(&record).await?;
        if let Some(parts) = parts {
            self.complete_in_s3(&record, &parts).await?;
        }
        if !budget.hashes(plan.size()) {
            // The verifier function takes it: started here, and by S3's completion event.
            let handed = self.hand_to_verifier(&record, None).await?;
            self.start_verifier(&handed).await;
            return Ok(handed);
        }
        let (info, resume) = match self.object_to_verify(&record, plan).await? {
            Target::Ready(info, resume) => (info, resume),
            Target::Unverifiable { object, why } => {
                let nothing = Chained::default();
                return self.fail(record, None, object.as_ref(), why, nothing).await;
            }
        };
        // A request pauses at its deadline and hands over to the verifier; with no verifier to
        // continue (a local server started without VERIFIER_QUEUE_URL) a pause would strand the
        // session, so it hashes to the end.
        let deadline = match (&self.verifier, budget.starts_verifier) {
            (None, true) => None,
            _ => budget.deadline,
        };
        if let Some(segs) = self.fans_out(&record, &plan, resume.as_ref(), budget) {
            return self.fan_out(record, &info, &segs, budget).await;
        }
        let (hashed, chained) = self
            .hash_chained(&record, &info, &plan, resume, deadline)
            .await;
        let digest = match hashed {
            Ok(Hashed::Done(digest)) => digest,
            Ok(Hashed::Paused(progress)) => {
                tracing::info!(
                    hashed = progress.hashed,
                    size = info.size,
                    "deadline reached; saving progress"
                );
                let progress = self.seal_progress(&record, &info, progress).await;
                let saved = Saved {
                    etag: info.etag,
                    version_id: info.version_id,
                    progress,
                };
                let handed = self.hand_to_verifier(&record, Some(saved)).await?;
                // A verifier run schedules its own continuation; a request starts the verifier.
                if budget.starts_verifier {
                    self.start_verifier(&handed).await;
                }
                return Ok(handed);
            }
            Err(VerifyError::Read(PortError::PreconditionFailed)) => {
                let nothing = Chained::default();
                return self
                    .fail(record, None, Some(&info), CHANGED.into(), nothing)
                    .await;
            }
            // The pinned version went mid-read: if another holder took over and purged it,
            // `fail` finds out (its write is refused) and answers that holder's verdict.
            Err(VerifyError::Read(PortError::NotFound)) => {
                let why = "the object version being verified no longer exists";
                let nothing = Chained::default();
                return self
                    .fail(record, None, Some(&info), why.into(), nothing)
                    .await;
            }
            Err(e) => {
                let err = match e {
                    VerifyError::Read(p) => p.into(),
                    other => Error::Internal(Box::new(other)),
                };
                self.release(&record, &err).await;
                return Err(err);
            }
        };
        self.record_verdict(record, digest, info, chained).await
    }

    /// The object's version, size and ETag, and where hashing resumes: a resumed verification
    /// continues on the very version it started on.
    async fn object_to_verify(
        &self,
        record: &UploadRecord,
        plan: PartPlan,
    ) -> Result<Target, Error> {
        let unverifiable = |object, why: &str| Target::Unverifiable {
            object,
            why: why.to_owned(),
        };
        let saved = record.saved_progress();
        // A run resumed from saved progress, or a fan-out's take-over, stays on the version it
        // started on.
        let fanned = record.fanned().is_some();
        let pinned = (saved.is_some() || fanned)
            .then_some(())
            .and(record.version_id());
        let info = match self.objects.head(record.key.as_str(), pinned).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                let why = "the multipart upload no longer exists (aborted or expired)";
                return Ok(unverifiable(None, why));
            }
            Err(e) => {
                self.release(record, &e).await;
                return Err(e.into());
            }
        };
        if info.size != plan.size() {
            let why = format!(
                "the object is {} bytes; {} were declared",
                info.size,
                plan.size()
            );
            return Ok(unverifiable(Some(info), &why));
        }
        Ok(match (saved, &record.etag()) {
            (Some(progress), Some(etag)) if *etag == info.etag => {
                let resume = self.unsealed(record, &info, progress).await?;
                Target::Ready(info, resume)
            }
            (Some(_), _) => unverifiable(Some(info), CHANGED),
            (None, Some(etag)) if fanned && *etag != info.etag => unverifiable(Some(info), CHANGED),
            (None, _) => Target::Ready(info, None),
        })
    }

    /// The plan of a session being completed: measured or declared before it was claimed.
    pub(super) async fn planned(&self, record: &UploadRecord) -> Result<PartPlan, Error> {
        if let Some(plan) = record.plan {
            return Ok(plan);
        }
        let bug = Error::Internal("a session was claimed without a part plan".into());
        self.release(record, &bug).await;
        Err(bug)
    }

    /// Streams the object through SHA-256 from `resume` (or the start). Saved progress that
    /// cannot be continued from is dropped and the object hashed afresh.
    pub(super) async fn hash(
        &self,
        key: &ObjectKey,
        info: &ObjectInfo,
        resume: Option<Progress>,
        deadline: Option<Instant>,
    ) -> Result<Hashed, VerifyError> {
        let from = resume.as_ref().map_or(0, |p| p.hashed);
        let span = tracing::info_span!("verify", size = info.size, from);
        let started = Instant::now();
        let run = |resume: Option<Progress>| {
            let span = span.clone();
            async move {
                tracing::Instrument::instrument(
                    hash::sha256_object(
                        self.objects.as_ref(),
                        key.as_str(),
                        info,
                        self.verify,
                        resume.as_ref(),
                        deadline,
                    ),
                    span,
                )
                .await
            }
        };
        let hashed = match run(resume).await {
            Err(e @ VerifyError::CorruptProgress(_)) => {
                tracing::warn!(error = %chain(&e), "saved progress unusable; hashing from the start");
                run(None).await
            }
            other => other,
        }?;
        if let Hashed::Done(_) = hashed {
            let elapsed = started.elapsed().as_secs_f64();
            tracing::info!(
                size = info.size,
                seconds = elapsed,
                mib_per_s = info.size.saturating_sub(from) as f64 / 1_048_576.0 / elapsed.max(1e-9),
                "verified digest"
            );
        }
        Ok(hashed)
    }

    /// `verified` when the digest is the declared one (or none was declared), else `failed`.
    pub(super) async fn record_verdict(
        &self,
        record: UploadRecord,
        digest: Sha256,
        info: ObjectInfo,
        chained: Chained,
    ) -> Result<UploadRecord, Error> {
        if let Some(expected) = record.expected_sha256.filter(|e| *e != digest) {
            let why = match chained.mismatch_part {
                Some(part) => format!(
                    "sha256 mismatch: declared {expected}, computed {digest}; part {part} is the first whose bytes do not carry the declared chain"
                ),
                None => format!("sha256 mismatch: declared {expected}, computed {digest}"),
            };
            return self
                .fail(record, Some(digest), Some(&info), why, chained)
                .await;
        }
        let now = timestamp_now();
        let receipt = match self.sign_verdict(&record, digest, &info, &now).await {
            Ok(receipt) => receipt,
            Err(e) => {
                let err = Error::from(e);
                self.release(&record, &err).await;
                return Err(err);
            }
        };
        let verified = Change::Verified {
            sha256: digest,
            etag: info.etag,
            version_id: info.version_id.clone(),
            verified_at: now.clone(),
            bytes: info.size,
            chained: Chained {
                mismatch_part: None,
                ..chained
            },
            receipt,
        };
        let written = self.try_write_held(&record, verified, &now).await;
        let verified = match self.or_release(&record, written).await? {
            Held::Written(verified) => verified,
            // Taken over: what stays under the key is the new holder's to decide.
            Held::Lost(current) => return lost(current),
        };
        // Whatever else arrived under the key meanwhile (a form posted again, say) goes: only
        // the verified version stays (later arrivals go when S3 reports them).
        if let Some(keep) = info.version_id.as_deref() {
            self.keep_only(verified.key.as_str(), keep).await;
        }
        Ok(verified)
    }

    /// Deletes every version under `key` but `keep`, retrying a failed attempt: a version left
    /// behind would stay the current object under a verified key.
    async fn keep_only(&self, key: &str, keep: &str) {
        for attempt in 1..=3u32 {
            match self.objects.purge(key, Some(keep)).await {
                Ok(0) => return,
                Ok(n) => {
                    tracing::warn!(
                        versions = n,
                        "deleted objects written beside the verified one"
                    );
                    return;
                }
                Err(e) if attempt == 3 => {
                    tracing::error!(error = %chain(&e), "could not delete objects written beside the verified one");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
    }

    /// Starts the verifier on a session handed to it; S3's event remains the fallback.
    async fn start_verifier(&self, handed: &UploadRecord) {
        let Some(verifier) = &self.verifier else {
            return;
        };
        if handed.status() != Status::Verifying {
            return;
        }
        if let Err(e) = verifier.schedule(handed.upload_id).await {
            tracing::warn!(error = %chain(&e), "could not start the verifier; the sweep will re-drive it");
        }
    }

    /// `completing` → `verifying`, lease released: the verifier function takes it from here
    /// (S3's completion event, or its own continuation event).
    pub(super) async fn hand_to_verifier(
        &self,
        record: &UploadRecord,
        saved: Option<Saved>,
    ) -> Result<UploadRecord, Error> {
        // Until a lease from now the continuation (or S3's event) is expected to have claimed it;
        // the sweep re-sends it only after that, never while it is merely queued.
        let resume_by = self.clock.now() + secs(self.limits.completion_lease);
        let handed = Change::HandOver { saved, resume_by };
        self.write_held(record, handed, &timestamp_now()).await
    }

    /// Records a failed verification: the verdict first (under the lease), then the object is
    /// deleted, then the record says `failed`, so that no unverified bytes stay under the key
    /// once it does, and a holder dying in between leaves the verdict to be carried out.
    pub(super) async fn fail(
        &self,
        record: UploadRecord,
        sha256: Option<Sha256>,
        object: Option<&ObjectInfo>,
        why: String,
        chained: Chained,
    ) -> Result<UploadRecord, Error> {
        let failing = Change::Failing {
            sha256,
            etag: object.map(|o| o.etag.clone()),
            version_id: object.and_then(|o| o.version_id.clone()),
            error: why,
            chained,
        };
        let written = self
            .try_write_held(&record, failing, &timestamp_now())
            .await;
        match self.or_release(&record, written).await? {
            Held::Written(decided) => self.carry_out_failure(decided).await,
            // Taken over: the verdict is the new holder's to decide; nothing is deleted.
            Held::Lost(current) => lost(current),
        }
    }

    /// Deletes every version under the key of a session whose verdict is `failed`, then
    /// records it.
    async fn carry_out_failure(&self, record: UploadRecord) -> Result<UploadRecord, Error> {
        if let Err(e) = self.objects.purge(record.key.as_str(), None).await {
            self.release(&record, &e).await;
            return Err(e.into());
        }
        // The verdict the `Failing` write decided (a record without one is failed as "failed").
        let (error, sha256) = record.failing().map_or_else(
            || ("verification failed".to_owned(), None),
            |f| (f.error.clone(), f.sha256),
        );
        let failed = self
            .write_held(&record, Change::Failed { error, sha256 }, &timestamp_now())
            .await?;
        if failed.status() != Status::Failed {
            // Taken over meanwhile: the new holder carries the verdict out (`complete` waits).
            return Ok(failed);
        }
        Err(Error::VerificationFailed(Box::new(failed)))
    }
}
