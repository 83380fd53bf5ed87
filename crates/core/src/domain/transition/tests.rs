//! The derived `apply` against the record-level semantics it replaced (kept here as the oracle),
//! and the item encoding: every change's writes leave an item that reads back and re-encodes to
//! itself, so the in-memory store and DynamoDB hold the same attributes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::domain::item::{Value, Write};
use crate::domain::{
    ANNOUNCE, ContentType, FailedVerdict, Failing, Filename, Kind, Lease, Metadata, ObjectKey,
    ObjectVersion, Pinned, State, UploadId, Verified,
};
use crate::domain::{ChainState, Chained, Fault, Hold, PartStates, in_flight_keys, shard};

pub(super) const NOW: &str = "2030-01-02T03:04:05.678Z";

pub(super) fn digest(seed: &[u8]) -> Sha256 {
    Sha256::of(seed)
}

pub(super) fn pending(kind: Kind, plan: Option<PartPlan>) -> UploadRecord {
    let upload_id = UploadId::generate();
    let filename = Filename::parse("report.pdf").unwrap();
    UploadRecord {
        part_states: PartStates::default(),
        chained: Chained::default(),
        upload_id,
        owner: "alice".into(),
        bucket: "bucket".into(),
        key: ObjectKey::new(upload_id, &filename),
        filename,
        content_type: ContentType::parse("application/pdf").unwrap(),
        kind,
        plan,
        plan_measured: false,
        expected_sha256: None,
        metadata: Metadata::parse(BTreeMap::from([("project".into(), "x".into())])).unwrap(),
        created_at: "2030-01-01T00:00:00.000Z".into(),
        updated_at: "2030-01-01T00:00:00.000Z".into(),
        state: State::Pending {
            expires_at: 1_900_000_000,
        },
    }
}

pub(super) fn multipart() -> Kind {
    Kind::Multipart {
        s3_upload_id: "s3-upload".into(),
        part_checksums: true,
    }
}

pub(super) fn object(etag: &str, version_id: Option<&str>) -> ObjectVersion {
    ObjectVersion {
        etag: etag.into(),
        version_id: version_id.map(str::to_owned),
    }
}

/// Records in every status, with the fields each state can carry.
pub(super) fn states() -> Vec<UploadRecord> {
    let sized = pending(
        multipart(),
        Some(PartPlan::stored(12 << 20, 5 << 20).unwrap()),
    );
    let open = UploadRecord {
        expected_sha256: Some(digest(b"declared")),
        ..pending(Kind::Post, None)
    };
    let lease = Hold::Leased(Lease {
        until: 1_800_000_060,
        token: LeaseToken::generate(),
    });
    let completing = UploadRecord {
        plan: Some(PartPlan::stored(7, 1 << 20).unwrap()),
        plan_measured: true,
        state: State::Completing {
            hold: lease,
            fault: None,
            pinned: None,
            failing: None,
        },
        ..open.clone()
    };
    let failing = UploadRecord {
        state: State::Completing {
            hold: lease,
            fault: None,
            pinned: Some(Pinned {
                object: object("\"etag-1\"", Some("v1")),
                progress: None,
                fanned: None,
            }),
            failing: Some(Failing {
                error: "digest mismatch".into(),
                sha256: Some(digest(b"found")),
            }),
        },
        ..completing.clone()
    };
    let pinned = Some(Pinned {
        object: object("\"etag-2\"", Some("v2")),
        progress: Some(Progress {
            hashed: 4 << 20,
            state: vec![0, 1, 2, 255],
            seal: None,
        }),
        fanned: None,
    });
    let verifying = UploadRecord {
        state: State::Verifying {
            pinned: pinned.clone(),
            resume_by: 1_900_000_900,
        },
        ..completing.clone()
    };
    let resumed = UploadRecord {
        state: State::Completing {
            hold: lease,
            fault: None,
            pinned,
            failing: None,
        },
        ..completing.clone()
    };
    let verified = UploadRecord {
        state: State::Verified(Verified {
            sha256: digest(b"found"),
            object: object("\"etag-2\"", Some("v2")),
            verified_at: NOW.into(),
            bytes: 7,
            announced: false,
            receipt: Some("header.claims.signature".into()),
        }),
        ..verifying.clone()
    };
    let failed = UploadRecord {
        state: State::Failed(FailedVerdict {
            error: "digest mismatch".into(),
            sha256: Some(digest(b"found")),
            object: None,
            announced: true,
        }),
        ..completing.clone()
    };
    let aborted = UploadRecord {
        state: State::Aborted { announced: false },
        ..sized.clone()
    };
    vec![
        sized, open, completing, failing, verifying, resumed, verified, failed, aborted,
    ]
}

