//! The derived `apply` against the record-level semantics it replaced (kept here as the oracle),
//! and the item encoding: every change's writes leave an item that reads back and re-encodes to
//! itself, so the in-memory store and DynamoDB hold the same attributes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::domain::{ANNOUNCE, ContentType, Filename, Kind, Metadata, ObjectKey, UploadId};

const NOW: &str = "2030-01-02T03:04:05.678Z";

fn digest(seed: &[u8]) -> Sha256 {
    Sha256::of(seed)
}

fn pending(kind: Kind, plan: Option<PartPlan>) -> UploadRecord {
    let upload_id = UploadId::generate();
    let filename = Filename::parse("report.pdf").unwrap();
    UploadRecord {
        upload_id,
        owner: "alice".into(),
        status: Status::Pending,
        bucket: "bucket".into(),
        key: ObjectKey::new(upload_id, &filename),
        filename,
        content_type: ContentType::parse("application/pdf").unwrap(),
        kind,
        plan,
        plan_measured: false,
        expected_sha256: None,
        sha256: None,
        etag: None,
        version_id: None,
        metadata: Metadata::parse(BTreeMap::from([("project".into(), "x".into())])).unwrap(),
        created_at: "2030-01-01T00:00:00.000Z".into(),
        updated_at: "2030-01-01T00:00:00.000Z".into(),
        verified_at: None,
        error: None,
        expires_at: Some(1_900_000_000),
        lease_until: 0,
        lease_token: None,
        verified_bytes: 0,
        hash_state: None,
        unannounced: false,
    }
}

fn multipart() -> Kind {
    Kind::Multipart {
        s3_upload_id: "s3-upload".into(),
        part_checksums: true,
    }
}

/// Records in every status, with the fields each state can carry.
fn states() -> Vec<UploadRecord> {
    let sized = pending(
        multipart(),
        Some(PartPlan::stored(12 << 20, 5 << 20).unwrap()),
    );
    let open = UploadRecord {
        expected_sha256: Some(digest(b"declared")),
        ..pending(Kind::Post, None)
    };
    let completing = UploadRecord {
        status: Status::Completing,
        plan: Some(PartPlan::stored(7, 1 << 20).unwrap()),
        plan_measured: true,
        expires_at: None,
        lease_until: 1_800_000_060,
        lease_token: Some(LeaseToken::generate()),
        ..open.clone()
    };
    let failing = UploadRecord {
        sha256: Some(digest(b"found")),
        etag: Some("\"etag-1\"".into()),
        version_id: Some("v1".into()),
        error: Some("digest mismatch".into()),
        ..completing.clone()
    };
    let verifying = UploadRecord {
        status: Status::Verifying,
        lease_until: 0,
        lease_token: None,
        etag: Some("\"etag-2\"".into()),
        version_id: Some("v2".into()),
        verified_bytes: 4 << 20,
        hash_state: Some(vec![0, 1, 2, 255]),
        ..completing.clone()
    };
    let verified = UploadRecord {
        status: Status::Verified,
        sha256: Some(digest(b"found")),
        verified_at: Some(NOW.into()),
        hash_state: None,
        unannounced: true,
        ..verifying.clone()
    };
    let aborted = UploadRecord {
        status: Status::Aborted,
        expires_at: None,
        ..sized.clone()
    };
    vec![
        sized, open, completing, failing, verifying, verified, aborted,
    ]
}

fn changes() -> Vec<Change> {
    let saved = |version_id: Option<&str>| Saved {
        etag: "\"etag-3\"".into(),
        version_id: version_id.map(str::to_owned),
        progress: Progress {
            hashed: 8 << 20,
            state: vec![9; 40],
        },
    };
    vec![
        Change::Claim {
            lease_until: 1_800_000_120,
            token: LeaseToken::generate(),
            sized: None,
            expected_sha256: None,
        },
        Change::Claim {
            lease_until: 1_800_000_120,
            token: LeaseToken::generate(),
            sized: Some(PartPlan::stored(0, 1).unwrap()),
            expected_sha256: Some(digest(b"late")),
        },
        Change::Release,
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
        Change::HandOver { saved: None },
        Change::HandOver {
            saved: Some(saved(Some("v3"))),
        },
        Change::HandOver {
            saved: Some(saved(None)),
        },
        Change::Verified {
            sha256: digest(b"verified"),
            etag: "\"etag-4\"".into(),
            version_id: Some("v4".into()),
            verified_at: NOW.into(),
            bytes: 12 << 20,
        },
        Change::Verified {
            sha256: digest(b"verified"),
            etag: "\"etag-4\"".into(),
            version_id: None,
            verified_at: NOW.into(),
            bytes: 0,
        },
        Change::Failing {
            sha256: None,
            etag: None,
            version_id: None,
            error: "S3 holds no parts".into(),
        },
        Change::Failing {
            sha256: Some(digest(b"other")),
            etag: Some("\"etag-5\"".into()),
            version_id: None,
            error: "digest mismatch".into(),
        },
        Change::Failed,
        Change::Aborted,
    ]
}

