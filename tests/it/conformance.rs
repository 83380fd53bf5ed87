//! One encoding of the state machine, held to a DynamoDB that serializes the writes to each item:
//! dynalite (`scripts/dynalite.sh`, which `make test` starts and names in `DYNALITE_ENDPOINT`).
//! Every `Change`, from records in every state and under guards that hold and guards that do
//! not, goes through the in-memory store and through the DynamoDB adapter: the records written
//! and stored must be equal, the raw items too (`in_flight`, which no record field shows,
//! included), and a refused guard refused by both. Then racing pairs of changes on one record,
//! sent at once many times: each round must end as the memory store ends one order or the other.
//! Without `DYNALITE_ENDPOINT` it prints that it skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use futures::StreamExt as _;
use vu_aws::DynamoSessions;
use vu_core::domain::{ChainState, Chained, Fault, Hold, PartStates};
use vu_core::domain::{
    Change, ContentType, FailedVerdict, Failing, Fanned, Filename, Guard, Kind, Lease, LeaseToken,
    Metadata, ObjectKey, ObjectVersion, PartPlan, Pinned, Progress, Saved, SegmentEnd, Sha256,
    State, Status, UploadId, UploadRecord, Value, Verified, to_item,
};
use vu_core::memory::MemorySessions;
use vu_core::ports::{PortError, SessionStore};

use crate::helpers::table;

mod index;
mod races;

/// The epoch second the changes are written at (`updated_at` is `NOW` as text).
const EPOCH: i64 = 1_900_000_000;
const NOW: &str = "2030-03-17T17:46:40.000Z";

/// An SDK configuration as `AWS_ENDPOINT_URL_DYNAMODB=dynalite` would make it, whatever else
/// the environment points at (moto, in `make test`).
#[derive(Debug)]
struct DynamoDbAt(String);

impl LoadServiceConfig for DynamoDbAt {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        (key.service_id() == "DynamoDB" && key.env() == "AWS_ENDPOINT_URL").then(|| self.0.clone())
    }
}

struct Dynalite {
    sessions: DynamoSessions,
    /// For the raw items: what the adapter wrote, not what it reads back.
    client: aws_sdk_dynamodb::Client,
}

/// dynalite's endpoint (`DYNALITE_ENDPOINT`); unset, `None` after printing that `test` skipped.
pub(crate) fn dynalite_endpoint(test: &str) -> Option<String> {
    let endpoint = std::env::var("DYNALITE_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    if endpoint.is_none() {
        println!("{test}: skipped: DYNALITE_ENDPOINT is not set (`make test` sets it)");
    }
    endpoint
}

/// An SDK configuration whose DynamoDB is at `endpoint` (dynalite), with credentials of its own.
pub(crate) async fn dynamodb_at(endpoint: String) -> aws_config::SdkConfig {
    // dynalite takes any credentials; none of the environment's are needed.
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "dynalite"))
        .load()
        .await
        .into_builder()
        .service_config(DynamoDbAt(endpoint))
        .build()
}

impl Dynalite {
    async fn new() -> Option<Self> {
        let sdk = dynamodb_at(dynalite_endpoint("conformance")?).await;
        Some(Self {
            sessions: DynamoSessions::new(&sdk, table()),
            client: aws_sdk_dynamodb::Client::new(&sdk),
        })
    }

    async fn raw(&self, id: UploadId) -> Option<HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(table())
            .key("upload_id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

/// The core's item as DynamoDB attributes, translated here apart from the adapter's translation.
fn attributes(r: &UploadRecord) -> HashMap<String, AttributeValue> {
    to_item(r)
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::S(s) => AttributeValue::S(s),
                Value::N(n) => AttributeValue::N(n.to_string()),
                Value::Bool(b) => AttributeValue::Bool(b),
                Value::M(m) => AttributeValue::M(
                    m.into_iter()
                        .map(|(k, v)| (k, AttributeValue::S(v)))
                        .collect(),
                ),
            };
            (k, v)
        })
        .collect()
}

fn pending(kind: Kind, plan: Option<PartPlan>) -> UploadRecord {
    let upload_id = UploadId::generate();
    let filename = Filename::parse("report 2030.pdf").unwrap();
    UploadRecord {
        upload_id,
        owner: "alice".into(),
        bucket: "verified-uploads".into(),
        key: ObjectKey::new(upload_id, &filename),
        filename,
        content_type: ContentType::parse("application/pdf").unwrap(),
        kind,
        plan,
        plan_measured: false,
        expected_sha256: None,
        part_states: PartStates::default(),
        chained: Chained::default(),
        metadata: Metadata::parse(BTreeMap::from([("project".into(), "apollo".into())])).unwrap(),
        created_at: "2030-03-17T16:00:00.000Z".into(),
        updated_at: "2030-03-17T16:00:00.000Z".into(),
        state: State::Pending {
            expires_at: EPOCH + 86_400,
        },
    }
}

