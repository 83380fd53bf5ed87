//! The upload use cases. Each state change is a conditional write, so concurrent callers
//! (two `complete`s, a `complete` racing a `DELETE`) cannot both act or overwrite each other.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Limits, VerifyConfig};
use crate::domain::{
    ContentType, Filename, Invalid, Kind, Metadata, PartNumber, PartPlan, Sha256, Status, UploadId,
    UploadRecord, timestamp_now,
};
use crate::error::{Error, chain};
use crate::ports::{
    Change, Guard, ListedPart, NewMultipart, ObjectStore, Page, PageKey, PartToSign, PortError,
    PostForm, SessionStore, SignedPart,
};
use crate::verify;

/// How long the verifier waits for the API to hand a large object over before asking Lambda to
/// deliver the event again.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// Most URLs signed in one response: 10,000 URLs carrying Lambda session tokens would pass
/// Lambda's 6 MB response limit.
pub const MAX_URLS_PER_CALL: usize = 100;

/// A validated `POST /uploads`.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub filename: Filename,
    pub size: u64,
    pub content_type: ContentType,
    pub sha256: Option<Sha256>,
    pub part_size: Option<u64>,
    pub metadata: Metadata,
    pub part_checksums: bool,
}

/// An upload whose client declares no size (Uppy's Companion protocol): S3's parts, or the
/// posted object, tell the size at completion.
#[derive(Debug, Clone)]
pub struct OpenUpload {
    pub filename: Filename,
    pub content_type: ContentType,
    pub sha256: Option<Sha256>,
    pub metadata: Metadata,
}

/// Most a form POST may carry: S3's limit for one PUT or POST.
const S3_MAX_POST_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug)]
pub struct Created {
    pub record: UploadRecord,
    pub parts: Vec<SignedPart>,
}

/// Who runs a completion: the API verifies inline up to `verify_inline_max_bytes`; the verifier
/// function verifies whatever it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Api,
    /// Pauses at `deadline`, saving its progress on the record.
    Verifier {
        deadline: Option<Instant>,
    },
}

/// What the verifier did with an `ObjectCreated` event or a continuation.
#[derive(Debug)]
pub enum EventOutcome {
    /// The session's final record (`verified` or `failed`).
    Done(Box<UploadRecord>),
    /// The deadline came first; the record (`verifying`) holds the progress to continue from.
    Paused(Box<UploadRecord>),
    Ignored(&'static str),
}

/// A part the client says it uploaded, with the ETag S3 gave it.
#[derive(Debug, Clone)]
pub struct ClaimedPart {
    pub part_number: PartNumber,
    pub etag: String,
}

pub struct Uploads {
    objects: Arc<dyn ObjectStore>,
    sessions: Arc<dyn SessionStore>,
    limits: Limits,
    verify: VerifyConfig,
}

fn epoch_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Uploads {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        sessions: Arc<dyn SessionStore>,
        limits: Limits,
        verify: VerifyConfig,
    ) -> Self {
        Self {
            objects,
            sessions,
            limits,
            verify,
        }
    }

    pub async fn create(&self, owner: &str, req: NewUpload) -> Result<Created, Error> {
        if req.size > self.limits.max_object_bytes {
            return Err(Error::TooLarge {
                size: req.size,
                max: self.limits.max_object_bytes,
            });
        }
        let plan = PartPlan::new(req.size, req.part_size, self.limits.default_part_size)?;
        let open = OpenUpload {
            filename: req.filename,
            content_type: req.content_type,
            sha256: req.sha256,
            metadata: req.metadata,
        };
        let record = self
            .start_multipart(owner, open, Some(plan), req.part_checksums)
            .await?;
        // With part checksums the client must give each part's digest first, so no URLs yet.
        let parts = if record.part_checksums {
            Vec::new()
        } else {
            let first: Vec<_> = plan
                .parts()
                .take(MAX_URLS_PER_CALL)
                .map(|n| (n, None))
                .collect();
            self.sign(&record, &first).await?
        };
        Ok(Created { record, parts })
    }

    /// A multipart session whose size S3's parts will tell at completion.
    pub async fn create_open(&self, owner: &str, req: OpenUpload) -> Result<UploadRecord, Error> {
        self.start_multipart(owner, req, None, false).await
    }

