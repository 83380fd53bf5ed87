//! The verifier's queue end to end against the emulator: S3's notifications land in it (as
//! scripts/bootstrap.py and template.yaml configure), the local server consumes it as Lambda's
//! event source mapping does, and the sweep finds, through the table's in-flight index, what
//! nothing else would move. Tests that consume a queue use a bucket and queue of their own.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use serde_json::{Value, json};
use vu_aws::SqsQueue;
use vu_contract::queue::QueueMessage;
use vu_core::service::{Budget, Uploads};
use vu_functions::config::Limits;
use vu_functions::lambda::verifier::{Invocation, Verifier};
use vu_functions::local;

/// The local server over `stack`: the API, and the verifier consuming the stack's queue.
pub(crate) async fn local_server(stack: &EventsStack, limits: Limits) -> (Arc<Uploads>, Client) {
    let queue = Arc::new(SqsQueue::new(&sdk().await, &stack.queue_url));
    let uploads = Arc::new(
        service_on(&stack.bucket, limits, small_ranges())
            .await
            .with_verifier(queue.clone()),
    );
    tokio::spawn(local::run_verifier(
        uploads.clone(),
        queue,
        stack.bucket.clone(),
        local::run_for(&test_limits()),
    ));
    (uploads.clone(), Client::over(uploads))
}

/// Polls `check` every 100 ms for up to 20 s; the last value it returned.
pub(crate) async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, T)>,
{
    let mut last = check().await;
    for _ in 0..200 {
        if last.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = check().await;
    }
    last.1
}

/// What the table holds for `id`, read without the owner's read (which would verify a posted
/// object itself): the fields a verdict writes.
async fn record_of(uploads: &Uploads, id: &str) -> Value {
    let id = vu_core::domain::UploadId::parse(id).unwrap();
    let r = uploads.get("anonymous", id).await.unwrap();
    json!({
        "status": r.status().as_str(),
        "sha256": r.sha256().map(|d| d.to_hex()),
        "version_id": r.version_id(),
        "error": r.error(),
        "updated_at": r.updated_at,
    })
}

#[tokio::test]
async fn a_large_object_verifies_locally_without_any_manual_step() {
    let stack = EventsStack::new("vu-large").await;
    let every_object_is_large = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    let (uploads, client) = local_server(&stack, every_object_is_large).await;
    let part = 5 * MIB;
    let file = data(part + 123_456, 51);
    let c = client
        .create(json!({"filename": "big.bin", "size": file.len(), "part_size": part, "sha256": sha256_hex(&file)}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, part).await;
    let id = c.body["upload_id"].as_str().unwrap();
    let handed = client.complete(id).await;
    assert_eq!(
        (handed.status.as_u16(), handed.body["status"].clone()),
        (202, json!("verifying"))
    );
    let record = eventually(|| async {
        let r = record_of(&uploads, id).await;
        (r["status"] == "verified" || r["status"] == "failed", r)
    })
    .await;
    assert_eq!(record["status"], "verified", "{record}");
    assert_eq!(record["sha256"], sha256_hex(&file));
}

#[tokio::test]
async fn a_posted_form_verifies_on_its_event_and_a_replay_is_deleted_on_arrival() {
    let stack = EventsStack::new("vu-replay").await;
    let (uploads, client) = local_server(&stack, test_limits()).await;
    let (id, key, signed) = signed_form(&client, "a.txt", "").await;
    let a = data(30_000, 71);
    post_signed(&signed, &a).await;
    // Nobody asks: S3's notification alone starts the verification.
    let verified = eventually(|| async {
        let r = record_of(&uploads, &id).await;
        (r["status"] == "verified", r)
    })
    .await;
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["sha256"], sha256_hex(&a));

    let b = data(30_000, 72);
    post_signed(&signed, &b).await;
    let current = eventually(|| async {
        let sha = stack.current_sha256(&key).await;
        (sha.as_deref() == Some(sha256_hex(&a).as_str()), sha)
    })
    .await;
    assert_eq!(
        current,
        Some(sha256_hex(&a)),
        "the replay went when its event arrived"
    );
    assert_eq!(record_of(&uploads, &id).await, verified, "record unchanged");
}