fn object(etag: &str, version_id: Option<&str>) -> ObjectVersion {
    ObjectVersion {
        etag: etag.into(),
        version_id: version_id.map(str::to_owned),
    }
}

fn holding(until: i64, pinned: Option<Pinned>, failing: Option<Failing>) -> State {
    State::Completing {
        hold: Hold::Leased(Lease {
            until,
            token: LeaseToken::generate(),
        }),
        fault: None,
        pinned,
        failing,
    }
}

/// The same record under a new id, so every case and round writes an item of its own.
fn fresh(r: &UploadRecord) -> UploadRecord {
    let upload_id = UploadId::generate();
    UploadRecord {
        upload_id,
        key: ObjectKey::new(upload_id, &r.filename),
        ..r.clone()
    }
}

/// Records in every status, with what each state carries.
fn states() -> Vec<(&'static str, UploadRecord)> {
    let sized = pending(
        Kind::Multipart {
            s3_upload_id: "s3-upload-1".into(),
            part_checksums: true,
        },
        Some(PartPlan::stored(12 << 20, 5 << 20).unwrap()),
    );
    let open = UploadRecord {
        expected_sha256: Some(Sha256::of(b"declared")),
        metadata: Metadata::default(),
        ..pending(Kind::Post, None)
    };
    let completing = UploadRecord {
        plan: Some(PartPlan::stored(7 << 20, 5 << 20).unwrap()),
        plan_measured: true,
        state: holding(EPOCH + 60, None, None),
        ..open.clone()
    };
    let expired = UploadRecord {
        state: holding(EPOCH - 1, None, None),
        ..completing.clone()
    };
    let verdict = Failing {
        error: "the object's SHA-256 is not the declared one".into(),
        sha256: Some(Sha256::of(b"found")),
    };
    let failing = UploadRecord {
        state: holding(
            EPOCH + 60,
            Some(Pinned {
                object: object("\"etag-1-2\"", Some("v1")),
                progress: None,
                fanned: None,
            }),
            Some(verdict.clone()),
        ),
        ..completing.clone()
    };
    let verifying = UploadRecord {
        state: State::Verifying {
            pinned: Some(Pinned {
                object: object("\"etag-2\"", Some("v2")),
                progress: Some(Progress {
                    hashed: 4 << 20,
                    state: (0..=255).collect(),
                    seal: None,
                }),
                fanned: None,
            }),
            resume_by: EPOCH + 900,
        },
        ..completing.clone()
    };
    // A fan-out by segments with two ends found (`segment_ends`, its own binary attribute).
    let fanned_out = UploadRecord {
        part_states: two_states(),
        state: holding(
            EPOCH + 60,
            Some(Pinned {
                object: object("\"etag-6\"", Some("v6")),
                progress: None,
                fanned: Some(fan_out_ends()),
            }),
            None,
        ),
        ..completing.clone()
    };
    let verified = UploadRecord {
        state: State::Verified(Verified {
            sha256: Sha256::of(b"found"),
            object: object("\"etag-2\"", Some("v2")),
            verified_at: NOW.into(),
            bytes: 7 << 20,
            announced: false,
            receipt: Some(RECEIPT.into()),
        }),
        ..verifying.clone()
    };
    let failed = UploadRecord {
        state: State::Failed(FailedVerdict {
            error: verdict.error,
            sha256: verdict.sha256,
            object: Some(object("\"etag-1-2\"", Some("v1"))),
            announced: true,
        }),
        ..failing.clone()
    };
    let aborted = UploadRecord {
        state: State::Aborted { announced: true },
        ..sized.clone()
    };
    vec![
        ("pending sized", sized),
        ("pending open size", open),
        ("completing", completing),
        ("completing, lease run out", expired),
        ("completing, failing", failing),
        ("completing, fanned out by segments", fanned_out),
        ("verifying with saved progress", verifying),
        ("verified, unannounced", verified),
        ("failed, announced", failed),
        ("aborted", aborted),
    ]
}

/// Chaining values as a claim keeps them (binary, base64 in a string attribute).
fn two_states() -> PartStates {
    let mut s = PartStates::default();
    s.insert(1, ChainState::INITIAL);
    s.insert(9_999, ChainState::from_bytes([0xEE; 32]));
    s
}

fn claim(token: LeaseToken) -> Change {
    Change::Claim {
        lease_until: EPOCH + 120,
        token,
        sized: None,
        expected_sha256: None,
        part_states: None,
    }
}