/// What each change did to the record before `apply` was derived from `writes`.
fn oracle(change: &Change, record: &UploadRecord, now: &str) -> UploadRecord {
    let mut r = record.clone();
    r.status = change.status();
    r.updated_at = now.to_owned();
    if change.is_final() {
        r.expires_at = None;
        r.hash_state = None;
    }
    // One attribute (`in_flight`) holds both the sweep's key and the unannounced mark, so a
    // final record written again (which no guard allows) loses its mark where the record-level
    // apply kept it.
    r.unannounced = change.is_final();
    if change.ends_lease() {
        r.lease_until = 0;
        r.lease_token = None;
    }
    match change.clone() {
        Change::Claim {
            lease_until,
            token,
            sized,
            expected_sha256,
        } => {
            r.lease_until = lease_until;
            r.lease_token = Some(token);
            r.expires_at = None;
            if sized.is_some() {
                r.plan = sized;
                r.plan_measured = true;
            }
            r.expected_sha256 = expected_sha256.or(r.expected_sha256);
        }
        Change::Reopen {
            expires_at,
            unmeasure,
        } => {
            r.expires_at = Some(expires_at);
            if unmeasure {
                r.plan = None;
                r.plan_measured = false;
            }
        }
        Change::Declare { expected_sha256 } => r.expected_sha256 = Some(expected_sha256),
        Change::HandOver { saved: Some(s) } => {
            r.etag = Some(s.etag);
            r.version_id = s.version_id;
            r.verified_bytes = s.progress.hashed;
            r.hash_state = Some(s.progress.state);
        }
        Change::Verified {
            sha256,
            etag,
            version_id,
            verified_at,
            bytes,
        } => {
            r.sha256 = Some(sha256);
            r.etag = Some(etag);
            r.version_id = version_id;
            r.verified_at = Some(verified_at);
            r.verified_bytes = bytes;
        }
        Change::Failing {
            sha256,
            etag,
            version_id,
            error,
        } => {
            r.sha256 = sha256.or(r.sha256);
            if etag.is_some() {
                r.etag = etag;
                r.version_id = version_id;
            }
            r.error = Some(error);
        }
        Change::Release | Change::HandOver { saved: None } | Change::Failed | Change::Aborted => {}
    }
    r
}

#[test]
fn the_derived_apply_does_what_each_change_did() {
    for record in states() {
        for change in changes() {
            assert_eq!(
                change.apply(&record, NOW).unwrap(),
                oracle(&change, &record, NOW),
                "{change:?} on {:?}",
                record.status
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
            let writes = change.writes(NOW);
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
            assert_eq!(to_item(&read), item, "{change:?} on {:?}", record.status);
        }
    }
}

#[test]
fn the_in_flight_index_lists_sessions_in_flight_and_unannounced_verdicts() {
    for record in states() {
        for change in changes() {
            let item = to_item(&change.apply(&record, NOW).unwrap());
            let expected = match change.status() {
                Status::Completing => Some("completing"),
                Status::Verifying => Some("verifying"),
                Status::Verified | Status::Failed | Status::Aborted => Some(ANNOUNCE),
                Status::Pending => None,
            };
            assert_eq!(
                item.get(attr::IN_FLIGHT),
                expected.map(|s| Value::S(s.into())).as_ref(),
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
            for by in [None, Some(record.lease_until), Some(record.lease_until + 1)] {
                for holder in [None, record.lease_token, Some(other)] {
                    guards.push(Guard {
                        status,
                        lease_expired_by: by,
                        holder,
                    });
                }
            }
        }
        for g in guards {
            let was = record.status == g.status
                && g.lease_expired_by.is_none_or(|by| record.lease_until < by)
                && g.holder.is_none_or(|t| record.lease_token == Some(t));
            assert_eq!(g.holds(&record), was, "{g:?} on {:?}", record.status);
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
    assert_eq!(r.status, Status::Completing);
    assert_eq!(r.plan.map(|p| p.size()), Some(10));
    assert!(!r.plan_measured, "items written before plan_measured");
    assert!(!r.unannounced);
    let mut rewritten = item.clone();
    rewritten.insert("plan_measured".into(), Value::Bool(false));
    assert_eq!(to_item(&r), rewritten);
}

#[test]
fn a_missing_or_mistyped_attribute_is_named() {
    let record = states().remove(0);
    for attr in [
        attr::STATUS,
        attr::LEASE_UNTIL,
        attr::METADATA,
        attr::OPEN_SIZE,
    ] {
        let mut item = to_item(&record);
        item.remove(attr);
        assert_eq!(from_item(&item), Err(Malformed(attr.into())));
        item.insert(attr.into(), Value::S("0".into()));
        assert_eq!(from_item(&item), Err(Malformed(attr.into())));
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
