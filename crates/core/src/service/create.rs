//! New sessions: sized multipart (`POST /uploads`), unsized multipart (Uppy's Companion
//! protocol) and one browser form POST (Uppy's small-file path).

use super::{MAX_URLS_PER_CALL, Uploads, secs};
use crate::domain::{
    Chained, ContentType, Filename, Kind, MIN_PART_SIZE, Metadata, ObjectKey, PartPlan, PartStates,
    Sha256, State, UploadId, UploadRecord, timestamp_now,
};
use crate::error::{Error, chain};
use crate::ports::{NewMultipart, PostForm, SignedPart};
use crate::ports::{OwnerLimits, Reservation};

/// Most a form POST may carry: S3's limit for one PUT or POST.
const S3_MAX_POST_BYTES: u64 = 5 * 1024 * 1024 * 1024;

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
pub struct UnsizedUpload {
    pub filename: Filename,
    pub content_type: ContentType,
    pub sha256: Option<Sha256>,
    pub metadata: Metadata,
}

#[derive(Debug)]
pub struct Created {
    pub record: UploadRecord,
    pub parts: Vec<SignedPart>,
}

impl Uploads {
    pub async fn create(&self, owner: &str, req: NewUpload) -> Result<Created, Error> {
        if req.size > self.limits.max_object_bytes {
            return Err(Error::TooLarge {
                size: req.size,
                max: self.limits.max_object_bytes,
            });
        }
        let plan = PartPlan::new(req.size, req.part_size, self.limits.default_part_size)?;
        let declared = UnsizedUpload {
            filename: req.filename,
            content_type: req.content_type,
            sha256: req.sha256,
            metadata: req.metadata,
        };
        let record = self
            .start_multipart(owner, declared, Some(plan), req.part_checksums)
            .await?;
        // With part checksums the client must give each part's digest first, so no URLs yet.
        let parts = if req.part_checksums {
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

    /// A multipart session of `size` bytes in parts of `part_size` (Uppy's Companion protocol,
    /// which lets the client choose its parts), each URL signing its part's exact length.
    pub async fn create_planned(
        &self,
        owner: &str,
        req: UnsizedUpload,
        size: u64,
        part_size: u64,
    ) -> Result<UploadRecord, Error> {
        if size > self.limits.max_object_bytes {
            return Err(Error::TooLarge {
                size,
                max: self.limits.max_object_bytes,
            });
        }
        let plan = PartPlan::new(size, Some(part_size), self.limits.default_part_size)?;
        self.start_multipart(owner, req, Some(plan), false).await
    }

    /// A multipart session whose size S3's parts will tell at completion: only with
    /// `ALLOW_UNSIZED_SESSIONS` (`Limits::unsized_sessions`). Without it, refused before anything
    /// is reserved or created in S3: its part URLs would sign no length.
    pub async fn create_unsized(
        &self,
        owner: &str,
        req: UnsizedUpload,
    ) -> Result<UploadRecord, Error> {
        if !self.limits.unsized_sessions {
            return Err(Error::SizeRequired);
        }
        self.start_multipart(owner, req, None, false).await
    }

    /// A session for one browser form POST, and the signed form. Verification starts when S3
    /// reports the object (`on_object_created`) or when its owner next reads the record.
    /// `size`, when the client declares it, is all the form may carry.
    pub async fn create_post(
        &self,
        owner: &str,
        req: UnsizedUpload,
        size: Option<u64>,
    ) -> Result<(UploadRecord, PostForm), Error> {
        self.check_content_type(&req.content_type)?;
        let limit = self.unsized_reservation().min(S3_MAX_POST_BYTES);
        if let Some(size) = size.filter(|&s| s > limit) {
            return Err(Error::TooLarge { size, max: limit });
        }
        let record = self.new_record(UploadId::generate(), owner, req, Kind::Post, None);
        // S3 holds the form to the size the session reserved.
        let max = size.unwrap_or(limit);
        self.reserve(owner, record.upload_id, max).await?;
        let created = async {
            // Before anything can be posted: once the policy (and the clean-up of whatever it
            // let in) is over, the sweep checks that the key holds what the record names.
            let until = self.clock.now()
                + secs(self.limits.post_form_expiry)
                + secs(super::sweep::RECONCILE_AFTER);
            self.sessions.watch_key(record.upload_id, until).await?;
            let form = self
                .objects
                .presign_post(
                    record.key.as_str(),
                    &record.content_type,
                    max,
                    self.limits.post_form_expiry,
                )
                .await?;
            self.sessions.create(&record).await?;
            Ok::<_, Error>(form)
        };
        match created.await {
            Ok(form) => Ok((record, form)),
            Err(e) => {
                self.unreserve(owner, record.upload_id).await;
                Err(e)
            }
        }
    }

    async fn start_multipart(
        &self,
        owner: &str,
        req: UnsizedUpload,
        plan: Option<PartPlan>,
        part_checksums: bool,
    ) -> Result<UploadRecord, Error> {
        self.check_content_type(&req.content_type)?;
        let id = UploadId::generate();
        let key = ObjectKey::new(id, &req.filename);
        let bytes = plan.map_or_else(|| self.unsized_reservation(), |p| p.size());
        self.reserve(owner, id, bytes).await?;
        let s3_upload_id = match self
            .objects
            .create_multipart(&NewMultipart {
                key: key.as_str(),
                content_type: &req.content_type,
                metadata: &req.metadata,
                part_checksums,
            })
            .await
        {
            Ok(s3_upload_id) => s3_upload_id,
            Err(e) => {
                self.unreserve(owner, id).await;
                return Err(e.into());
            }
        };
        let kind = Kind::Multipart {
            s3_upload_id: s3_upload_id.clone(),
            part_checksums,
        };
        let record = self.new_record(id, owner, req, kind, plan);
        if let Err(e) = self.sessions.create(&record).await {
            // Without a record nobody could complete or abort it: take the multipart upload back.
            if let Err(abort) = self
                .objects
                .abort_multipart(key.as_str(), &s3_upload_id)
                .await
            {
                tracing::warn!(error = %chain(&abort), "could not abort an orphaned multipart upload");
            }
            self.unreserve(owner, id).await;
            return Err(e.into());
        }
        Ok(record)
    }

    /// `ALLOWED_CONTENT_TYPES`, checked by `start_multipart` and `create_post` (every create
    /// goes through one) before anything is reserved. S3 holds the type afterwards: a multipart upload's is fixed at CreateMultipartUpload, and a form's
    /// policy pins `Content-Type` to it.
    fn check_content_type(&self, declared: &ContentType) -> Result<(), Error> {
        let allowed = &self.limits.allowed_content_types;
        if allowed.allows(declared) {
            Ok(())
        } else {
            Err(Error::ContentTypeNotAllowed {
                declared: declared.clone(),
                allowed: allowed.clone(),
            })
        }
    }

    /// What a session of unknown size reserves, and may hold at most.
    pub(super) fn unsized_reservation(&self) -> u64 {
        self.limits
            .unsized_session_max_bytes
            .min(self.limits.max_object_bytes)
    }

    /// The highest part number an unsized multipart session is signed: every part but the last
    /// is at least S3's minimum part size, so an upload within the reservation has no more parts
    /// than this (1,024 for the default 5 GiB). Each URL signs no length (up to 5 GiB a part),
    /// so this, times 5 GiB, is what the session can store before S3 holds any of it.
    pub(super) fn unsized_part_limit(&self) -> u64 {
        self.unsized_reservation().div_ceil(MIN_PART_SIZE)
    }

    /// Holds `bytes` of `owner`'s limits for session `id` until it is final (or expires): one
    /// conditional write, so racing creates cannot pass a limit together.
    async fn reserve(&self, owner: &str, id: UploadId, bytes: u64) -> Result<(), Error> {
        let reservation = Reservation {
            id,
            bytes,
            expires_at: self.clock.now() + secs(self.limits.session_ttl),
        };
        match self
            .sessions
            .reserve(owner, reservation, self.clock.now(), self.owner_limits())
            .await?
        {
            None => Ok(()),
            Some(limit) => Err(Error::OverLimit(limit)),
        }
    }

    /// The per-owner limits every reservation is held to.
    pub fn owner_limits(&self) -> OwnerLimits {
        OwnerLimits {
            open_sessions: self.limits.max_open_sessions_per_owner,
            pending_bytes: self.limits.max_pending_bytes_per_owner,
        }
    }

    fn new_record(
        &self,
        upload_id: UploadId,
        owner: &str,
        req: UnsizedUpload,
        kind: Kind,
        plan: Option<PartPlan>,
    ) -> UploadRecord {
        let created = timestamp_now();
        UploadRecord {
            upload_id,
            owner: owner.to_owned(),
            bucket: self.objects.bucket().to_owned(),
            key: ObjectKey::new(upload_id, &req.filename),
            filename: req.filename,
            content_type: req.content_type,
            kind,
            plan,
            plan_measured: false,
            expected_sha256: req.sha256,
            part_states: PartStates::default(),
            chained: Chained::default(),
            metadata: req.metadata,
            created_at: created.clone(),
            updated_at: created,
            state: State::Pending {
                expires_at: self.clock.now() + secs(self.limits.session_ttl),
            },
        }
    }
}
