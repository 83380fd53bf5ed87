//! The `verified-uploads` binary, driven as a user would run it, against the real `api` binary
//! and the emulator. Between them sits a small HTTP proxy in front of S3 (the API's
//! `AWS_ENDPOINT_URL`, so the part URLs point at it too): it counts the part PUTs, can hold one
//! (so a test kills the client mid-upload), refuse some (transient failures), or alter the bytes
//! of object GETs (a tampered object).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::helpers::*;

fn cli_bin() -> std::path::PathBuf {
    crate::helpers::bin("verified-uploads")
}
fn api_bin() -> std::path::PathBuf {
    crate::helpers::bin("api")
}

#[derive(Default)]
struct Proxy {
    upstream: String,
    /// Part PUTs seen (`?partNumber=` in the query).
    part_puts: AtomicUsize,
    /// Holds the part PUT with this count (1-based) and every later one; 0: none.
    hold_from: AtomicUsize,
    held: tokio::sync::Notify,
    /// Answers 503 to this many part PUTs (counted down) before forwarding again.
    refuse: AtomicUsize,
    /// Holds S3's CompleteMultipartUpload calls (the API's `complete` waits on them).
    hold_complete: AtomicBool,
    /// Flips the first byte of every object GET's body.
    tamper: AtomicBool,
}

impl Proxy {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let pq = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let completing = parts.method == hyper::Method::POST && pq.contains("uploadId=");
        if completing && self.hold_complete.load(Ordering::SeqCst) {
            self.held.notify_one();
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Ok(status_only(503));
        }
        if parts.method == hyper::Method::PUT && pq.contains("partNumber=") {
            let n = self.part_puts.fetch_add(1, Ordering::SeqCst) + 1;
            let hold = self.hold_from.load(Ordering::SeqCst);
            if hold != 0 && n >= hold {
                self.held.notify_one();
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            if self
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                .is_ok()
            {
                return Ok(status_only(503));
            }
        }
        let mut fwd =
            reqwest::Client::new().request(parts.method.clone(), format!("{}{pq}", self.upstream));
        for (k, v) in &parts.headers {
            if !matches!(
                k.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding" | "expect"
            ) {
                fwd = fwd.header(k, v);
            }
        }
        let Ok(res) = fwd.body(body).send().await else {
            return Ok(status_only(502));
        };
        let mut out = Response::builder().status(res.status().as_u16());
        for (k, v) in res.headers() {
            if !matches!(k.as_str(), "connection" | "transfer-encoding") {
                out = out.header(k, v);
            }
        }
        let status = res.status().as_u16();
        let mut bytes = res.bytes().await.unwrap_or_default().to_vec();
        let object_get = parts.method == hyper::Method::GET
            && pq.starts_with(&format!("/{}/uploads/", bucket()))
            && !pq.contains("uploadId=");
        let tamper = self.tamper.load(Ordering::SeqCst) && object_get;
        if let Some(b) = bytes
            .first_mut()
            .filter(|_| tamper && (200..300).contains(&status))
        {
            *b ^= 0xff;
        }
        Ok(out.body(Full::new(Bytes::from(bytes))).unwrap())
    }
}

fn status_only(status: u16) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn start_proxy() -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        upstream: endpoint(),
        ..Proxy::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let p = proxy.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let p = p.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| p.clone().handle(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (proxy, url)
}

