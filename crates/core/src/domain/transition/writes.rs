//! The writes of one transition (`Change::writes`), built attribute by attribute (each attribute
//! once), and the clean-up that leaves exactly the item the new state encodes.

use super::item::{self, Value, Write, attr};
use super::{Chained, Change, Fanned, PartPlan, Saved, Status, UploadId};

/// A transition's writes, one per attribute: a later write of an attribute replaces an earlier
/// one, as it would have overwritten it (DynamoDB refuses an expression naming one twice).
#[derive(Default)]
pub(super) struct Writes(pub(super) Vec<Write>);

impl Writes {
    pub(super) fn push(&mut self, write: Write) {
        self.0.retain(|w| w.attr() != write.attr());
        self.0.push(write);
    }

    pub(super) fn set(&mut self, attr: &'static str, value: Value) {
        self.push(Write::Set(attr, value));
    }

    pub(super) fn remove(&mut self, attr: &'static str) {
        self.push(Write::Remove(attr));
    }

    pub(super) fn put(&mut self, attr: &'static str, value: Option<Value>) {
        self.push(Write::put(attr, value));
    }

    /// A plan and whether it was measured (rather than declared).
    pub(super) fn plan(&mut self, plan: Option<PartPlan>, measured: bool) {
        for (attr, value) in item::plan(plan) {
            self.set(attr, value);
        }
        self.set(attr::PLAN_MEASURED, Value::Bool(measured));
    }

    /// The object a verification pinned: the version goes with the ETag, and none (an
    /// unversioned bucket) removes a stale one.
    pub(super) fn written(&self, attr: &str) -> bool {
        self.0.iter().any(|w| w.attr() == attr)
    }

    /// Removes what the new state does not have, and what the old one did not have either (an
    /// item written before transitions cleaned up may hold attributes its state never reads,
    /// which must not come back as part of the next state: a stray `error` on a `verifying`
    /// item as a decided failure once claimed), and zeroes the numbers every item has; so the
    /// item is exactly what `to_item` makes of the record it now describes.
    pub(super) fn clean(&mut self, from: Status, to: Status) {
        let (was, is) = (has(from), has(to));
        for a in [
            attr::LAST_ERROR,
            attr::ATTEMPTS,
            attr::EXPIRES_AT,
            attr::LEASE_TOKEN,
            attr::ETAG,
            attr::VERSION_ID,
            attr::HASH_STATE,
            attr::HASH_SEAL,
            attr::ERROR,
            attr::SHA256,
            attr::VERIFIED_AT,
            attr::RECEIPT,
            attr::SEGMENT_ENDS,
        ] {
            let kept = was.contains(&a) && is.contains(&a);
            if !kept && !self.written(a) {
                self.remove(a);
            }
        }
        // A pending item's `lease_until` is its expiry (the index's order); kept by changes that
        // keep its expiry, written by those that set one.
        let kept_pending = from == Status::Pending && to == Status::Pending;
        if to != Status::Completing && !kept_pending && !self.written(attr::LEASE_UNTIL) {
            self.set(attr::LEASE_UNTIL, item::number(0));
        }
        // Progress is kept while a verification may continue; a verdict sets its own count.
        if matches!(to, Status::Pending | Status::Failed | Status::Aborted) {
            self.set(attr::VERIFIED_BYTES, item::number(0));
        }
    }

    /// What a verdict's digest rests on: its segments, and where the declared chain broke.
    pub(super) fn chained(&mut self, c: Chained) {
        self.put(
            attr::SEGMENTS,
            (c.segments > 0).then(|| item::number(c.segments)),
        );
        self.put(attr::MISMATCH_PART, c.mismatch_part.map(item::number));
    }

    /// A fan-out starts on the version pinned, no end found yet, no sequential state kept.
    pub(super) fn fan_out(&mut self, etag: &str, version_id: Option<&str>, lease_until: i64) {
        self.set(attr::LEASE_UNTIL, item::number(lease_until));
        self.object(etag, version_id);
        self.set(attr::SEGMENT_ENDS, item::fanned(&Fanned::default()));
        self.remove(attr::HASH_STATE);
        self.remove(attr::HASH_SEAL);
        self.set(attr::VERIFIED_BYTES, item::number(0));
    }

    pub(super) fn segment_done(&mut self, after: &Fanned, lease_until: i64) {
        self.set(attr::SEGMENT_ENDS, item::fanned(after));
        self.set(attr::LEASE_UNTIL, item::number(lease_until));
    }

    pub(super) fn object(&mut self, etag: &str, version_id: Option<&str>) {
        self.set(attr::ETAG, item::text(etag));
        self.put(attr::VERSION_ID, version_id.map(item::text));
    }
}

/// The optional attributes a state has (what `from_item` reads for it).
pub(super) fn has(status: Status) -> &'static [&'static str] {
    use Status as S;
    match status {
        S::Pending => &[attr::EXPIRES_AT],
        S::Completing => &[
            attr::LAST_ERROR,
            attr::ATTEMPTS,
            attr::LEASE_TOKEN,
            attr::ETAG,
            attr::VERSION_ID,
            attr::HASH_STATE,
            attr::HASH_SEAL,
            attr::ERROR,
            attr::SHA256,
            attr::SEGMENT_ENDS,
        ],
        S::Verifying => &[
            attr::ETAG,
            attr::VERSION_ID,
            attr::HASH_STATE,
            attr::HASH_SEAL,
        ],
        S::Verified => &[
            attr::SHA256,
            attr::ETAG,
            attr::VERSION_ID,
            attr::VERIFIED_AT,
            attr::RECEIPT,
        ],
        S::Failed => &[attr::ERROR, attr::SHA256, attr::ETAG, attr::VERSION_ID],
        S::Aborted => &[],
    }
}

