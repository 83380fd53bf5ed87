//! Reading an item back into the record: by its status, from the attributes that state has.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Item, Malformed, Value, attr, marks_unannounced};
use crate::domain::{
    Chained, ContentType, FailedVerdict, Failing, Fanned, Fault, Filename, Hold, Kind, Lease,
    LeaseToken, Metadata, ObjectKey, ObjectVersion, PartPlan, PartStates, Pinned, Progress, Sha256,
    State, Status, UploadId, UploadRecord, Verified,
};

fn malformed(what: &str) -> Malformed {
    Malformed(what.to_owned())
}

/// Reads an item's attributes; anything missing or of the wrong type is `Malformed`.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn text(&self, k: &str) -> Option<&str> {
        match self.0.get(k) {
            Some(Value::S(v)) => Some(v),
            _ => None,
        }
    }

    fn req(&self, k: &str) -> Result<&str, Malformed> {
        self.text(k).ok_or_else(|| malformed(k))
    }

    fn num<T: TryFrom<i128>>(&self, k: &str) -> Result<Option<T>, Malformed> {
        match self.0.get(k) {
            Some(Value::N(v)) => T::try_from(*v).map(Some).map_err(|_| malformed(k)),
            _ => Ok(None),
        }
    }

    fn unsigned(&self, k: &str) -> Result<u64, Malformed> {
        self.num(k)?.ok_or_else(|| malformed(k))
    }

    fn flag(&self, k: &str) -> Result<bool, Malformed> {
        match self.0.get(k) {
            Some(Value::Bool(v)) => Ok(*v),
            _ => Err(malformed(k)),
        }
    }

    fn digest(&self, k: &str) -> Result<Option<Sha256>, Malformed> {
        self.text(k)
            .map(|h| Sha256::parse_hex(h).map_err(|_| malformed(k)))
            .transpose()
    }

    fn part_states(&self) -> Result<PartStates, Malformed> {
        let Some(b64) = self.text(attr::PART_STATES) else {
            return Ok(PartStates::default());
        };
        let bytes = B64.decode(b64).map_err(|_| malformed(attr::PART_STATES))?;
        PartStates::from_stored(&bytes).map_err(|_| malformed(attr::PART_STATES))
    }

    fn owned(&self, k: &str) -> Option<String> {
        self.text(k).map(str::to_owned)
    }

    fn metadata(&self) -> Result<Metadata, Malformed> {
        match self.0.get(attr::METADATA) {
            Some(Value::M(map)) => {
                Metadata::parse(map.clone()).map_err(|_| malformed(attr::METADATA))
            }
            _ => Err(malformed(attr::METADATA)),
        }
    }

    fn kind(&self) -> Result<Kind, Malformed> {
        match self.req(attr::KIND)? {
            "multipart" => Ok(Kind::Multipart {
                s3_upload_id: self.req(attr::S3_UPLOAD_ID)?.to_owned(),
                part_checksums: self.flag(attr::PART_CHECKSUMS)?,
            }),
            "post" => Ok(Kind::Post),
            _ => Err(malformed(attr::KIND)),
        }
    }

    fn plan(&self) -> Result<Option<PartPlan>, Malformed> {
        if self.flag(attr::OPEN_SIZE)? {
            return Ok(None);
        }
        PartPlan::stored(self.unsigned(attr::SIZE)?, self.unsigned(attr::PART_SIZE)?)
            .map(Some)
            .map_err(|_| malformed(attr::SIZE))
    }
}

pub fn from_item(item: &Item) -> Result<UploadRecord, Malformed> {
    let r = Reader(item);
    let status = Status::parse(r.req(attr::STATUS)?).ok_or_else(|| malformed(attr::STATUS))?;
    Ok(UploadRecord {
        upload_id: UploadId::parse(r.req(attr::UPLOAD_ID)?)
            .map_err(|_| malformed(attr::UPLOAD_ID))?,
        owner: r.req(attr::OWNER)?.to_owned(),
        bucket: r.req(attr::BUCKET)?.to_owned(),
        key: ObjectKey::parse(r.req(attr::KEY)?).map_err(|_| malformed(attr::KEY))?,
        filename: Filename::parse(r.req(attr::FILENAME)?).map_err(|_| malformed(attr::FILENAME))?,
        content_type: ContentType::parse(r.req(attr::CONTENT_TYPE)?)
            .map_err(|_| malformed(attr::CONTENT_TYPE))?,
        kind: r.kind()?,
        plan: r.plan()?,
        // Written since measured plans are forgotten on reopening; earlier items kept theirs.
        plan_measured: r.flag(attr::PLAN_MEASURED).unwrap_or(false),
        expected_sha256: r.digest(attr::EXPECTED_SHA256)?,
        part_states: r.part_states()?,
        chained: Chained {
            segments: r.num(attr::SEGMENTS)?.unwrap_or(0),
            mismatch_part: r.num(attr::MISMATCH_PART)?,
        },
        metadata: r.metadata()?,
        created_at: r.req(attr::CREATED_AT)?.to_owned(),
        updated_at: r.req(attr::UPDATED_AT)?.to_owned(),
        state: r.state(status)?,
    })
}