fn verified(version_id: Option<&str>) -> Change {
    Change::Verified {
        sha256: Sha256::of(b"verified"),
        etag: "\"etag-4\"".into(),
        version_id: version_id.map(str::to_owned),
        verified_at: NOW.into(),
        bytes: 12 << 20,
        chained: Chained {
            segments: 5,
            mismatch_part: None,
        },
        // Present when the upload has a version (what a versioned bucket gets), so both the
        // write and its absence go through DynamoDB.
        receipt: version_id.map(|_| RECEIPT.to_owned()),
    }
}

/// A receipt's shape and length (a compact JWS of about 800 characters), stored as DynamoDB
/// stores it.
const RECEIPT: &str = concat!(
    "eyJhbGciOiJFUzI1NiIsInR5cCI6InZ1LXJlY2VpcHQrand0Iiwia2lkIjoiT2ZXVkVjLTdfVFNxVmxVVnFQTGVSTXRBNGFiaHV3SmRfT2ZSR1ZPY01zayJ9",
    ".eyJpc3MiOiJ2ZXJpZmllZC11cGxvYWRzIiwic3ViIjoiMDFKRFo0UThYNk0zVjlUMks3UjVOMUIwQ0QiLCJpYXQiOjE3NjUwMDAwMDB9",
    ".MEUCIQDx7m4_signature_bytes_in_base64url_000000000000000000000000000000000000000000000000000"
);

/// Two segments' ends found, over 10 MiB: one unsealed (a service without receipts), one
/// sealed.
fn fan_out_ends() -> Fanned {
    let mut f = Fanned {
        hashed: 10 << 20,
        ..Fanned::default()
    };
    f.ends.insert(0, [0xA5; 32]);
    let sealed = SegmentEnd {
        end: [0x3C; 32],
        seal: Some([0x5E; 64]),
    };
    f.ends.insert_sealed(2, sealed);
    f
}

/// Every variant, with the field values that take different paths.
fn changes() -> Vec<Change> {
    let saved = |version_id: Option<&str>| Saved {
        etag: "\"etag-3\"".into(),
        version_id: version_id.map(str::to_owned),
        progress: Progress {
            hashed: 8 << 20,
            state: vec![7; 112],
            seal: Some([9; 64]),
        },
    };
    vec![
        claim(LeaseToken::generate()),
        Change::Claim {
            lease_until: EPOCH + 120,
            token: LeaseToken::generate(),
            sized: Some(PartPlan::stored(0, 1).unwrap()),
            expected_sha256: Some(Sha256::of(b"declared at completion")),
            part_states: Some(two_states()),
        },
        Change::Release {
            fault: None,
            retry_at: None,
        },
        Change::Release {
            fault: Some(Fault {
                cause: "S3 request failed".into(),
                attempts: 2,
            }),
            retry_at: Some(EPOCH + 90),
        },
        Change::Reopen {
            expires_at: EPOCH + 86_400,
            unmeasure: false,
        },
        Change::Reopen {
            expires_at: EPOCH + 86_400,
            unmeasure: true,
        },
        Change::Declare {
            expected_sha256: Sha256::of(b"declared later"),
        },
        Change::HandOver {
            saved: None,
            resume_by: EPOCH + 900,
        },
        Change::HandOver {
            saved: Some(saved(Some("v3"))),
            resume_by: EPOCH + 900,
        },
        Change::HandOver {
            saved: Some(saved(None)),
            resume_by: EPOCH + 900,
        },
        verified(Some("v4")),
        verified(None),
        Change::Failing {
            sha256: None,
            etag: None,
            version_id: None,
            error: "S3 holds no parts".into(),
            chained: Chained::default(),
        },
        Change::Failing {
            sha256: Some(Sha256::of(b"other")),
            etag: Some("\"etag-5\"".into()),
            version_id: None,
            error: "digest mismatch".into(),
            chained: Chained {
                segments: 3,
                mismatch_part: Some(2),
            },
        },
        Change::Failed {
            error: "the object's SHA-256 is not the declared one".into(),
            sha256: Some(Sha256::of(b"found")),
        },
        Change::Aborted,
        Change::FanOut {
            etag: "\"etag-6\"".into(),
            version_id: Some("v6".into()),
            lease_until: EPOCH + 300,
        },
        Change::FanOut {
            etag: "\"etag-7\"".into(),
            version_id: None,
            lease_until: EPOCH + 300,
        },
        // Over exactly the ends the fanned-out state holds (written there), and over none
        // (refused there: another worker wrote first).
        Change::SegmentDone {
            etag: "\"etag-6\"".into(),
            version_id: Some("v6".into()),
            before: fan_out_ends(),
            after: {
                let mut f = fan_out_ends();
                let sealed = SegmentEnd {
                    end: [0x77; 32],
                    seal: Some([0x61; 64]),
                };
                f.ends.insert_sealed(1, sealed);
                f.hashed += 5 << 20;
                f
            },
            lease_until: EPOCH + 360,
        },
        Change::SegmentDone {
            etag: "\"etag-6\"".into(),
            version_id: Some("v6".into()),
            before: Fanned::default(),
            after: fan_out_ends(),
            lease_until: EPOCH + 360,
        },
    ]
}