/// Two chaining values, as a claim keeps them.
fn chain_states() -> PartStates {
    let mut s = PartStates::default();
    s.insert(1, ChainState::INITIAL);
    s.insert(2, ChainState::from_bytes([7; 32]));
    s
}

pub(super) fn changes() -> Vec<Change> {
    let saved = |version_id: Option<&str>| Saved {
        etag: "\"etag-3\"".into(),
        version_id: version_id.map(str::to_owned),
        progress: Progress {
            hashed: 8 << 20,
            state: vec![9; 40],
            seal: Some([3; 64]),
        },
    };
    vec![
        Change::Claim {
            lease_until: 1_800_000_120,
            token: LeaseToken::generate(),
            sized: None,
            expected_sha256: None,
            part_states: None,
        },
        Change::Claim {
            lease_until: 1_800_000_120,
            token: LeaseToken::generate(),
            sized: Some(PartPlan::stored(0, 1).unwrap()),
            expected_sha256: Some(digest(b"late")),
            part_states: Some(chain_states()),
        },
        Change::Release {
            fault: None,
            retry_at: None,
        },
        Change::Release {
            fault: Some(Fault {
                cause: "S3 request failed".into(),
                attempts: 3,
            }),
            retry_at: Some(1_800_000_240),
        },
        Change::Reopen {
            expires_at: 1_900_000_100,
            unmeasure: false,
        },
        Change::Reopen {
            expires_at: 1_900_000_100,
            unmeasure: true,
        },
        Change::Declare {
            expected_sha256: digest(b"declared later"),
        },
        Change::HandOver {
            saved: None,
            resume_by: 1_900_000_900,
        },
        Change::HandOver {
            saved: Some(saved(Some("v3"))),
            resume_by: 1_900_000_900,
        },
        Change::HandOver {
            saved: Some(saved(None)),
            resume_by: 1_900_000_900,
        },
        Change::Verified {
            sha256: digest(b"verified"),
            etag: "\"etag-4\"".into(),
            version_id: Some("v4".into()),
            verified_at: NOW.into(),
            bytes: 12 << 20,
            chained: Chained {
                segments: 6,
                mismatch_part: None,
            },
            receipt: Some("header.claims.signature".into()),
        },
        Change::Verified {
            sha256: digest(b"verified"),
            etag: "\"etag-4\"".into(),
            version_id: None,
            verified_at: NOW.into(),
            bytes: 0,
            chained: Chained::SEQUENTIAL,
            receipt: None,
        },
        Change::Failing {
            sha256: None,
            etag: None,
            version_id: None,
            error: "S3 holds no parts".into(),
            chained: Chained::default(),
        },
        Change::Failing {
            sha256: Some(digest(b"other")),
            etag: Some("\"etag-5\"".into()),
            version_id: None,
            error: "digest mismatch".into(),
            chained: Chained {
                segments: 4,
                mismatch_part: Some(3),
            },
        },
        Change::Failed {
            error: "digest mismatch".into(),
            sha256: Some(digest(b"other")),
        },
        Change::Failed {
            error: "S3 holds no parts".into(),
            sha256: None,
        },
        Change::FanOut {
            etag: "\"etag-5\"".into(),
            version_id: Some("v5".into()),
            lease_until: 1_800_000_180,
        },
        Change::FanOut {
            etag: "\"etag-5\"".into(),
            version_id: None,
            lease_until: 1_800_000_180,
        },
        Change::SegmentDone {
            etag: "\"etag-5\"".into(),
            version_id: Some("v5".into()),
            before: Fanned::default(),
            after: fanned(&[(2, 9)], 64 << 20),
            lease_until: 1_800_000_240,
        },
        Change::Aborted,
    ]
}

