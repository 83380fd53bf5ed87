//! Verification under real faults: a TCP proxy between the SDK and the emulator cuts or stalls
//! connections mid-body, or lets the object be overwritten mid-read; and verification across
//! invocations that stop at a (tiny) deadline and continue from the saved SHA-256 state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vu_aws::{DynamoSessions, S3Objects};
use vu_core::service::Uploads;
use vu_functions::config::Limits;
use vu_functions::lambda::verifier::{Invocation, Verifier};

type Hook = Box<dyn FnOnce() -> tokio::task::JoinHandle<()> + Send>;

/// What the proxy does to a connection once it has carried `after` response bytes.
#[derive(Default)]
struct Faults {
    after: usize,
    cuts: AtomicUsize,
    stalls: AtomicUsize,
    hook: Mutex<Option<Hook>>,
}

async fn proxy(upstream: String, faults: Arc<Faults>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let faults = faults.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(&upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let requests = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                let mut carried = 0usize;
                let mut tripped = false;
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    carried += n;
                    if tripped || carried < faults.after {
                        continue;
                    }
                    tripped = true;
                    let take = |c: &AtomicUsize| {
                        c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                            .is_ok()
                    };
                    if take(&faults.cuts) {
                        break;
                    }
                    if take(&faults.stalls) {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        break;
                    }
                    let hook = faults.hook.lock().unwrap().take();
                    if let Some(hook) = hook {
                        hook().await.unwrap();
                    }
                }
                requests.abort();
            });
        }
    });
    url
}

/// The upload service with every AWS call going through `endpoint`.
async fn uploads_via(endpoint: &str, limits: Limits) -> Arc<Uploads> {
    let sdk = aws_config::from_env().endpoint_url(endpoint).load().await;
    Arc::new(Uploads::new(
        Arc::new(S3Objects::new(&sdk, bucket(), Duration::from_secs(1)).unwrap()),
        Arc::new(DynamoSessions::new(&sdk, table())),
        limits,
        small_ranges(),
    ))
}

