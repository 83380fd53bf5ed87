//! The load bench (`scripts/bench.sh PORT load`): many owners and one heavy owner each create a
//! session, PUT one small part through its pre-signed URL and complete it, `--concurrency` uploads
//! in flight, against a running `api` started with `LOCAL_CALLER_HEADER=x-local-caller` (each
//! request names its owner) and `DYNAMODB_CONSUMED_CAPACITY=1` with `AWS_LAMBDA_LOG_FORMAT=JSON`
//! (its log, `--api-log`, gives the DynamoDB capacity each upload consumed).
//!
//! Three baselines, same run, same concurrency, same process: `GET /healthz` on the same server
//! (what the HTTP path and this generator can do at all), raw `PutItem`s of a session-sized item
//! against the same DynamoDB emulator and raw `PutObject`s of the same size against the same S3
//! emulator (what each emulator can take at all).
//!
//!   cargo run --release --example bench_load -- --api URL --dynamodb URL --s3 URL --bucket B \
//!     --table T \
//!     --api-log FILE [--seconds 30] [--baseline-seconds 5] [--concurrency 32] [--owners 50] \
//!     [--size 4096] [--settle 3]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sha2::Digest as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The header the local server reads the caller from (`LOCAL_CALLER_HEADER`).
const CALLER_HEADER: &str = "x-local-caller";

struct Args {
    api: String,
    dynamodb: String,
    s3: String,
    bucket: String,
    table: String,
    api_log: String,
    seconds: f64,
    baseline_seconds: f64,
    concurrency: usize,
    owners: u64,
    size: usize,
    settle: f64,
}

fn args() -> Result<Args, BoxError> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        m.insert(k.trim_start_matches("--").to_owned(), v);
    }
    let req = |k: &str| {
        m.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required"))
    };
    let num = |k: &str, d: f64| m.get(k).map_or(Ok(d), |v| v.parse::<f64>());
    Ok(Args {
        api: req("api")?,
        dynamodb: req("dynamodb")?,
        s3: req("s3")?,
        bucket: req("bucket")?,
        table: req("table")?,
        api_log: req("api-log")?,
        seconds: num("seconds", 30.0)?,
        baseline_seconds: num("baseline-seconds", 5.0)?,
        concurrency: num("concurrency", 32.0)? as usize,
        owners: num("owners", 50.0)? as u64,
        size: num("size", 4096.0)? as usize,
        settle: num("settle", 3.0)?,
    })
}

/// Latencies and errors, shared by the workers.
#[derive(Default)]
struct Tally {
    create: Vec<Duration>,
    complete: Vec<Duration>,
    uploads: u64,
    /// "phase status problem-type" → count.
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, phase: &str, status: u16, body: &Value) {
        let kind = body["type"].as_str().unwrap_or("-");
        *self
            .errors
            .entry(format!("{phase} {status} {kind}"))
            .or_default() += 1;
    }
}

/// The answer's JSON body (reqwest here has no `json` feature); `null` when it is not JSON.
async fn json_of(res: reqwest::Response) -> Result<Value, BoxError> {
    Ok(serde_json::from_slice(&res.bytes().await?).unwrap_or(Value::Null))
}

/// Deterministic, distinct bytes per upload (xorshift), so no two objects are alike.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Half the uploads are the heavy owner's; the rest go round the `owners` others.
fn owner(i: u64, owners: u64) -> String {
    if i.is_multiple_of(2) {
        "load-heavy".into()
    } else {
        format!("load-owner-{:02}", (i / 2) % owners.max(1))
    }
}