/// A fan-out that found `ends` (index, fill byte) over `hashed` bytes.
pub(super) fn fanned(ends: &[(u16, u8)], hashed: u64) -> Fanned {
    let mut f = Fanned {
        hashed,
        ..Fanned::default()
    };
    for &(i, b) in ends {
        f.ends.insert(i, [b; 32]);
    }
    f
}

/// The hold once `lease_until` is written and the token kept (none: a back-off until then).
fn held_until(record: &UploadRecord, lease_until: i64) -> Hold {
    match record.lease() {
        Some(lease) => Hold::Leased(Lease {
            until: lease_until,
            ..lease
        }),
        None if lease_until > 0 => Hold::BackingOff { until: lease_until },
        None => Hold::Released,
    }
}

/// What each change does to the record, said on the record's states (the oracle `apply`,
/// derived from the item writes, must agree with).
fn oracle(change: &Change, record: &UploadRecord, now: &str) -> UploadRecord {
    let mut r = record.clone();
    r.updated_at = now.to_owned();
    let pinned = match &record.state {
        State::Completing { pinned, .. } | State::Verifying { pinned, .. } => pinned.clone(),
        _ => None,
    };
    let failing = record.failing().cloned();
    r.state = match change.clone() {
        Change::Claim {
            lease_until,
            token,
            sized,
            expected_sha256,
            part_states,
        } => {
            if let Some(s) = part_states.filter(|s| !s.is_empty()) {
                r.part_states = s;
            }
            if sized.is_some() {
                r.plan = sized;
                r.plan_measured = true;
            }
            r.expected_sha256 = expected_sha256.or(r.expected_sha256);
            let hold = Hold::Leased(Lease {
                until: lease_until,
                token,
            });
            State::Completing {
                hold,
                fault: record.fault().cloned(),
                pinned,
                failing,
            }
        }
        Change::Release { fault, retry_at } => State::Completing {
            hold: retry_at.map_or(Hold::Released, |until| Hold::BackingOff { until }),
            fault: fault.or_else(|| record.fault().cloned()),
            pinned,
            failing,
        },
        Change::Reopen {
            expires_at,
            unmeasure,
        } => {
            if unmeasure {
                r.plan = None;
                r.plan_measured = false;
            }
            State::Pending { expires_at }
        }
        Change::Declare { expected_sha256 } => {
            r.expected_sha256 = Some(expected_sha256);
            record.state.clone()
        }
        Change::HandOver { saved, resume_by } => State::Verifying {
            resume_by,
            pinned: match saved {
                Some(s) => Some(Pinned {
                    object: object(&s.etag, s.version_id.as_deref()),
                    progress: Some(s.progress),
                    fanned: None,
                }),
                // A fan-out's ends are the holder's, on `completing` only.
                None => pinned.map(|p| Pinned { fanned: None, ..p }),
            },
        },
        Change::Verified {
            sha256,
            etag,
            version_id,
            verified_at,
            bytes,
            chained,
            receipt,
        } => {
            r.chained = chained;
            State::Verified(Verified {
                sha256,
                object: object(&etag, version_id.as_deref()),
                verified_at,
                bytes,
                announced: false,
                receipt,
            })
        }
        Change::Failing {
            sha256,
            etag,
            version_id,
            error,
            chained,
        } => {
            r.chained = chained;
            State::Completing {
                hold: match &record.state {
                    State::Completing { hold, .. } => *hold,
                    _ => Hold::Released,
                },
                fault: record.fault().cloned(),
                pinned: match etag {
                    Some(etag) => Some(Pinned {
                        object: object(&etag, version_id.as_deref()),
                        progress: pinned.clone().and_then(|p| p.progress),
                        fanned: pinned.and_then(|p| p.fanned),
                    }),
                    None => pinned,
                },
                failing: Some(Failing {
                    error,
                    sha256: sha256.or(failing.and_then(|f| f.sha256)),
                }),
            }
        }
        Change::FanOut {
            etag,
            version_id,
            lease_until,
        } => State::Completing {
            hold: held_until(record, lease_until),
            fault: record.fault().cloned(),
            pinned: Some(Pinned {
                object: object(&etag, version_id.as_deref()),
                progress: None,
                fanned: Some(Fanned::default()),
            }),
            failing,
        },
        Change::SegmentDone {
            etag,
            version_id,
            after,
            lease_until,
            ..
        } => State::Completing {
            hold: held_until(record, lease_until),
            fault: record.fault().cloned(),
            pinned: Some(Pinned {
                object: object(&etag, version_id.as_deref()),
                progress: pinned.and_then(|p| p.progress),
                fanned: Some(after),
            }),
            failing,
        },
        Change::Failed { error, sha256 } => State::Failed(FailedVerdict {
            error,
            sha256,
            object: record.object().cloned(),
            announced: false,
        }),
        Change::Aborted => State::Aborted { announced: false },
    };
    r
}