fn upstream() -> String {
    endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A 2-part upload (~6.5 MiB, 7 verification ranges) with every part in place.
async fn uploaded(client: &Client, seed: u8) -> (String, Vec<u8>) {
    let part = 3 * MIB;
    let file = data(2 * part + 500_000, seed);
    let c = client
        .create(json!({"filename": "faulty.bin", "size": file.len(), "part_size": part + 2 * MIB, "sha256": sha256_hex(&file)}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    put_all(&c.body, &file, part + 2 * MIB).await;
    (c.body["upload_id"].as_str().unwrap().to_owned(), file)
}

/// The API with every AWS call going through a proxy that trips once a connection carried `after`
/// response bytes; arm `cuts`, `stalls` or `hook` on the returned faults.
async fn through_faulty_proxy(after: usize) -> (Arc<Faults>, Client) {
    let faults = Arc::new(Faults {
        after,
        ..Faults::default()
    });
    let client =
        Client::over(uploads_via(&proxy(upstream(), faults.clone()).await, test_limits()).await);
    (faults, client)
}

#[tokio::test]
async fn connections_cut_mid_range_resume_to_the_same_digest() {
    let (faults, client) = through_faulty_proxy(400_000).await;
    let (id, file) = uploaded(&client, 21).await;
    faults.cuts.store(4, Ordering::SeqCst);
    let done = client.complete(&id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["sha256"], sha256_hex(&file));
    assert_eq!(
        faults.cuts.load(Ordering::SeqCst),
        0,
        "every planned cut happened"
    );
}

#[tokio::test]
async fn a_stalled_connection_is_abandoned_and_resumed() {
    let (faults, client) = through_faulty_proxy(300_000).await;
    let (id, file) = uploaded(&client, 22).await;
    faults.stalls.store(1, Ordering::SeqCst);
    let started = Instant::now();
    let done = client.complete(&id).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["sha256"], sha256_hex(&file));
    assert_eq!(
        faults.stalls.load(Ordering::SeqCst),
        0,
        "the stall happened"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "resumed after the stall timeout, not the stall"
    );
}

#[tokio::test]
async fn an_object_overwritten_mid_verification_is_never_mixed_in() {
    // Inside the first range: the emulator closes each connection after one response.
    let (faults, client) = through_faulty_proxy(600_000).await;
    let (id, file) = uploaded(&client, 23).await;
    let key = client.record(&id).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let s3 = s3_client().await;
    let (s3c, keyc) = (s3.clone(), key.clone());
    let overwrite = Arc::new(Mutex::new(None::<String>));
    let slot = overwrite.clone();
    *faults.hook.lock().unwrap() = Some(Box::new(move || {
        tokio::spawn(async move {
            let out = s3c
                .put_object()
                .bucket(bucket())
                .key(keyc)
                .body(vec![b'x'; 4096].into())
                .send()
                .await
                .unwrap();
            *slot.lock().unwrap() = out.version_id().map(str::to_owned);
        })
    }));
    let done = client.complete(&id).await;
    assert!(
        faults.hook.lock().unwrap().is_none(),
        "the overwrite happened mid-read"
    );
    // Every read was pinned to the completed version: the overwrite is a version of its own.
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "verified");
    assert_eq!(done.body["sha256"], sha256_hex(&file));
    let version = done.body["version_id"].as_str().unwrap();
    assert_eq!(
        stored_sha256(&key, Some(version)).await,
        Some(sha256_hex(&file))
    );
    // The overwrite's own event (or the verdict, if it came first) leaves only the verified
    // version under the key.
    let other = overwrite.lock().unwrap().take();
    assert!(other.is_some(), "the overwrite is a version of its own");
    let event = s3_event_of_version("s3-complete-multipart-upload.json", &key, other.as_deref());
    let direct = uploads_with(test_limits(), small_ranges()).await;
    let lines = handle_s3(&direct, event).await;
    assert_eq!(lines[0]["outcome"], "ignored", "{}", lines[0]);
    assert_eq!(stored_sha256(&key, None).await, Some(sha256_hex(&file)));
}

/// An upload every object of which is large: `complete` answers 202 and hands it over.
async fn handed_over(seed: u8) -> (Arc<Uploads>, Client, String, Vec<u8>, String) {
    let asynchronous = Limits {
        verify_inline_max_bytes: 0,
        ..test_limits()
    };
    let uploads = uploads_with(asynchronous, small_ranges()).await;
    let client = Client::over(uploads.clone());
    let (id, file) = uploaded(&client, seed).await;
    let done = client.complete(&id).await;
    assert_eq!(done.status, 202, "{}", done.body);
    let key = done.body["key"].as_str().unwrap().to_owned();
    (uploads, client, id, file, key)
}

#[tokio::test]
async fn a_tiny_deadline_verifies_across_continuations() {
    let (uploads, client, id, file, key) = handed_over(24).await;

    let scheduled = Scheduled::default();
    let verifier = Verifier {
        uploads: &uploads,
        bucket: &bucket(),
        continuation: &scheduled,
    };
    let event = s3_event_for(&key);
    // A deadline already past: each invocation hashes one range, saves its progress and hands over.
    let mut lines = verifier
        .handle(
            Invocation::parse(serde_json::to_value(&event).unwrap()).unwrap(),
            Some(Instant::now()),
        )
        .await
        .unwrap();
    let mut invocations = 1;
    let mut progress = Vec::new();
    while lines[0]["outcome"] == "paused" {
        progress.push(lines[0]["verified_bytes"].as_u64().unwrap());
        let polled = client.record(&id).await.body;
        assert_eq!(
            (polled["status"].clone(), polled["verified_bytes"].clone()),
            (json!("verifying"), lines[0]["verified_bytes"].clone())
        );
        let next = scheduled
            .0
            .lock()
            .unwrap()
            .pop()
            .expect("a continuation was scheduled");
        lines = verifier
            .handle(Invocation::Continue(next), Some(Instant::now()))
            .await
            .unwrap();
        invocations += 1;
        assert!(invocations < 50);
    }
    assert_eq!(lines[0]["outcome"], "verified", "{}", lines[0]);
    assert_eq!(lines[0]["sha256"], sha256_hex(&file));
    assert!(
        invocations >= 4,
        "the object took several invocations: {invocations}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress only grows: {progress:?}"
    );
    let record = client.record(&id).await.body;
    assert_eq!(
        (record["status"].clone(), record["verified_bytes"].clone()),
        (json!("verified"), json!(file.len()))
    );
}

#[tokio::test]
async fn an_object_replaced_between_continuations_leaves_the_pinned_version_verified() {
    let (uploads, client, id, file, key) = handed_over(25).await;
    let scheduled = Scheduled::default();
    let verifier = Verifier {
        uploads: &uploads,
        bucket: &bucket(),
        continuation: &scheduled,
    };
    let event = s3_event_for(&key);
    let lines = verifier
        .handle(
            Invocation::parse(serde_json::to_value(&event).unwrap()).unwrap(),
            Some(Instant::now()),
        )
        .await
        .unwrap();
    assert_eq!(lines[0]["outcome"], "paused", "{}", lines[0]);

    let s3 = s3_client().await;
    // Same size, other bytes: only the pinned ETag can tell.
    s3.put_object()
        .bucket(bucket())
        .key(&key)
        .body(vec![b'y'; file.len()].into())
        .send()
        .await
        .unwrap();
    let next = scheduled.0.lock().unwrap().pop().unwrap();
    let lines = verifier
        .handle(Invocation::Continue(next), None)
        .await
        .unwrap();
    assert_eq!(lines[0]["outcome"], "verified", "{}", lines[0]);
    assert_eq!(lines[0]["sha256"], sha256_hex(&file));
    let record = client.record(&id).await.body;
    let version = record["version_id"].as_str().unwrap();
    assert_eq!(
        stored_sha256(&key, Some(version)).await,
        Some(sha256_hex(&file))
    );
    assert_eq!(stored_sha256(&key, None).await, Some(sha256_hex(&file)));
}