#[tokio::test]
async fn a_form_replayed_after_a_failed_verification_is_deleted_on_arrival() {
    let stack = EventsStack::new("vu-failed").await;
    let (uploads, client) = local_server(&stack, test_limits()).await;
    let wrong = sha256_hex(b"something else");
    let (id, key, signed) =
        signed_form(&client, "a.txt", &format!("&metadata%5Bsha256%5D={wrong}")).await;
    post_signed(&signed, &data(20_000, 73)).await;
    let failed = eventually(|| async {
        let r = record_of(&uploads, &id).await;
        (r["status"] == "failed", r)
    })
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        stack.current_sha256(&key).await,
        None,
        "the unverified object went"
    );

    post_signed(&signed, &data(20_000, 74)).await;
    let current = eventually(|| async {
        let sha = stack.current_sha256(&key).await;
        (sha.is_none(), sha)
    })
    .await;
    assert_eq!(current, None, "nothing unverified stays under the key");
    assert_eq!(record_of(&uploads, &id).await, failed, "record unchanged");
}

#[tokio::test]
async fn the_sweep_finds_only_sessions_whose_lease_ran_out() {
    // No verifier to start: every hand-over's start is lost, as when the queue is unreachable.
    let handing_over = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    let uploads = uploads_with(handing_over, small_ranges()).await;
    let client = Client::over(uploads.clone());
    let file = data(10_000, 75);
    let create = || async {
        let c = client
            .create(json!({"filename": "s.bin", "size": file.len()}))
            .await;
        assert_eq!(c.status, 201, "{}", c.body);
        c.body
    };
    let stuck = create().await;
    put_all(&stuck, &file, file.len()).await;
    let stuck_id = stuck["upload_id"].as_str().unwrap();
    assert_eq!(client.complete(stuck_id).await.status, 202);
    let pending = create().await;
    let pending_id = pending["upload_id"].as_str().unwrap();

    let started = Arc::new(Scheduled::default());
    // While its continuation may still be queued (a lease from the hand-over), it is not sent
    // again; after that, it is.
    let now = service_with(test_limits(), small_ranges())
        .await
        .with_verifier(started.clone());
    let early = now.sweep(10_000, Budget::verifier(None)).await.unwrap();
    assert!(
        !early.iter().any(|s| s.to_string() == stuck_id),
        "{early:?}"
    );
    let later = vu_core::service::Clock::default();
    later.advance(test_limits().completion_lease + Duration::from_secs(1));
    let sweeper = service_with(test_limits(), small_ranges())
        .await
        .with_verifier(started.clone())
        .with_clock(later);
    let swept: Vec<String> = sweeper
        .sweep(10_000, Budget::verifier(None))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(swept.iter().any(|s| s == stuck_id), "{swept:?}");
    assert!(!swept.iter().any(|s| s == pending_id), "{swept:?}");
    assert!(
        started
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.to_string() == stuck_id)
    );

    // Re-driven, it verifies; verified, it leaves the index.
    let verifier = service_with(test_limits(), small_ranges()).await;
    let id = vu_core::domain::UploadId::parse(stuck_id).unwrap();
    verifier
        .continue_verification(id, Budget::verifier(None))
        .await
        .unwrap();
    assert_eq!(client.record(stuck_id).await.body["status"], "verified");
    let again: Vec<String> = sweeper
        .sweep(10_000, Budget::verifier(None))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(!again.iter().any(|s| s == stuck_id), "{again:?}");
}

#[tokio::test]
async fn a_queue_batch_fails_only_the_messages_that_failed() {
    let path = std::path::Path::new(crate::helpers::REPO).join("events/sqs-verifier-batch.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // A fourth message that is nothing the verifier knows.
    let mut garbage = event["Records"][0].clone();
    garbage["messageId"] = json!("garbage");
    garbage["body"] = json!("{\"hello\": 1");
    event["Records"].as_array_mut().unwrap().push(garbage);
    let Ok(Invocation::Messages(messages)) = Invocation::parse(event) else {
        panic!("an SQS event is a batch of messages");
    };
    assert_eq!(messages.len(), 4);
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let verifier = Verifier {
        uploads: &uploads,
        bucket: &bucket(),
        continuation: &Scheduled::default(),
    };
    // The S3 notification (a key with no session), the continuation (no such upload) and S3's
    // test message are acknowledged; the garbage is delivered again, then dead-lettered.
    let failed = verifier.handle_messages(messages, None).await;
    assert_eq!(failed, ["garbage"]);
    let extra = QueueMessage {
        id: "nested".into(),
        body: json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}).to_string(),
    };
    assert_eq!(
        verifier.handle_messages(vec![extra], None).await,
        ["nested"]
    );
}

