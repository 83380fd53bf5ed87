//! Every state the record can describe, every change it allows from there, and random walks:
//! each item a write leaves reads back, is exactly the encoding of what it reads as, and is one
//! the sweep's index lists while in flight; and items written before transitions cleaned up
//! (stray attributes, a lease stored without a token) never come back as part of another state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{NOW, changes, digest, fanned, multipart, object, pending, states};
use super::*;
use crate::domain::item::Value;
use crate::domain::{FailedVerdict, Failing, Kind, Lease, Pinned, State, Verified};
use crate::domain::{Fault, Hold};

/// Every record state the enum can describe, in many combinations (not only the ones `states`
/// lists): leases held and released, pins with and without progress and version, decided
/// failures with and without a digest, verdicts announced and not.
fn every_state() -> Vec<UploadRecord> {
    let lease = Lease {
        until: 1_800_000_060,
        token: LeaseToken::generate(),
    };
    let pins = |etag: &str| {
        vec![
            None,
            Some(Pinned {
                object: object(etag, None),
                progress: None,
                fanned: None,
            }),
            Some(Pinned {
                object: object(etag, Some("v9")),
                progress: Some(Progress {
                    hashed: 3 << 20,
                    state: vec![7; 12],
                    seal: Some([5; 64]),
                }),
                fanned: None,
            }),
        ]
    };
    // Fan-outs (ends only while `completing`), with and without ends found.
    let fan_outs = |etag: &str| {
        [fanned(&[], 0), fanned(&[(0, 1), (5, 2)], 9 << 20)].map(|f| {
            Some(Pinned {
                object: object(etag, Some("v8")),
                progress: None,
                fanned: Some(f),
            })
        })
    };
    let failings = [
        None,
        Some(Failing {
            error: "size mismatch".into(),
            sha256: None,
        }),
        Some(Failing {
            error: "digest mismatch".into(),
            sha256: Some(digest(b"found")),
        }),
    ];
    let mut states = Vec::new();
    let faults = [
        None,
        Some(Fault {
            cause: "S3 request failed".into(),
            attempts: 2,
        }),
    ];
    for hold in [
        Hold::Released,
        Hold::Leased(lease),
        Hold::BackingOff {
            until: 1_800_000_300,
        },
    ] {
        for pinned in pins("\"p\"").into_iter().chain(fan_outs("\"p\"")) {
            for failing in failings.clone() {
                for fault in faults.clone() {
                    states.push(State::Completing {
                        hold,
                        fault,
                        pinned: pinned.clone(),
                        failing: failing.clone(),
                    });
                }
            }
        }
    }
    for pinned in pins("\"q\"") {
        for resume_by in [0, 1_800_000_600] {
            states.push(State::Verifying {
                pinned: pinned.clone(),
                resume_by,
            });
        }
    }
    for announced in [false, true] {
        for version in [None, Some("v1")] {
            states.push(State::Verified(Verified {
                sha256: digest(b"ok"),
                object: object("\"v\"", version),
                verified_at: NOW.into(),
                bytes: 12,
                announced,
                receipt: version.map(|_| "h.c.s".to_owned()),
            }));
            for sha256 in [None, Some(digest(b"bad"))] {
                states.push(State::Failed(FailedVerdict {
                    error: "mismatch".into(),
                    sha256,
                    object: version.map(|v| object("\"f\"", Some(v))),
                    announced,
                }));
            }
        }
        states.push(State::Aborted { announced });
    }
    states.push(State::Pending { expires_at: 7 });
    let mut records = Vec::new();
    for (kind, plan) in [
        (
            multipart(),
            Some(PartPlan::stored(12 << 20, 5 << 20).unwrap()),
        ),
        (Kind::Post, None),
        (Kind::Post, Some(PartPlan::stored(9, 1 << 20).unwrap())),
    ] {
        for state in &states {
            for expected in [None, Some(digest(b"declared"))] {
                records.push(UploadRecord {
                    expected_sha256: expected,
                    plan_measured: plan.is_some() && kind == Kind::Post,
                    state: state.clone(),
                    ..pending(kind.clone(), plan)
                });
            }
        }
    }
    records
}

fn every_change() -> Vec<Change> {
    let mut all = changes();
    all.push(Change::Failing {
        sha256: None,
        etag: Some("\"etag-6\"".into()),
        version_id: Some("v6".into()),
        error: "the object changed during verification".into(),
        chained: crate::domain::Chained::default(),
    });
    all
}

/// What the sparse in-flight index needs to list a session to the sweep: `in_flight` (the
/// status) and a numeric `lease_until`, both present.
fn sweep_sees(item: &Item) -> bool {
    matches!(item.get(attr::LEASE_UNTIL), Some(Value::N(_)))
        && matches!(item.get(attr::IN_FLIGHT), Some(Value::S(_)))
}