/// One upload: create, PUT its one part on the pre-signed URL, complete; `Err` names the phase.
async fn upload(
    http: &reqwest::Client,
    a: &Args,
    i: u64,
    t: &Mutex<Tally>,
) -> Result<(), BoxError> {
    let owner = owner(i, a.owners);
    let bytes = data(a.size, i);
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let body = json!({"filename": format!("load-{i}.bin"), "size": a.size, "sha256": sha});
    let started = Instant::now();
    let res = http
        .post(format!("{}/uploads", a.api))
        .header(CALLER_HEADER, &owner)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let (status, created) = (res.status().as_u16(), json_of(res).await?);
    let took = started.elapsed();
    if status != 201 {
        t.lock()
            .map_err(|_| "poisoned")?
            .error("create", status, &created);
        return Ok(());
    }
    t.lock().map_err(|_| "poisoned")?.create.push(took);
    let part = &created["parts"][0];
    let mut put = http
        .put(part["url"].as_str().ok_or("no part URL")?)
        .header("content-type", "application/octet-stream");
    for (k, v) in part["headers"].as_object().into_iter().flatten() {
        // The body sets the length; the rest are sent as the API listed them.
        if k != "content-length" {
            put = put.header(k, v.as_str().unwrap_or_default());
        }
    }
    let res = put.body(bytes).send().await?;
    if !res.status().is_success() {
        let status = res.status().as_u16();
        t.lock()
            .map_err(|_| "poisoned")?
            .error("put", status, &Value::Null);
        return Ok(());
    }
    let id = created["upload_id"].as_str().ok_or("no upload_id")?;
    let started = Instant::now();
    let res = http
        .post(format!("{}/uploads/{id}/complete", a.api))
        .header(CALLER_HEADER, &owner)
        .send()
        .await?;
    let (status, record) = (res.status().as_u16(), json_of(res).await?);
    let took = started.elapsed();
    let mut t = t.lock().map_err(|_| "poisoned")?;
    if status == 200 && record["status"] == "verified" {
        t.complete.push(took);
        t.uploads += 1;
    } else {
        t.error("complete", status, &record);
    }
    Ok(())
}