/// Guards that hold on `r` and guards that do not: status, lease run out (or not), holder.
fn guards(r: &UploadRecord) -> Vec<Guard> {
    let other = match r.status() {
        Status::Pending => Status::Completing,
        _ => Status::Pending,
    };
    let lease = |by| Guard {
        lease_expired_by: Some(by),
        ..Guard::status(r.status())
    };
    vec![
        Guard::status(r.status()),
        Guard::status(other),
        lease(r.lease_until() + 1),
        lease(r.lease_until()),
        Guard::held(r),
        Guard {
            holder: Some(LeaseToken::generate()),
            ..Guard::status(r.status())
        },
    ]
}

/// Whether the write went through; a refusal other than the guard's fails the test.
fn written(outcome: &Result<UploadRecord, PortError>) -> Option<&UploadRecord> {
    match outcome {
        Ok(r) => Some(r),
        Err(PortError::PreconditionFailed) => None,
        Err(e) => panic!("neither written nor refused by its guard: {e:?}"),
    }
}

/// One change on one record through both stores; the differences found.
async fn compare(db: &Dynalite, start: &UploadRecord, guard: Guard, change: Change) -> Vec<String> {
    let r = fresh(start);
    let memory = MemorySessions::new();
    memory.put(r.clone());
    db.sessions.create(&r).await.unwrap();
    let id = r.upload_id;
    let m = memory.transition(id, guard, change.clone(), NOW).await;
    let d = db.sessions.transition(id, guard, change.clone(), NOW).await;
    let case = format!("{change:?} under {guard:?} on {:?}", r.status());
    let mut differences = Vec::new();
    if written(&m) != written(&d) {
        differences.push(format!("{case}: memory {m:?}, DynamoDB {d:?}"));
    }
    let stored = memory.peek(id).unwrap();
    let read = db.sessions.get(id).await.unwrap();
    if read.as_ref() != Some(&stored) {
        differences.push(format!(
            "{case}: stored {stored:?}, DynamoDB reads {read:?}"
        ));
    }
    let raw = db.raw(id).await;
    if raw.as_ref() != Some(&attributes(&stored)) {
        differences.push(format!(
            "{case}: item {:?}, DynamoDB holds {raw:?}",
            to_item(&stored)
        ));
    }
    differences
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_encodes_alike_in_memory_and_in_dynamodb() {
    let Some(db) = Dynalite::new().await else {
        return;
    };
    let db = Arc::new(db);
    let (states, changes) = (states(), changes());
    let mut cases = Vec::new();
    for (_, r) in &states {
        for guard in guards(r) {
            for change in &changes {
                cases.push((r.clone(), guard, change.clone()));
            }
        }
    }
    let compared = cases.len();
    let mut differences: Vec<String> = futures::stream::iter(cases)
        .map(|(r, guard, change)| {
            let db = db.clone();
            async move { compare(&db, &r, guard, change).await }
        })
        .buffer_unordered(8)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    // No item: DynamoDB's condition fails as a condition, as the memory store's does.
    for change in &changes {
        let id = UploadId::generate();
        let guard = Guard::status(Status::Pending);
        let d = db.sessions.transition(id, guard, change.clone(), NOW).await;
        let m = MemorySessions::new()
            .transition(id, guard, change.clone(), NOW)
            .await;
        if !matches!(
            (&m, &d),
            (
                Err(PortError::PreconditionFailed),
                Err(PortError::PreconditionFailed)
            )
        ) {
            differences.push(format!(
                "{change:?} on no item: memory {m:?}, DynamoDB {d:?}"
            ));
        }
    }
    let shown = races::run(&db).await;
    differences.extend(shown.differences);
    println!(
        "conformance: {} changes x {} states compared ({compared} cases under {} guards each, \
         and {} on no item), {} races ({}), {} differences",
        changes.len(),
        states.len(),
        compared / (changes.len() * states.len()),
        changes.len(),
        shown.races,
        shown.rounds,
        differences.len(),
    );
    for line in &shown.pairs {
        println!("  {line}");
    }
    for d in differences.iter().take(10) {
        println!("  {d}");
    }
    assert!(differences.is_empty(), "{} differences", differences.len());
}