/// item that reads back (never `Malformed`), is exactly the encoding of what it reads back as
/// (nothing left over), and, in flight, is one the sweep's index lists.
#[test]
fn every_allowed_change_from_every_state_leaves_a_readable_exact_item() {
    let mut checked = 0;
    for record in every_state() {
        let stored = to_item(&record);
        assert_eq!(from_item(&stored).as_ref(), Ok(&record));
        for change in every_change() {
            if !change.applies_from(record.status()) {
                continue;
            }
            let mut item = stored.clone();
            for w in change.writes(record.status(), record.upload_id, NOW) {
                w.apply(&mut item);
            }
            let read = from_item(&item)
                .unwrap_or_else(|e| panic!("{e}: {change:?} on {:?}", record.state));
            assert_eq!(to_item(&read), item, "{change:?} on {:?}", record.state);
            if matches!(read.status(), Status::Completing | Status::Verifying) {
                assert!(sweep_sees(&item), "{change:?} on {:?}", record.state);
            }
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked}");
}

/// and exact, and the sweep's index keys present whenever a session is in flight.
#[test]
fn random_walks_of_allowed_changes_keep_items_readable() {
    let mut x: u32 = 0x2545_F491;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize % n
    };
    let starts = every_state();
    let changes = every_change();
    for _ in 0..3000 {
        let mut item = to_item(&starts[next(starts.len())]);
        for _ in 0..10 {
            let read = from_item(&item).unwrap();
            let (status, id) = (read.status(), read.upload_id);
            let allowed: Vec<_> = changes.iter().filter(|c| c.applies_from(status)).collect();
            if allowed.is_empty() {
                break;
            }
            let change = allowed[next(allowed.len())];
            for w in change.writes(status, id, NOW) {
                w.apply(&mut item);
            }
            let read = from_item(&item).unwrap_or_else(|e| panic!("{e}: {change:?}"));
            assert_eq!(to_item(&read), item, "{change:?}");
            if matches!(read.status(), Status::Completing | Status::Verifying) {
                assert!(sweep_sees(&item), "{change:?}");
            }
        }
    }
}

/// ignores, on a `verifying` or `pending` item, the attributes that state does not have (so an
/// item from before transitions cleaned up reads as clean), but `Writes::clean(Completing)` keeps
/// `error`, `sha256`, `etag`, `version_id` and `hash_state` whatever the claim came from. So a
/// `verifying` item with a stray `error` reads as a clean hand-over, and the verifier's `Claim`
/// turns it into a decided `failed` verdict that `finish` carries out (purging the object) without
/// anybody having decided it; a `pending` item with a stray `etag`/`hash_state` is claimed with a
/// pin and saved progress of another object.
#[test]
fn a_claim_never_resurrects_what_its_source_state_does_not_read() {
    let s = |v: &str| Value::S(v.into());
    let all = states();
    let (pending, verifying) = (&all[0], &all[4]);
    let strays = [
        (attr::ERROR, s("a verdict from an older item")),
        (attr::SHA256, s(&digest(b"stray").to_hex())),
        (attr::ETAG, s("\"stray\"")),
        (attr::VERSION_ID, s("stray-version")),
        (attr::HASH_STATE, s("AAEC")),
    ];
    for record in [pending, verifying] {
        let mut item = to_item(record);
        for (attr, v) in strays.clone() {
            item.entry(attr.to_owned()).or_insert(v);
        }
        // As read, the stray attributes are not there.
        let read = from_item(&item).unwrap();
        assert_eq!(read.error(), None);
        let claim = Change::Claim {
            lease_until: 1_800_000_120,
            token: LeaseToken::generate(),
            sized: None,
            expected_sha256: None,
            part_states: None,
        };
        for w in claim.writes(record.status(), record.upload_id, NOW) {
            w.apply(&mut item);
        }
        let claimed = from_item(&item).unwrap();
        assert_eq!(
            claimed.failing(),
            None,
            "a claim from {:?} decided a failure nobody decided",
            record.status()
        );
        assert_eq!(
            claimed.object(),
            read.object(),
            "a claim from {:?} pinned an object its record did not name",
            record.status()
        );
    }
}

/// tokens (bac3eb9) hold `lease_until` without `lease_token`; `from_item` reads them as
/// `lease: None`, so `lease_until()` is 0 while the stored lease still runs: `settle` sees an
/// expired lease and calls `take_over`, whose guard (`lease_until < now`, evaluated on the item)
/// is refused, and loops get → take_over with no sleep until the stored lease runs out
/// (`COMPLETION_LEASE_SECONDS`, 900 s by default); the verifier acknowledges the delivery as
/// "another caller took it". The previous reader kept `lease_until` as stored.
#[test]
fn a_lease_stored_without_a_token_still_runs_until_it_runs_out() {
    let all = states();
    let mut item = to_item(&all[2]);
    item.remove(attr::LEASE_TOKEN);
    let until = 1_800_000_060;
    item.insert(attr::LEASE_UNTIL.into(), Value::N(until.into()));
    let read = from_item(&item).unwrap();
    let now = until - 100;
    let expired_by_now = Guard {
        status: Status::Completing,
        lease_expired_by: Some(now),
        holder: None,
    };
    assert!(
        !expired_by_now.holds_on(&item),
        "the store refuses a take-over"
    );
    assert!(
        read.lease_until() >= now,
        "the record says the lease ran out ({}), the item that it runs until {until}",
        read.lease_until()
    );
}