/// Runs `op(i)` on `concurrency` workers until `seconds` pass; returns (ops done, seconds).
async fn drive<F, Fut>(concurrency: usize, seconds: f64, op: F) -> (u64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    let (op, next, failed) = (
        Arc::new(op),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next, failed) = (op.clone(), next.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = op(i).await {
                        // A transport error (not an HTTP answer): counted, first few shown.
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("transport error: {e}");
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{failed} operations failed in transport");
    }
    (
        next.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// The capacity lines the API logged after byte `from` of its log: op → (calls, units,
/// unreported).
fn capacity(log: &str, from: u64) -> Result<BTreeMap<String, (u64, f64, u64)>, BoxError> {
    let text = std::fs::read(log)?;
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let mut by_op: BTreeMap<String, (u64, f64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let f = &v["fields"];
        if f["message"] != "dynamodb consumed capacity" {
            continue;
        }
        let e = by_op
            .entry(f["op"].as_str().unwrap_or("?").to_owned())
            .or_default();
        e.0 += 1;
        e.1 += f["units"].as_f64().unwrap_or(0.0);
        e.2 += u64::from(f["reported"] == false);
    }
    Ok(by_op)
}

fn is_read(op: &str) -> bool {
    matches!(
        op,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let a = Arc::new(args()?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let c = a.concurrency;

    // Baseline 1: the server's cheapest route, through the same HTTP stack and generator.
    let (h, url) = (http.clone(), format!("{}/healthz", a.api));
    let (n, s) = drive(c, a.baseline_seconds, move |_| {
        let (h, url) = (h.clone(), url.clone());
        async move {
            h.get(url).send().await?.error_for_status()?;
            Ok(())
        }
    })
    .await;
    let healthz = n as f64 / s;
    println!("baseline GET /healthz: {healthz:.0}/s ({n} in {s:.1} s, {c} in flight)");

    // Baseline 2: raw PutItems of a session-sized item (~1 KB) on the same DynamoDB emulator.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&a.dynamodb)
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let (table, filler) = (a.table.clone(), "x".repeat(900));
    let (n, s) = drive(c, a.baseline_seconds, move |i| {
        let put = ddb
            .put_item()
            .table_name(&table)
            .item("upload_id", AttributeValue::S(format!("load-baseline#{i}")))
            .item("filler", AttributeValue::S(filler.clone()));
        async move {
            put.send().await?;
            Ok(())
        }
    })
    .await;
    let put_items = n as f64 / s;
    println!(
        "baseline raw DynamoDB PutItem (~1 KB items): {put_items:.0}/s ({n} in {s:.1} s, {c} in flight)"
    );

    // Baseline 3: raw PutObjects of the same small object size on the same S3 emulator (outside
    // `uploads/`, so S3 notifies nothing): what moto can take at all.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&a.s3)
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let (bucket, body) = (a.bucket.clone(), data(a.size, 0));
    let (n, s) = drive(c, a.baseline_seconds, move |i| {
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(format!("load-baseline/{i}"))
            .body(body.clone().into());
        async move {
            put.send().await?;
            Ok(())
        }
    })
    .await;
    let put_objects = n as f64 / s;
    println!(
        "baseline raw S3 PutObject ({} B) on the same S3 emulator: {put_objects:.0}/s ({n} in {s:.1} s, {c} in flight)",
        a.size
    );

    // The load: where the API's log stands now, so only this phase's capacity is counted.
    let log_from = std::fs::metadata(&a.api_log)?.len();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (t, h, args) = (tally.clone(), http.clone(), a.clone());
    let (started_uploads, s) = drive(c, a.seconds, move |i| {
        let (t, h, args) = (t.clone(), h.clone(), args.clone());
        async move { upload(&h, &args, i, &t).await }
    })
    .await;
    // S3's notifications of the new objects reach the verifier queue, which the local server
    // consumes (a read per object, as in AWS): let them land before counting.
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let mut t = tally.lock().map_err(|_| "poisoned")?;
    t.create.sort();
    t.complete.sort();
    let (creates, done) = (t.create.len() as f64 / s, t.uploads as f64 / s);
    println!(
        "load: {} owners + 1 heavy owner (half the uploads), {c} uploads in flight, {} B objects (1 part), {s:.1} s",
        a.owners, a.size
    );
    println!(
        "creates/s: {creates:.1}   completes/s (verified): {done:.1}   uploads started {started_uploads}, verified {}",
        t.uploads
    );
    println!(
        "create latency p50 {:.0} ms  p99 {:.0} ms   complete latency p50 {:.0} ms  p99 {:.0} ms",
        percentile(&t.create, 0.5),
        percentile(&t.create, 0.99),
        percentile(&t.complete, 0.5),
        percentile(&t.complete, 0.99)
    );
    let errors: u64 = t.errors.values().sum();
    println!("errors: {errors} (target 0)");
    for (what, count) in &t.errors {
        println!("  {count} x {what}");
    }
    println!(
        "creates/s as a share of each baseline's rate: GET /healthz {:.2}%   raw DynamoDB PutItem {:.2}%   raw S3 PutObject {:.2}%",
        100.0 * creates / healthz,
        100.0 * creates / put_items,
        100.0 * creates / put_objects
    );

    let by_op = capacity(&a.api_log, log_from)?;
    let per = |x: f64| x / (t.uploads.max(1) as f64);
    let (mut rcu, mut wcu, mut calls, mut unreported) = (0.0, 0.0, 0, 0);
    println!(
        "DynamoDB per verified upload (dynalite's ReturnConsumedCapacity=TOTAL: base table only):"
    );
    for (op, (n, units, unrep)) in &by_op {
        let kind = if is_read(op) { "RCU" } else { "WCU" };
        println!(
            "  {op}: {:.2} calls, {:.2} {kind}{}",
            per(*n as f64),
            per(*units),
            if *unrep > 0 {
                format!(" ({unrep} calls reported none: refused conditions)")
            } else {
                String::new()
            }
        );
        if is_read(op) {
            rcu += units
        } else {
            wcu += units
        }
        calls += n;
        unreported += unrep;
    }
    println!(
        "  total: {:.2} calls, {:.2} RCU, {:.2} WCU per upload ({} calls unreported)",
        per(calls as f64),
        per(rcu),
        per(wcu),
        unreported
    );
    // What dynalite alone would allow: its raw PutItem rate spread over this load's calls.
    let calls_per_upload = per(calls as f64);
    if calls_per_upload > 0.0 {
        println!(
            "  dynalite-bound ceiling (raw PutItem/s / DynamoDB calls per upload): {:.0} uploads/s; measured {done:.1} = {:.2}x of it",
            put_items / calls_per_upload,
            done / (put_items / calls_per_upload)
        );
    }
    if by_op.is_empty() {
        return Err("no capacity lines in the API log: was it started with DYNAMODB_CONSUMED_CAPACITY=1 and AWS_LAMBDA_LOG_FORMAT=JSON?".into());
    }
    Ok(())
}