#[test]
fn the_derived_apply_does_what_each_change_did() {
    for record in states() {
        for change in changes() {
            if !change.applies_from(record.status()) {
                continue;
            }
            assert_eq!(
                change.apply(&record, NOW).unwrap(),
                oracle(&change, &record, NOW),
                "{change:?} on {:?}",
                record.status()
            );
        }
    }
}

#[test]
fn every_change_writes_an_item_that_reads_back_as_itself() {
    for record in states() {
        let stored = to_item(&record);
        assert_eq!(from_item(&stored).unwrap(), record);
        for change in changes() {
            if !change.applies_from(record.status()) {
                continue;
            }
            let writes = change.writes(record.status(), record.upload_id, NOW);
            let attrs: BTreeSet<_> = writes.iter().map(Write::attr).collect();
            assert_eq!(
                attrs.len(),
                writes.len(),
                "one write per attribute: {writes:?}"
            );
            let mut item = stored.clone();
            for w in &writes {
                w.apply(&mut item);
            }
            // Nothing a write leaves is outside the record's encoding, and nothing is missing.
            let read = from_item(&item).unwrap();
            assert_eq!(to_item(&read), item, "{change:?} on {:?}", record.status());
        }
    }
}

#[test]
fn the_in_flight_index_lists_sessions_in_flight_and_unannounced_verdicts() {
    for record in states() {
        for change in changes() {
            if !change.applies_from(record.status()) {
                continue;
            }
            let item = to_item(&change.apply(&record, NOW).unwrap());
            let kind = match change.status() {
                Status::Completing => Some("completing"),
                Status::Verifying => Some("verifying"),
                Status::Verified | Status::Failed | Status::Aborted => Some(ANNOUNCE),
                Status::Pending => Some("pending"),
            };
            // Sharded by the upload id, on one of the keys the sweep reads for its kind.
            let expected = kind.map(|k| format!("{k}#{:02}", shard(record.upload_id)));
            assert!(kind.is_none_or(|k| in_flight_keys(k).contains(expected.as_ref().unwrap())));
            assert_eq!(
                item.get(attr::IN_FLIGHT),
                expected.map(Value::S).as_ref(),
                "{change:?}"
            );
        }
    }
}