impl Change {
    /// Every attribute the write sets or removes, each once, from a record in status `from`
    /// (the guard's): the one definition of the transition, which the in-memory store applies
    /// to its item and the DynamoDB adapter translates into one `UpdateItem`.
    pub fn writes(&self, from: Status, id: UploadId, now: &str) -> Vec<Write> {
        let mut w = Writes::default();
        let status = self.status();
        w.set(attr::STATUS, item::status(status));
        w.set(attr::UPDATED_AT, item::text(now));
        // A final record is unannounced until its verdict went out (`announced` clears it).
        w.put(
            attr::IN_FLIGHT,
            item::in_flight(status, self.is_final(), id),
        );
        if self.is_final() {
            w.remove(attr::EXPIRES_AT);
            w.remove(attr::HASH_STATE);
            w.remove(attr::HASH_SEAL);
        }
        if self.ends_lease() {
            w.set(attr::LEASE_UNTIL, item::number(0));
            w.remove(attr::LEASE_TOKEN);
        }
        match self {
            Self::Claim {
                lease_until,
                token,
                sized,
                expected_sha256,
                part_states,
            } => {
                w.set(attr::LEASE_UNTIL, item::number(*lease_until));
                w.set(attr::LEASE_TOKEN, item::token(*token));
                w.remove(attr::EXPIRES_AT);
                if sized.is_some() {
                    w.plan(*sized, true);
                }
                if let Some(d) = expected_sha256 {
                    w.set(attr::EXPECTED_SHA256, item::digest(*d));
                }
                if let Some(s) = part_states.as_ref().filter(|s| !s.is_empty()) {
                    w.set(attr::PART_STATES, item::part_states(s));
                }
            }
            Self::Reopen {
                expires_at,
                unmeasure,
            } => {
                w.set(attr::EXPIRES_AT, item::number(*expires_at));
                w.set(attr::LEASE_UNTIL, item::number(*expires_at));
                // The states described the parts S3 refused: the fixed parts may be cut
                // differently, and the next `complete` declares its own.
                w.remove(attr::PART_STATES);
                if *unmeasure {
                    w.plan(None, false);
                }
            }
            Self::Declare { expected_sha256 } => {
                w.set(attr::EXPECTED_SHA256, item::digest(*expected_sha256));
            }
            Self::HandOver {
                saved:
                    Some(Saved {
                        etag,
                        version_id,
                        progress,
                    }),
                resume_by,
            } => {
                w.set(attr::LEASE_UNTIL, item::number(*resume_by));
                w.object(etag, version_id.as_deref());
                w.set(attr::VERIFIED_BYTES, item::number(progress.hashed));
                w.set(attr::HASH_STATE, item::hash_state(&progress.state));
                w.put(attr::HASH_SEAL, progress.seal.as_ref().map(item::hash_seal));
            }
            Self::Verified {
                sha256,
                etag,
                version_id,
                verified_at,
                bytes,
                chained,
                receipt,
            } => {
                w.chained(*chained);
                w.set(attr::SHA256, item::digest(*sha256));
                w.object(etag, version_id.as_deref());
                w.set(attr::VERIFIED_AT, item::text(verified_at));
                w.set(attr::VERIFIED_BYTES, item::number(*bytes));
                w.put(attr::RECEIPT, receipt.as_deref().map(item::text));
            }
            Self::Failing {
                sha256,
                etag,
                version_id,
                error,
                chained,
            } => {
                w.chained(*chained);
                if let Some(d) = sha256 {
                    w.set(attr::SHA256, item::digest(*d));
                }
                if let Some(etag) = etag {
                    w.object(etag, version_id.as_deref());
                }
                w.set(attr::ERROR, item::text(error));
            }
            Self::Failed { error, sha256 } => {
                w.set(attr::ERROR, item::text(error));
                w.put(attr::SHA256, sha256.map(item::digest));
            }
            Self::Release { fault, retry_at } => {
                if let Some(at) = retry_at {
                    w.set(attr::LEASE_UNTIL, item::number(*at));
                }
                if let Some(f) = fault {
                    w.set(attr::LAST_ERROR, item::text(&f.cause));
                    w.set(attr::ATTEMPTS, item::number(f.attempts));
                }
            }
            Self::HandOver {
                saved: None,
                resume_by,
            } => w.set(attr::LEASE_UNTIL, item::number(*resume_by)),
            Self::FanOut {
                etag,
                version_id,
                lease_until,
            } => w.fan_out(etag, version_id.as_deref(), *lease_until),
            Self::SegmentDone {
                etag,
                version_id,
                after,
                lease_until,
                ..
            } => {
                w.object(etag, version_id.as_deref());
                w.segment_done(after, *lease_until);
            }
            Self::Aborted => {}
        }
        w.clean(from, status);
        w.0
    }
}