/// The API binary on a free port, its S3 behind the proxy; a scratch directory and a cache
/// directory (the client's resume state) of its own.
struct Stack {
    api: Child,
    api_url: String,
    proxy: Arc<Proxy>,
    dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.api.kill();
        let _ = self.api.wait();
    }
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With extra environment for the API.
    async fn start_with(env: &[(&str, &str)]) -> Self {
        let (proxy, proxy_url) = start_proxy().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("api.log")).unwrap();
        let api = Command::new(api_bin())
            .env("AWS_ENDPOINT_URL", &proxy_url)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("WEB_DIR", dir.path().join("no-page"))
            .env("RUST_LOG", "warn")
            // The shared test queue is not this API's to consume (other tests handle its events
            // themselves), and every test calls as `anonymous`: objects here verify inline.
            .env_remove("VERIFIER_QUEUE_URL")
            .env("MAX_OPEN_SESSIONS_PER_OWNER", "2000")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let api_url = format!("http://127.0.0.1:{port}");
        let stack = Self {
            api,
            api_url,
            proxy,
            dir,
        };
        for _ in 0..100 {
            let health = reqwest::get(format!("{}/healthz", stack.api_url)).await;
            if health.is_ok_and(|r| r.status() == 200) {
                return stack;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the api binary did not start: {}", stack.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("api.log")).unwrap_or_default()
    }

    /// A file of `len` bytes in the scratch directory, with a name no other test uses.
    fn file(&self, len: usize, seed: u8) -> (PathBuf, Vec<u8>) {
        let bytes = data(len, seed);
        let path = self
            .dir
            .path()
            .join(format!("cli-{}.bin", ulid::Ulid::new()));
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(cli_bin());
        c.args(args)
            .env("VERIFIED_UPLOADS_API", &self.api_url)
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env_remove("VERIFIED_UPLOADS_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Runs the client to the end, off the runtime (the proxy keeps serving meanwhile).
    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `--json` record the client printed (its last stdout line).
fn record(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {}", text(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

async fn get_json(url: &str) -> Value {
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_is_verified_retrying_refused_parts_and_shows_in_status_and_list() {
    let stack = Stack::start().await;
    let (path, bytes) = stack.file(2 * 5 * MIB + 777, 141);
    // The first two part PUTs fail (503): each is signed again and retried.
    stack.proxy.refuse.store(2, Ordering::SeqCst);
    let o = stack
        .run(&[
            "upload",
            "--json",
            "--part-size",
            "5MiB",
            "--concurrency",
            "2",
            s(&path),
        ])
        .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = record(&o);
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["sha256"], sha256_hex(&bytes));
    assert_eq!(r["part_count"], 3);
    assert_eq!(stack.proxy.part_puts.load(Ordering::SeqCst), 3 + 2);
    assert!(object_exists(r["key"].as_str().unwrap()).await);
    let id = r["upload_id"].as_str().unwrap();

    let o = stack.run(&["status", id]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        line.contains("verified") && line.contains(&sha256_hex(&bytes)),
        "{line}"
    );

    let o = stack
        .run(&["list", "--status", "verified", "--json", "--limit", "100"])
        .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let listed: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(listed.iter().any(|r| r["upload_id"] == id), "{listed:?}");
    assert!(listed.iter().all(|r| r["status"] == "verified"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_declares_part_states_and_verifies_in_several_segments() {
    let stack = Stack::start().await;
    let (path, bytes) = stack.file(3 * 5 * MIB + 321, 143);
    let o = stack
        .run(&["upload", "--json", "--part-size", "5MiB", s(&path)])
        .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = record(&o);
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["sha256"], sha256_hex(&bytes));
    assert_eq!(r["segments"], 4, "one segment per part: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_with_the_wrong_sha256_fails_and_the_object_is_gone() {
    let stack = Stack::start().await;
    let (path, bytes) = stack.file(5 * MIB + 3, 142);
    let wrong = sha256_hex(b"another file");
    let o = stack
        .run(&["upload", "--json", "--sha256", &wrong, s(&path)])
        .await;
    assert_eq!(code(&o), 1, "{}", text(&o));
    let r = record(&o);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["expected_sha256"], wrong);
    assert!(!object_exists(r["key"].as_str().unwrap()).await);

    // The human line says so too.
    let o = stack.run(&["upload", "--sha256", &wrong, s(&path)]).await;
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("FAILED") && out.contains(&sha256_hex(&bytes)),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_killed_midway_resumes_sending_only_the_missing_parts() {
    let stack = Stack::start().await;
    let part = 5 * MIB;
    let (path, bytes) = stack.file(6 * part + 1234, 143);
    let args = [
        "upload",
        "--json",
        "--part-size",
        "5MiB",
        "--concurrency",
        "1",
        s(&path),
    ];

    // The fourth part PUT is held; the client is killed while it waits.
    stack.proxy.hold_from.store(4, Ordering::SeqCst);
    let mut child = stack
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), stack.proxy.held.notified())
        .await
        .expect("the client never reached part 4");
    child.kill().unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();

    // S3 holds parts 1-3 of the session the file started.
    let pending = get_json(&format!(
        "{}/uploads?status=pending&limit=100",
        stack.api_url
    ))
    .await;
    let name = path.file_name().unwrap().to_str().unwrap();
    let session = pending["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["filename"] == name)
        .unwrap_or_else(|| panic!("no pending session for {name}: {pending}"))
        .clone();
    let id = session["upload_id"].as_str().unwrap();
    let held = get_json(&format!("{}/uploads/{id}/parts", stack.api_url)).await;
    let numbers: Vec<u64> = held["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);

    // The re-run continues that session: 4 of 7 parts are sent, and the whole file verifies.
    stack.proxy.hold_from.store(0, Ordering::SeqCst);
    stack.proxy.part_puts.store(0, Ordering::SeqCst);
    let o = stack.run(&args).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = record(&o);
    assert_eq!(
        (r["upload_id"].as_str(), r["status"].as_str()),
        (Some(id), Some("verified")),
        "{r}"
    );
    assert_eq!(r["sha256"], sha256_hex(&bytes));
    assert_eq!(stack.proxy.part_puts.load(Ordering::SeqCst), 4);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("3 parts were already in S3"),
        "{}",
        text(&o)
    );

    // Done: the state is gone, so the same file again is a new upload.
    let o = stack.run(&args).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_ne!(record(&o)["upload_id"].as_str(), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_abort_drops_the_interrupted_upload() {
    let stack = Stack::start().await;
    let (path, _) = stack.file(2 * 5 * MIB, 144);
    let args = [
        "upload",
        "--part-size",
        "5MiB",
        "--concurrency",
        "1",
        s(&path),
    ];
    stack.proxy.hold_from.store(2, Ordering::SeqCst);
    let mut child = stack
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), stack.proxy.held.notified())
        .await
        .expect("the client never reached part 2");
    child.kill().unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    stack.proxy.hold_from.store(0, Ordering::SeqCst);

    let o = stack.run(&["upload", "--abort", s(&path)]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let id = out.split_whitespace().last().unwrap();
    let r = get_json(&format!("{}/uploads/{id}", stack.api_url)).await;
    assert_eq!(r["status"], "aborted", "{r}");
    // Nothing left to abort.
    let o = stack.run(&["upload", "--abort", s(&path)]).await;
    assert_eq!(code(&o), 2, "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_download_verifies_and_refuses_a_tampered_object_leaving_the_target_untouched() {
    let stack = Stack::start().await;
    let (path, bytes) = stack.file(5 * MIB + 99, 145);
    let o = stack.run(&["upload", "--json", s(&path)]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let id = record(&o)["upload_id"].as_str().unwrap().to_owned();

    let out = stack.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let good = out.join("good.bin");
    let o = stack.run(&["download", &id, "-o", s(&good)]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(std::fs::read(&good).unwrap() == bytes);
    // scripts/env.sh turns receipts on: the download checked the upload's receipt first.
    assert!(text(&o).contains("receipt checked"), "{}", text(&o));

    // The receipt saved, the keys saved, and both checked offline with the file.
    let (receipt, keys) = (
        stack.dir.path().join("r.jwt"),
        stack.dir.path().join("keys.json"),
    );
    let o = stack.run(&["receipt", &id, "-o", s(&receipt)]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = stack.run(&["keys"]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    std::fs::write(&keys, &o.stdout).unwrap();
    let o = stack
        .command(&["check", s(&receipt), s(&good), "--keys", s(&keys)])
        .env_remove("VERIFIED_UPLOADS_API")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));

    // S3 now serves other bytes: refused, the existing target kept, no temporary file left.
    stack.proxy.tamper.store(true, Ordering::SeqCst);
    let target = out.join("target.bin");
    std::fs::write(&target, b"what was here before").unwrap();
    let o = stack.run(&["download", &id, "-o", s(&target)]).await;
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"what was here before");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["good.bin", "target.bin"]);
}

/// Whoever can write the table can remove a receipt: the download then refuses rather than
/// skip the check in silence, unless `--allow-unreceipted` says so (and the output says it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_download_refuses_an_upload_whose_receipt_was_removed_unless_allowed() {
    let stack = Stack::start().await;
    let (path, bytes) = stack.file(1000, 147);
    let o = stack.run(&["upload", "--json", s(&path)]).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let id = record(&o)["upload_id"].as_str().unwrap().to_owned();
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .update_item()
        .table_name(table())
        .key(
            "upload_id",
            aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
        )
        .update_expression("REMOVE receipt")
        .send()
        .await
        .unwrap();

    let target = stack.dir.path().join("stripped.bin");
    let o = stack.run(&["download", &id, "-o", s(&target)]).await;
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("--allow-unreceipted"), "{}", text(&o));
    assert!(!target.exists(), "nothing written");

    let o = stack
        .run(&["download", &id, "-o", s(&target), "--allow-unreceipted"])
        .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("NO RECEIPT"), "{}", text(&o));
    assert!(std::fs::read(&target).unwrap() == bytes);
    let o = stack
        .run(&[
            "--json",
            "download",
            &id,
            "-o",
            s(&target),
            "--allow-unreceipted",
        ])
        .await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (line["receipt"].as_str(), line["receipt_checked"].as_bool()),
        (Some("missing"), Some(false)),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bad_arguments_are_usage_errors_and_an_unreachable_api_a_service_error() {
    let stack = Stack::start().await;
    let (path, _) = stack.file(10, 146);
    let missing = stack.dir.path().join("missing.bin");
    for args in [
        vec!["upload"],
        vec!["upload", "--sha256", "xyz", s(&path)],
        vec!["upload", "--concurrency", "0", s(&path)],
        vec!["upload", "--part-size", "5 parsecs", s(&path)],
        vec!["upload", s(&missing)],
        vec!["upload", "--sha256", &"a".repeat(64), s(&path), s(&path)],
        vec!["list", "--status", "lost"],
        vec!["status", "not-an-id"],
        vec!["frobnicate"],
    ] {
        let o = stack.run(&args).await;
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        assert!(!o.stderr.is_empty(), "{args:?}: says nothing");
    }
    // No API at all.
    let o = stack
        .command(&["status", "x"])
        .env_remove("VERIFIED_UPLOADS_API")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    // The problem's title and detail, on one line.
    let o = stack.run(&["status", "01JDZ4Q8X6M3V9T2K7R5N1B0CD"]).await;
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim().lines().count(),
        1,
        "{}",
        text(&o)
    );
    // Help, with examples, for each subcommand.
    for sub in ["upload", "status", "list", "download"] {
        let o = stack.run(&[sub, "--help"]).await;
        assert_eq!(code(&o), 0);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Examples:"),
            "{sub}"
        );
    }
    let o = stack
        .run(&["status", "x", "--api", "http://127.0.0.1:1"])
        .await;
    assert_eq!(code(&o), 3, "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_killed_while_completing_is_finished_by_the_rerun() {
    // The completion the killed client started dies with its request (the local server drops a
    // request whose client went away) and holds the record for its 30 s lease.
    let stack = Stack::start_with(&[("COMPLETION_LEASE_SECONDS", "30")]).await;
    let (path, bytes) = stack.file(5 * MIB + 5, 147);
    let args = ["upload", "--json", s(&path)];
    stack.proxy.hold_complete.store(true, Ordering::SeqCst);
    let mut child = stack
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), stack.proxy.held.notified())
        .await
        .expect("the client never completed");
    child.kill().unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    stack.proxy.hold_complete.store(false, Ordering::SeqCst);
    stack.proxy.part_puts.store(0, Ordering::SeqCst);

    // The re-run finds the upload completing, and completes it again once the lease is over.
    let o = stack.run(&args).await;
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r = record(&o);
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("verified"), Some(sha256_hex(&bytes).as_str())),
        "{r}"
    );
    assert_eq!(
        stack.proxy.part_puts.load(Ordering::SeqCst),
        0,
        "no part sent again"
    );
}