/// A session left in flight by a release from before the sweep's index has no `in_flight`:
/// `scripts/backfill_in_flight.py` (README, upgrading) makes the sweep see it.
#[tokio::test]
async fn a_session_in_flight_from_before_the_index_is_swept_once_backfilled() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let uploads = uploads_with(test_limits(), small_ranges()).await;
    let client = Client::over(uploads.clone());
    let file = data(10_000, 90);
    let c = client
        .create(json!({"filename": "old.bin", "size": file.len()}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let id = c.body["upload_id"].as_str().unwrap().to_owned();
    // What the previous release wrote when it handed over: `verifying`, lease 0, no `in_flight`.
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .update_item()
        .table_name(table())
        .key("upload_id", AttributeValue::S(id.clone()))
        .update_expression("SET #s = :v, lease_until = :z REMOVE expires_at, in_flight")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":v", AttributeValue::S("verifying".into()))
        .expression_attribute_values(":z", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let swept = |uploads: Arc<Uploads>| async move {
        uploads
            .sweep(10_000, Budget::verifier(None))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let before = swept(uploads.clone()).await;
    assert!(!before.contains(&id), "invisible before the backfill");
    let root = std::path::Path::new(crate::helpers::REPO);
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/backfill_in_flight.py"))
        .arg(table())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = swept(uploads.clone()).await;
    assert!(after.contains(&id), "{after:?}");
}

/// A burst of hand-overs waits in the queue: the local server runs a bounded number of
/// verifications at once (two batches of four), as a few Lambda instances would.
#[tokio::test]
async fn the_local_server_bounds_how_many_verifications_run_at_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use vu_core::ports::Continuation as _;
    let stack = EventsStack::new("vu-burst").await;
    let every_object_is_large = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    // Handed over with no verifier to start: the messages are sent below, all at once.
    let setup = uploads_on(&stack, every_object_is_large.clone()).await;
    let client = Client::over(setup);
    let file = data(3 * MIB, 93);
    let mut ids = Vec::new();
    for _ in 0..24 {
        let c = client
            .create(json!({"filename": "burst.bin", "size": file.len()}))
            .await;
        assert_eq!(c.status, 201, "{}", c.body);
        put_all(&c.body, &file, file.len()).await;
        let id = c.body["upload_id"].as_str().unwrap().to_owned();
        assert_eq!(client.complete(&id).await.status, 202);
        ids.push(id);
    }
    let queue = Arc::new(SqsQueue::new(&sdk().await, &stack.queue_url));
    for id in &ids {
        let id = vu_core::domain::UploadId::parse(id).unwrap();
        queue.schedule(id).await.unwrap();
    }
    let uploads = uploads_on(&stack, every_object_is_large).await;
    tokio::spawn(local::run_verifier(
        uploads,
        queue,
        stack.bucket.clone(),
        local::run_for(&test_limits()),
    ));
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    // The index's key is sharded by upload id: these sessions' shards of `status`.
    let shards = |status: &str| {
        let keys: std::collections::BTreeSet<String> = ids
            .iter()
            .map(|id| {
                let id = vu_core::domain::UploadId::parse(id).unwrap();
                format!("{status}#{:02}", vu_core::domain::shard(id))
            })
            .collect();
        keys
    };
    // Every shard queried at once: one sample costs one round trip, so a sample is short
    // beside a verification (sequential queries let a whole batch run between two samples on
    // a loaded machine, and the sampler saw none).
    let in_flight = |status: &'static str| {
        let (ddb, ids, keys) = (ddb.clone(), ids.clone(), shards(status));
        async move {
            let queries = keys.into_iter().map(|key| {
                ddb.query()
                    .table_name(table())
                    .index_name("in_flight-lease_until")
                    .key_condition_expression("in_flight = :s")
                    .expression_attribute_values(":s", AttributeValue::S(key))
                    .send()
            });
            futures::future::join_all(queries)
                .await
                .into_iter()
                .map(|out| {
                    out.unwrap()
                        .items()
                        .iter()
                        .filter_map(|i| i.get("upload_id")?.as_s().ok())
                        .filter(|id| ids.contains(id))
                        .count()
                })
                .sum::<usize>()
        }
    };
    let mut peak = 0;
    for _ in 0..3000 {
        let running = in_flight("completing").await;
        peak = peak.max(running);
        if running == 0 && in_flight("verifying").await == 0 {
            break;
        }
    }
    assert!(peak > 0, "the verifications ran");
    assert!(peak <= 8, "{peak} verifications ran at once");
    assert_eq!(in_flight("verifying").await, 0, "every one finished");
}

async fn uploads_on(stack: &EventsStack, limits: Limits) -> Arc<Uploads> {
    Arc::new(service_on(&stack.bucket, limits, small_ranges()).await)
}