#[test]
fn guards_hold_on_the_item_as_they_did_on_the_record() {
    let other = LeaseToken::generate();
    for record in states() {
        let mut guards = vec![Guard::held(&record)];
        for status in [Status::Pending, Status::Completing, Status::Verifying] {
            for by in [
                None,
                Some(record.lease_until()),
                Some(record.lease_until() + 1),
            ] {
                for holder in [None, record.lease_token(), Some(other)] {
                    // A pending session holds no lease (its item's `lease_until` is its expiry,
                    // for the index): no guard asks a lease of it.
                    if status == Status::Pending && by.is_some() {
                        continue;
                    }
                    guards.push(Guard {
                        status,
                        lease_expired_by: by,
                        holder,
                    });
                }
            }
        }
        for g in guards {
            let was = record.status() == g.status
                && g.lease_expired_by
                    .is_none_or(|by| record.lease_until() < by)
                && g.holder.is_none_or(|t| record.lease_token() == Some(t));
            assert_eq!(g.holds(&record), was, "{g:?} on {:?}", record.status());
        }
    }
}

#[test]
fn an_item_stored_before_the_encoding_moved_reads_back() {
    let s = |v: &str| Value::S(v.into());
    let n = Value::N;
    let item: Item = [
        ("upload_id", s("01J0000000000000000000000A")),
        ("owner", s("alice")),
        ("status", s("completing")),
        ("bucket", s("bucket")),
        ("key", s("uploads/01J0000000000000000000000A/a.bin")),
        ("filename", s("a.bin")),
        ("content_type", s("application/octet-stream")),
        ("kind", s("multipart")),
        ("open_size", Value::Bool(false)),
        ("size", n(10)),
        ("part_size", n(5)),
        ("part_count", n(2)),
        ("part_checksums", Value::Bool(false)),
        ("s3_upload_id", s("s3")),
        ("created_at", s("2024-01-01T00:00:00.000Z")),
        ("updated_at", s("2024-01-01T00:00:01.000Z")),
        ("lease_until", n(1_700_000_000)),
        ("lease_token", s("01J0000000000000000000000B")),
        ("verified_bytes", n(0)),
        ("metadata", Value::M(BTreeMap::new())),
        ("in_flight", s("completing")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let r = from_item(&item).unwrap();
    assert_eq!(r.status(), Status::Completing);
    assert_eq!(r.plan.map(|p| p.size()), Some(10));
    assert!(!r.plan_measured, "items written before plan_measured");
    assert!(!r.unannounced());
    let mut rewritten = item.clone();
    rewritten.insert("plan_measured".into(), Value::Bool(false));
    // Its next write moves it from the unsharded index key to its shard.
    let shard = format!("completing#{:02}", shard(r.upload_id));
    rewritten.insert("in_flight".into(), Value::S(shard));
    assert_eq!(to_item(&r), rewritten);
}

#[test]
fn a_missing_or_mistyped_attribute_is_named() {
    // What each state needs: a pending session its TTL, a held lease its end, a verdict its
    // digest and version.
    let states = states();
    let (pending, completing, verified) = (&states[0], &states[2], &states[6]);
    for (record, attr) in [
        (pending, attr::STATUS),
        (pending, attr::EXPIRES_AT),
        (pending, attr::METADATA),
        (pending, attr::OPEN_SIZE),
        (completing, attr::LEASE_UNTIL),
        (verified, attr::SHA256),
        (verified, attr::ETAG),
        (verified, attr::VERIFIED_AT),
    ] {
        let mut item = to_item(record);
        item.remove(attr);
        assert_eq!(from_item(&item), Err(Malformed(attr.into())), "{attr}");
        let mistyped = if attr == attr::METADATA {
            Value::Bool(false)
        } else {
            Value::M(BTreeMap::new())
        };
        item.insert(attr.into(), mistyped);
        assert_eq!(from_item(&item), Err(Malformed(attr.into())), "{attr}");
    }
}

#[test]
fn lt_compares_numbers_as_numbers_and_never_across_types() {
    let item: Item = [("n".to_owned(), Value::N(9))].into_iter().collect();
    assert!(Cond::Lt("n", Value::N(10)).holds(&item));
    assert!(!Cond::Lt("n", Value::N(9)).holds(&item));
    assert!(!Cond::Lt("n", Value::S("99".into())).holds(&item));
    assert!(!Cond::Lt("missing", Value::N(10)).holds(&item));
    assert!(!Cond::Eq("missing", Value::N(10)).holds(&item));
}

// ---- Outside review (branch `review`) ----