    /// A session for one browser form POST, and the signed form. Verification starts when S3
    /// reports the object (`on_object_created`) or when its owner next reads the record.
    pub async fn create_post(
        &self,
        owner: &str,
        req: OpenUpload,
    ) -> Result<(UploadRecord, PostForm), Error> {
        let record = self.new_record(owner, req, Kind::Post, None, false);
        let max = self.limits.max_object_bytes.min(S3_MAX_POST_BYTES);
        let form = self
            .objects
            .presign_post(
                &record.key,
                &record.content_type,
                max,
                self.limits.url_expiry,
            )
            .await?;
        self.sessions.create(&record).await?;
        Ok((record, form))
    }

    async fn start_multipart(
        &self,
        owner: &str,
        req: OpenUpload,
        plan: Option<PartPlan>,
        part_checksums: bool,
    ) -> Result<UploadRecord, Error> {
        let mut record = self.new_record(owner, req, Kind::Multipart, plan, part_checksums);
        record.s3_upload_id = self
            .objects
            .create_multipart(&NewMultipart {
                key: &record.key,
                content_type: &record.content_type,
                metadata: &record.metadata,
                part_checksums,
            })
            .await?;
        if let Err(e) = self.sessions.create(&record).await {
            // Without a record nobody could complete or abort it: take the multipart upload back.
            if let Err(abort) = self
                .objects
                .abort_multipart(&record.key, &record.s3_upload_id)
                .await
            {
                tracing::warn!(error = %chain(&abort), "could not abort an orphaned multipart upload");
            }
            return Err(e.into());
        }
        Ok(record)
    }

    fn new_record(
        &self,
        owner: &str,
        req: OpenUpload,
        kind: Kind,
        plan: Option<PartPlan>,
        part_checksums: bool,
    ) -> UploadRecord {
        let upload_id = UploadId::generate();
        let created = timestamp_now();
        UploadRecord {
            upload_id,
            owner: owner.to_owned(),
            status: Status::Pending,
            bucket: self.objects.bucket().to_owned(),
            key: format!("uploads/{upload_id}/{}", req.filename.as_str()),
            filename: req.filename,
            content_type: req.content_type,
            kind,
            open_size: plan.is_none(),
            size: plan.map_or(0, |p| p.size()),
            part_size: plan.map_or(0, |p| p.part_size()),
            part_count: plan.map_or(0, |p| p.part_count()),
            part_checksums,
            // Set once S3 has created the multipart upload; posted objects have none.
            s3_upload_id: String::new(),
            expected_sha256: req.sha256,
            sha256: None,
            etag: None,
            metadata: req.metadata,
            created_at: created.clone(),
            updated_at: created,
            verified_at: None,
            error: None,
            expires_at: Some(epoch_now() + secs(self.limits.session_ttl)),
            lease_until: 0,
            verified_bytes: 0,
            hash_state: None,
        }
    }

    /// How long signed URLs and forms stay valid.
    pub fn url_expiry(&self) -> Duration {
        self.limits.url_expiry
    }

    /// The caller's uploads, newest first. `status` filters after DynamoDB reads `limit` items,
    /// so a page may hold fewer than `limit` and still have a next page.
    pub async fn list(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: u32,
        after: Option<PageKey>,
    ) -> Result<Page, Error> {
        Ok(self
            .sessions
            .list_by_owner(owner, status, limit, after.as_ref())
            .await?)
    }

    /// The record, if `owner` owns it; anyone else's id answers exactly like an unknown one.
    pub async fn get(&self, owner: &str, id: UploadId) -> Result<UploadRecord, Error> {
        match self.sessions.get(id).await? {
            Some(r) if r.owner == owner => Ok(r),
            _ => Err(Error::NotFound),
        }
    }

    /// The record, after starting the verification of a posted object that S3 already holds but
    /// whose `ObjectCreated:Post` event has not arrived (or never will, as on a local stack).
    pub async fn get_settled(&self, owner: &str, id: UploadId) -> Result<UploadRecord, Error> {
        let record = self.get(owner, id).await?;
        if record.kind != Kind::Post || Self::require_open(&record, "verify").is_err() {
            return Ok(record);
        }
        match self.start_posted(record, By::Api).await {
            Ok(Some(r)) => Ok(r),
            Err(Error::VerificationFailed(r)) => Ok(*r),
            Ok(None) => self.get(owner, id).await,
            Err(e) => Err(e),
        }
    }