impl Reader<'_> {
    /// The state `status` names, from the attributes that state has (others are ignored: an
    /// item written before transitions cleaned up after themselves may still hold them).
    fn state(&self, status: Status) -> Result<State, Malformed> {
        let announced = !self.text(attr::IN_FLIGHT).is_some_and(marks_unannounced);
        Ok(match status {
            Status::Pending => State::Pending {
                expires_at: self
                    .num(attr::EXPIRES_AT)?
                    .ok_or_else(|| malformed(attr::EXPIRES_AT))?,
            },
            Status::Completing => State::Completing {
                hold: self.hold()?,
                fault: self
                    .owned(attr::LAST_ERROR)
                    .map(|cause| {
                        let attempts = self.num(attr::ATTEMPTS)?.unwrap_or(1);
                        Ok(Fault { cause, attempts })
                    })
                    .transpose()?,
                pinned: self.pinned(true)?,
                failing: self
                    .owned(attr::ERROR)
                    .map(|error| {
                        let sha256 = self.digest(attr::SHA256)?;
                        Ok(Failing { error, sha256 })
                    })
                    .transpose()?,
            },
            Status::Verifying => State::Verifying {
                pinned: self.pinned(false)?,
                // Missing or 0 (items from before hand-overs set it): due at once.
                resume_by: self.num(attr::LEASE_UNTIL)?.unwrap_or(0),
            },
            Status::Verified => State::Verified(Verified {
                sha256: self
                    .digest(attr::SHA256)?
                    .ok_or_else(|| malformed(attr::SHA256))?,
                object: self.object()?.ok_or_else(|| malformed(attr::ETAG))?,
                verified_at: self.req(attr::VERIFIED_AT)?.to_owned(),
                bytes: self.unsigned(attr::VERIFIED_BYTES)?,
                announced,
                receipt: self.owned(attr::RECEIPT),
            }),
            Status::Failed => State::Failed(FailedVerdict {
                error: self.req(attr::ERROR)?.to_owned(),
                sha256: self.digest(attr::SHA256)?,
                object: self.object()?,
                announced,
            }),
            Status::Aborted => State::Aborted { announced },
        })
    }

    /// A token with its `lease_until` is a lease; no token, a release (`lease_until` 0, or
    /// missing in items from before it was always written) or a back-off (until then).
    fn hold(&self) -> Result<Hold, Malformed> {
        let until = self.num(attr::LEASE_UNTIL)?;
        Ok(match (self.text(attr::LEASE_TOKEN), until) {
            (Some(token), Some(until)) => Hold::Leased(Lease {
                token: LeaseToken::parse(token).map_err(|_| malformed(attr::LEASE_TOKEN))?,
                until,
            }),
            (Some(_), None) => return Err(malformed(attr::LEASE_UNTIL)),
            (None, Some(until)) if until > 0 => Hold::BackingOff { until },
            (None, _) => Hold::Released,
        })
    }

    fn object(&self) -> Result<Option<ObjectVersion>, Malformed> {
        Ok(self.owned(attr::ETAG).map(|etag| ObjectVersion {
            etag,
            version_id: self.owned(attr::VERSION_ID),
        }))
    }

    /// The pinned version and its progress; a fan-out's ends only where it may run
    /// (`completing`).
    fn pinned(&self, fans_out: bool) -> Result<Option<Pinned>, Malformed> {
        let Some(object) = self.object()? else {
            return Ok(None);
        };
        let fanned = match self.text(attr::SEGMENT_ENDS).filter(|_| fans_out) {
            None => None,
            Some(b64) => {
                let bad = || malformed(attr::SEGMENT_ENDS);
                let bytes = B64.decode(b64).map_err(|_| bad())?;
                Some(Fanned::from_stored(&bytes).ok_or_else(bad)?)
            }
        };
        let progress = self
            .text(attr::HASH_STATE)
            .map(|b| {
                let state = B64.decode(b).map_err(|_| malformed(attr::HASH_STATE))?;
                let hashed = self.unsigned(attr::VERIFIED_BYTES)?;
                // A seal that is not 64 bytes seals nothing: the progress is read, and not
                // continued from (`receipt::Sealed`), rather than the record refused.
                let seal = self
                    .text(attr::HASH_SEAL)
                    .and_then(|s| B64.decode(s).ok())
                    .and_then(|s| <[u8; 64]>::try_from(s).ok());
                Ok(Progress {
                    hashed,
                    state,
                    seal,
                })
            })
            .transpose()?;
        Ok(Some(Pinned {
            object,
            progress,
            fanned,
        }))
    }
}