    /// Takes a pending posted session whose object has arrived, sizes it from the object and
    /// verifies it. `None`: no object yet, or another caller took it.
    async fn start_posted(
        &self,
        record: UploadRecord,
        by: By,
    ) -> Result<Option<UploadRecord>, Error> {
        let Some(info) = self.objects.head(&record.key).await? else {
            return Ok(None);
        };
        // Too large to verify inside an API call: S3's event hands it to the verifier function.
        if by == By::Api && info.size > self.limits.verify_inline_max_bytes {
            return Ok(None);
        }
        let Ok(plan) = PartNumber::new(1)
            .map_err(|e| e.reason)
            .and_then(|one| PartPlan::measured(&[(one, info.size)]))
        else {
            return Ok(None);
        };
        let change = Change {
            lease_until: Some(epoch_now() + secs(self.limits.completion_lease)),
            sized: Some(plan),
            ..Change::default()
        };
        let taken = self
            .sessions
            .transition(
                record.upload_id,
                Guard::status(Status::Pending),
                Status::Completing,
                change,
                &timestamp_now(),
            )
            .await;
        match taken {
            Ok(r) => self.finish(r, None, by).await.map(Some),
            Err(PortError::PreconditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn require_open(record: &UploadRecord, action: &str) -> Result<(), Error> {
        if record.status != Status::Pending {
            return Err(Error::Conflict(format!(
                "cannot {action}: the upload is {}",
                record.status.as_str()
            )));
        }
        if record.expires_at.is_some_and(|t| t <= epoch_now()) {
            return Err(Error::Conflict(format!(
                "cannot {action}: the upload session has expired"
            )));
        }
        Ok(())
    }

    pub async fn sign_parts(
        &self,
        owner: &str,
        id: UploadId,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        self.sign_open(&self.get(owner, id).await?, parts).await
    }

    /// `sign_parts` for a record the caller has already read (and owns).
    pub async fn sign_open(
        &self,
        record: &UploadRecord,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        Self::require_open(record, "sign parts")?;
        self.sign(record, parts).await
    }

    async fn sign(
        &self,
        record: &UploadRecord,
        parts: &[(PartNumber, Option<Sha256>)],
    ) -> Result<Vec<SignedPart>, Error> {
        if record.kind == Kind::Post {
            return Err(Error::Conflict(
                "this upload is a form POST; it has no parts".into(),
            ));
        }
        let plan = (!record.open_size).then(|| record.plan());
        let mut to_sign = Vec::with_capacity(parts.len());
        for &(n, sha256) in parts {
            if let Some(plan) = plan.filter(|p| !p.contains(n)) {
                return Err(Invalid::new(
                    "part_numbers",
                    format!("part {n} is outside 1..={}", plan.part_count()),
                )
                .into());
            }
            match (record.part_checksums, sha256) {
                (true, None) => {
                    return Err(Invalid::new(
                        format!("sha256.{n}"),
                        "this upload was created with part_checksums: every part needs its SHA-256",
                    )
                    .into());
                }
                (false, Some(_)) => {
                    return Err(Invalid::new(
                        format!("sha256.{n}"),
                        "this upload was created without part_checksums; S3 would refuse a part checksum",
                    )
                    .into());
                }
                _ => {}
            }
            to_sign.push(PartToSign {
                part_number: n,
                len: plan.map(|p| p.part_len(n)),
                sha256,
            });
        }
        Ok(self
            .objects
            .presign_parts(
                &record.key,
                &record.s3_upload_id,
                &to_sign,
                self.limits.url_expiry,
            )
            .await?)
    }

    /// The parts S3 holds, for a client resuming an upload.
    pub async fn list_parts(&self, owner: &str, id: UploadId) -> Result<Vec<ListedPart>, Error> {
        self.list_open(&self.get(owner, id).await?).await
    }

    /// `list_parts` for a record the caller has already read (and owns).
    pub async fn list_open(&self, record: &UploadRecord) -> Result<Vec<ListedPart>, Error> {
        Self::require_open(record, "list parts")?;
        if record.kind == Kind::Post {
            return Err(Error::Conflict(
                "this upload is a form POST; it has no parts".into(),
            ));
        }
        match self
            .objects
            .list_parts(&record.key, &record.s3_upload_id)
            .await
        {
            Err(PortError::NotFound) => Err(gone()),
            other => Ok(other?),
        }
    }

    pub async fn abort(&self, owner: &str, id: UploadId) -> Result<(), Error> {
        let record = self.get(owner, id).await?;
        match record.status {
            Status::Pending => {
                // Claim the record first, so a racing `complete` cannot start on it.
                let change = Change {
                    clear_expiry: true,
                    ..Change::default()
                };
                match self
                    .sessions
                    .transition(
                        id,
                        Guard::status(Status::Pending),
                        Status::Aborted,
                        change,
                        &timestamp_now(),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(PortError::PreconditionFailed) => {
                        return Box::pin(self.abort(owner, id)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // Aborting again retries the S3 side, which may have failed the first time.
            Status::Aborted => {}
            other => {
                return Err(Error::Conflict(format!(
                    "cannot abort: the upload is {}",
                    other.as_str()
                )));
            }
        }
        // A posted object that arrived before the abort is unverified: it goes too.
        let s3_side = match record.kind {
            Kind::Multipart => {
                self.objects
                    .abort_multipart(&record.key, &record.s3_upload_id)
                    .await
            }
            Kind::Post => self.objects.delete(&record.key).await,
        };
        match s3_side {
            Ok(()) | Err(PortError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Completes the multipart upload, verifies the object's SHA-256 and records the result.
    /// Idempotent: a finished upload answers its recorded result again.
    /// `declared` is the whole object's SHA-256 when the client learnt it only while sending
    /// the parts (a browser hashing as it reads); it must agree with one declared at creation.
    pub async fn complete(
        &self,
        owner: &str,
        id: UploadId,
        claimed: Option<&[ClaimedPart]>,
        declared: Option<Sha256>,
    ) -> Result<UploadRecord, Error> {
        let mut record = self.get(owner, id).await?;
        let newly_declared = match (record.expected_sha256, declared) {
            (Some(before), Some(now)) if before != now => {
                return Err(Invalid::new(
                    "sha256",
                    format!(
                        "differs from the SHA-256 declared when the upload was created ({before})"
                    ),
                )
                .into());
            }
            (None, Some(now)) => Some(now),
            _ => None,
        };
        if record.status != Status::Pending {
            return self.settle(owner, record).await;
        }
        Self::require_open(&record, "complete")?;
        if record.kind == Kind::Post {
            return match self.start_posted(record, By::Api).await? {
                Some(r) => Ok(r),
                None => Err(Error::Conflict(format!(
                    "the object has not arrived in S3 yet (POST the form first), or is being verified: poll GET /uploads/{id}"
                ))),
            };
        }
        let listed = match self
            .objects
            .list_parts(&record.key, &record.s3_upload_id)
            .await
        {
            Err(PortError::NotFound) => return Err(gone()),
            other => other?,
        };
        let sized = if record.open_size {
            let plan = measure(&listed)?;
            if plan.size() > self.limits.max_object_bytes {
                return Err(Error::TooLarge {
                    size: plan.size(),
                    max: self.limits.max_object_bytes,
                });
            }
            record.size = plan.size();
            record.part_size = plan.part_size();
            record.part_count = plan.part_count();
            Some(plan)
        } else {
            None
        };
        let parts = check_parts(&record, &listed, claimed)?;
        let now = epoch_now();
        let taken = self
            .sessions
            .transition(
                id,
                Guard::status(Status::Pending),
                Status::Completing,
                Change {
                    lease_until: Some(now + secs(self.limits.completion_lease)),
                    sized,
                    expected_sha256: newly_declared,
                    ..Change::default()
                },
                &timestamp_now(),
            )
            .await;
        match taken {
            Ok(record) => self.finish(record, Some(parts), By::Api).await,
            // Someone else moved it first (another `complete`, or a `DELETE`).
            Err(PortError::PreconditionFailed) => {
                let record = self.get(owner, id).await?;
                self.settle(owner, record).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Handles S3's `ObjectCreated` event for `key` (the `verifier` function): verifies the upload
    /// whose session awaits it, exactly as `complete` does inline. Other keys are ignored.
    pub async fn on_object_created(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<EventOutcome, Error> {
        let Some(id) = key
            .strip_prefix("uploads/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(id, _)| UploadId::parse(id).ok())
        else {
            return Ok(EventOutcome::Ignored("not an upload key"));
        };
        let Some(record) = self.sessions.get(id).await? else {
            return Ok(EventOutcome::Ignored("no session for this key"));
        };
        if record.key != key {
            return Ok(EventOutcome::Ignored("the key is not the session's"));
        }
        if record.kind == Kind::Post && record.status == Status::Pending {
            let id = record.upload_id;
            match self.start_posted(record, By::Verifier { deadline }).await {
                Ok(Some(r)) if r.status == Status::Verifying => {
                    return Ok(EventOutcome::Paused(Box::new(r)));
                }
                Ok(Some(r)) => return Ok(EventOutcome::Done(Box::new(r))),
                Err(Error::VerificationFailed(r)) => return Ok(EventOutcome::Done(r)),
                Err(e) => return Err(e),
                // No object (yet), or an owner's read took the session first: whatever that
                // left is handled as for any other session.
                Ok(None) => {}
            }
            return match self.sessions.get(id).await? {
                Some(now) => self.verify_session(now, deadline).await,
                None => Ok(EventOutcome::Ignored("no session with this id")),
            };
        }
        self.verify_session(record, deadline).await
    }

    /// Continues a verification that paused at a deadline (the verifier's continuation event).
    pub async fn continue_verification(
        &self,
        id: UploadId,
        deadline: Option<Instant>,
    ) -> Result<EventOutcome, Error> {
        match self.sessions.get(id).await? {
            Some(record) => self.verify_session(record, deadline).await,
            None => Ok(EventOutcome::Ignored("no session with this id")),
        }
    }

    /// Takes a session awaiting verification (exactly one verifier wins) and verifies it.
    async fn verify_session(
        &self,
        mut record: UploadRecord,
        deadline: Option<Instant>,
    ) -> Result<EventOutcome, Error> {
        let id = record.upload_id;
        // S3's event can outrun the API's hand-over (`completing` → `verifying`) by a moment.
        let large = record.size > self.limits.verify_inline_max_bytes;
        let waiting = Instant::now();
        while large && record.status == Status::Completing && record.lease_until >= epoch_now() {
            if waiting.elapsed() >= HANDOVER_WAIT {
                // Failing the invocation makes Lambda deliver the event again later.
                return Err(Error::Conflict(
                    "the upload is still being completed; retry".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            record = match self.sessions.get(id).await? {
                Some(r) => r,
                None => return Ok(EventOutcome::Ignored("no session with this id")),
            };
        }
        let now = epoch_now();
        let guard = match record.status {
            Status::Verifying => Guard::status(Status::Verifying),
            // A verifier that died mid-way: its lease ran out, so this delivery takes over.
            Status::Completing
                if record.lease_until < now
                    && record.size > self.limits.verify_inline_max_bytes =>
            {
                Guard {
                    status: Status::Completing,
                    lease_expired_by: Some(now),
                }
            }
            _ => {
                return Ok(EventOutcome::Ignored(
                    "the session is not awaiting verification",
                ));
            }
        };
        let change = Change {
            lease_until: Some(now + secs(self.limits.completion_lease)),
            ..Change::default()
        };
        let taken = match self
            .sessions
            .transition(id, guard, Status::Completing, change, &timestamp_now())
            .await
        {
            Ok(r) => r,
            Err(PortError::PreconditionFailed) => {
                return Ok(EventOutcome::Ignored("another verifier took it"));
            }
            Err(e) => return Err(e.into()),
        };
        match self.finish(taken, None, By::Verifier { deadline }).await {
            Ok(r) if r.status == Status::Verifying => Ok(EventOutcome::Paused(Box::new(r))),
            Ok(r) => Ok(EventOutcome::Done(Box::new(r))),
            Err(Error::VerificationFailed(r)) => Ok(EventOutcome::Done(r)),
            Err(e) => Err(e),
        }
    }

    /// Answers for a record another caller has moved on: its result when final, after waiting a
    /// little while another completion runs, or by taking over a completion whose lease ran out.
    async fn settle(&self, owner: &str, mut record: UploadRecord) -> Result<UploadRecord, Error> {
        let started = Instant::now();
        loop {
            match record.status {
                Status::Verified => return Ok(record),
                Status::Failed => return Err(Error::VerificationFailed(Box::new(record))),
                Status::Aborted => {
                    return Err(Error::Conflict(
                        "cannot complete: the upload was aborted".into(),
                    ));
                }
                Status::Pending => {
                    return Box::pin(self.complete(owner, record.upload_id, None, None)).await;
                }
                Status::Completing if record.lease_until < epoch_now() => {
                    if let Some(result) = self.take_over(&record).await? {
                        return result;
                    }
                }
                // Large objects: the verifier function is on it; clients poll the record.
                Status::Verifying => return Ok(record),
                Status::Completing => {
                    if started.elapsed() >= self.limits.completion_wait {
                        return Err(Error::Conflict(format!(
                            "the upload is {}; poll GET /uploads/{} for the result",
                            record.status.as_str(),
                            record.upload_id
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            record = self.get(owner, record.upload_id).await?;
        }
    }

    /// Resumes a completion whose holder died or gave up. `None` when another caller won it.
    async fn take_over(
        &self,
        record: &UploadRecord,
    ) -> Result<Option<Result<UploadRecord, Error>>, Error> {
        let now = epoch_now();
        let guard = Guard {
            status: Status::Completing,
            lease_expired_by: Some(now),
        };
        let change = Change {
            lease_until: Some(now + secs(self.limits.completion_lease)),
            ..Change::default()
        };
        let record = match self
            .sessions
            .transition(
                record.upload_id,
                guard,
                Status::Completing,
                change,
                &timestamp_now(),
            )
            .await
        {
            Ok(r) => r,
            Err(PortError::PreconditionFailed) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The multipart upload may still be open (the holder died before completing it) or
        // already completed into the object; a posted object has no multipart upload.
        let listed = match record.kind {
            Kind::Multipart => {
                self.objects
                    .list_parts(&record.key, &record.s3_upload_id)
                    .await
            }
            Kind::Post => Err(PortError::NotFound),
        };
        let parts = match listed {
            Ok(listed) => match check_parts(&record, &listed, None) {
                Ok(parts) => Some(parts),
                Err(e) => {
                    self.reopen(&record).await;
                    return Ok(Some(Err(e)));
                }
            },
            Err(PortError::NotFound) => None,
            Err(e) => {
                self.release(&record).await;
                return Err(e.into());
            }
        };
        Ok(Some(self.finish(record, parts, By::Api).await))
    }

    /// Runs a completion this caller holds (status `completing`). `parts` is `None` when the
    /// multipart upload is already completed in S3.
    async fn finish(
        &self,
        record: UploadRecord,
        parts: Option<Vec<ListedPart>>,
        by: By,
    ) -> Result<UploadRecord, Error> {
        if let Some(parts) = parts {
            match self
                .objects
                .complete_multipart(&record.key, &record.s3_upload_id, &parts)
                .await
            {
                // NotFound: an earlier attempt completed it; the object tells the rest.
                Ok(()) | Err(PortError::NotFound) => {}
                Err(PortError::Rejected(reason)) => {
                    self.reopen(&record).await;
                    return Err(Error::Conflict(format!(
                        "S3 refused to complete the upload: {reason}"
                    )));
                }
                Err(e) => {
                    self.release(&record).await;
                    return Err(e.into());
                }
            }
        }
        if by == By::Api && record.size > self.limits.verify_inline_max_bytes {
            // The verifier function picks this up from S3's CompleteMultipartUpload event.
            return self.hand_to_verifier(&record, Change::default()).await;
        }
        let info = match self.objects.head(&record.key).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                return self
                    .fail(
                        record,
                        None,
                        None,
                        "the multipart upload no longer exists (aborted or expired)".into(),
                    )
                    .await;
            }
            Err(e) => {
                self.release(&record).await;
                return Err(e.into());
            }
        };
        if info.size != record.size {
            let why = format!(
                "the object is {} bytes; {} were declared",
                info.size, record.size
            );
            return self.fail(record, None, Some(info.etag), why).await;
        }
        // A resumed verification continues hashing the object it started on, or fails.
        let resume = match (&record.hash_state, &record.etag) {
            (Some(state), Some(pinned)) if *pinned == info.etag => Some(verify::Progress {
                hashed: record.verified_bytes,
                state: state.clone(),
            }),
            (Some(_), _) => {
                let why = "the object changed during verification".to_owned();
                return self.fail(record, None, Some(info.etag), why).await;
            }
            _ => None,
        };
        let deadline = match by {
            By::Verifier { deadline } => deadline,
            By::Api => None,
        };
        let span = tracing::info_span!("verify", size = record.size, from = record.verified_bytes);
        let started = Instant::now();
        let hashed = tracing::Instrument::instrument(
            verify::sha256_object(
                self.objects.as_ref(),
                &record.key,
                record.size,
                &info.etag,
                self.verify,
                resume.as_ref(),
                deadline,
            ),
            span,
        )
        .await;
        let digest = match hashed {
            Ok(verify::Hashed::Done(d)) => d,
            Ok(verify::Hashed::Paused(progress)) => {
                tracing::info!(
                    hashed = progress.hashed,
                    size = record.size,
                    "deadline reached; saving progress"
                );
                let change = Change {
                    etag: Some(info.etag),
                    progress: Some((progress.hashed, Some(progress.state))),
                    ..Change::default()
                };
                return self.hand_to_verifier(&record, change).await;
            }
            Err(PortError::PreconditionFailed) => {
                let why = "the object changed during verification".to_owned();
                return self.fail(record, None, Some(info.etag), why).await;
            }
            Err(e) => {
                self.release(&record).await;
                return Err(e.into());
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        tracing::info!(
            size = record.size,
            seconds = elapsed,
            mib_per_s = record.size as f64 / 1_048_576.0 / elapsed.max(1e-9),
            "verified digest"
        );
        match record.expected_sha256 {
            Some(expected) if expected != digest => {
                let why = format!("sha256 mismatch: declared {expected}, computed {digest}");
                self.fail(record, Some(digest), Some(info.etag), why).await
            }
            _ => {
                let now = timestamp_now();
                let change = Change {
                    sha256: Some(digest),
                    etag: Some(info.etag),
                    verified_at: Some(now.clone()),
                    lease_until: Some(0),
                    progress: Some((record.size, None)),
                    clear_expiry: true,
                    ..Change::default()
                };
                let guard = Guard::status(Status::Completing);
                Ok(self
                    .sessions
                    .transition(record.upload_id, guard, Status::Verified, change, &now)
                    .await?)
            }
        }
    }

    /// `completing` → `verifying`, lease released: the verifier function takes it from here
    /// (S3's completion event, or its own continuation event).
    async fn hand_to_verifier(
        &self,
        record: &UploadRecord,
        change: Change,
    ) -> Result<UploadRecord, Error> {
        let change = Change {
            lease_until: Some(0),
            ..change
        };
        let guard = Guard::status(Status::Completing);
        Ok(self
            .sessions
            .transition(
                record.upload_id,
                guard,
                Status::Verifying,
                change,
                &timestamp_now(),
            )
            .await?)
    }

    /// Records a failed verification; the object is deleted first so that no unverified bytes
    /// stay under the key once the record says `failed`.
    async fn fail(
        &self,
        record: UploadRecord,
        sha256: Option<Sha256>,
        etag: Option<String>,
        why: String,
    ) -> Result<UploadRecord, Error> {
        if let Err(e) = self.objects.delete(&record.key).await {
            self.release(&record).await;
            return Err(e.into());
        }
        let change = Change {
            sha256,
            etag,
            error: Some(why),
            lease_until: Some(0),
            clear_expiry: true,
            ..Change::default()
        };
        let now = timestamp_now();
        let failed = self
            .sessions
            .transition(
                record.upload_id,
                Guard::status(Status::Completing),
                Status::Failed,
                change,
                &now,
            )
            .await?;
        Err(Error::VerificationFailed(Box::new(failed)))
    }

    /// Gives up a completion after an upstream fault, so the next `complete` resumes it at once.
    async fn release(&self, record: &UploadRecord) {
        self.move_on(
            record,
            Status::Completing,
            Change {
                lease_until: Some(0),
                ..Change::default()
            },
        )
        .await;
    }

    /// Back to `pending` when S3 still holds the multipart upload and the client can fix its parts.
    async fn reopen(&self, record: &UploadRecord) {
        self.move_on(
            record,
            Status::Pending,
            Change {
                lease_until: Some(0),
                ..Change::default()
            },
        )
        .await;
    }

    async fn move_on(&self, record: &UploadRecord, to: Status, change: Change) {
        let now = timestamp_now();
        if let Err(e) = self
            .sessions
            .transition(
                record.upload_id,
                Guard::status(Status::Completing),
                to,
                change,
                &now,
            )
            .await
        {
            // The lease still runs out on its own; log and carry on with the original error.
            tracing::warn!(error = %chain(&e), to = to.as_str(), "could not release a completion");
        }
    }
}

/// The plan of a session that declared no size, from the parts S3 holds.
fn measure(listed: &[ListedPart]) -> Result<PartPlan, Error> {
    let sizes: Vec<(PartNumber, u64)> = listed.iter().map(|p| (p.part_number, p.size)).collect();
    PartPlan::measured(&sizes).map_err(|why| Error::Conflict(format!("cannot complete: {why}")))
}

fn gone() -> Error {
    Error::Conflict("the multipart upload no longer exists in S3 (aborted or expired)".into())
}

/// The parts to complete with, in order, after checking that S3 holds every planned part at its
/// exact size, and that any parts the client listed are exactly those. Part checksums travel
/// with the parts as S3 lists them: S3 checked each body against its signed checksum at PUT.
fn check_parts(
    record: &UploadRecord,
    listed: &[ListedPart],
    claimed: Option<&[ClaimedPart]>,
) -> Result<Vec<ListedPart>, Error> {
    let plan = record.plan();
    let by_number: std::collections::HashMap<PartNumber, &ListedPart> =
        listed.iter().map(|p| (p.part_number, p)).collect();
    let missing: Vec<u16> = plan
        .parts()
        .filter(|n| !by_number.contains_key(n))
        .map(PartNumber::get)
        .collect();
    if !missing.is_empty() {
        return Err(Error::Incomplete {
            part_count: plan.part_count(),
            missing_count: missing.len(),
            first_missing: missing.into_iter().take(20).collect(),
        });
    }
    let mut parts = Vec::with_capacity(by_number.len());
    for n in plan.parts() {
        let Some(&p) = by_number.get(&n) else {
            continue;
        };
        let expected = plan.part_len(n);
        if p.size != expected {
            return Err(Error::PartSize {
                part: n.get(),
                size: p.size,
                expected,
            });
        }
        parts.push(p.clone());
    }
    if let Some(claimed) = claimed {
        let mut seen = std::collections::HashSet::new();
        for c in claimed {
            if !seen.insert(c.part_number) {
                return Err(Invalid::new(
                    "parts",
                    format!("part {} is listed twice", c.part_number),
                )
                .into());
            }
            let Some(held) = by_number
                .get(&c.part_number)
                .filter(|_| plan.contains(c.part_number))
            else {
                return Err(Invalid::new(
                    "parts",
                    format!(
                        "part {} is outside 1..={}",
                        c.part_number,
                        plan.part_count()
                    ),
                )
                .into());
            };
            if c.etag.trim_matches('"') != held.etag {
                return Err(Invalid::new(
                    "parts",
                    format!("the etag of part {} is not the one S3 holds", c.part_number),
                )
                .into());
            }
        }
        if seen.len() as u64 != plan.part_count() {
            return Err(Invalid::new(
                "parts",
                format!(
                    "must list every part 1..={} ({} listed)",
                    plan.part_count(),
                    seen.len()
                ),
            )
            .into());
        }
    }
    Ok(parts)
}
