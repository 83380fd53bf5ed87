//! What S3 itself refuses, shown against a strict S3: LocalStack's (`scripts/strict_s3.sh`, which
//! `make test` starts and names in `STRICT_S3_ENDPOINT`), which checks pre-signed URLs and part
//! checksums as S3 does where moto checks nothing. The service is the real router whose S3 is
//! there (`AWS_ENDPOINT_URL_S3`) while DynamoDB stays on moto (`AWS_ENDPOINT_URL`), and every URL
//! and form is the one the API hands out. Each refusal is asserted by status and S3 error code
//! beside what S3 accepts, so a header dropped from the signature fails its test: S3 would then
//! take the bytes. Without `STRICT_S3_ENDPOINT` every test prints that it skipped.
//!
//! Here the harness (`Strict`) and S3's answers; the tests by what S3 refuses: `parts` (part
//! URLs), `forms` (form POSTs), `end_to_end` (a whole upload, through the router and through the
//! `api` binary).

mod end_to_end;
mod forms;
mod parts;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use serde_json::Value;
use vu_aws::{DynamoSessions, S3Objects};
use vu_core::service::Uploads;
use vu_functions::config::Limits;

use crate::helpers::*;

const PART: usize = 5 * MIB;

/// An SDK configuration as the environment `AWS_ENDPOINT_URL_S3=s3` would make it: S3 there,
/// every other service where `base` says (moto).
#[derive(Debug)]
struct S3Apart {
    base: aws_config::SdkConfig,
    s3: String,
}

impl LoadServiceConfig for S3Apart {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.service_id() == "S3" && key.env() == "AWS_ENDPOINT_URL" {
            return Some(self.s3.clone());
        }
        self.base.service_config()?.load_config(key)
    }
}

/// The API over the strict S3 and moto's DynamoDB, and what a test asserted there.
struct Strict {
    name: &'static str,
    endpoint: String,
    client: Client,
    sdk: aws_config::SdkConfig,
    refusals: AtomicUsize,
}

impl Strict {
    /// `None` (and a line saying so) when no strict S3 runs: `cargo test` outside `make test`.
    async fn new(name: &'static str) -> Option<Self> {
        Self::with_limits(name, test_limits()).await
    }

    async fn with_limits(name: &'static str, limits: Limits) -> Option<Self> {
        let Some(endpoint) = std::env::var("STRICT_S3_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        else {
            println!(
                "strict_s3::{name}: skipped: STRICT_S3_ENDPOINT is not set (`make test` sets it)"
            );
            return None;
        };
        let base = sdk().await;
        let sdk = base
            .to_builder()
            .service_config(S3Apart {
                base: base.clone(),
                s3: endpoint.clone(),
            })
            .build();
        let client = Client::over(std::sync::Arc::new(uploads_on(&sdk, limits)));
        Some(Self {
            name,
            endpoint,
            client,
            sdk,
            refusals: AtomicUsize::new(0),
        })
    }

    /// Another API on the same S3 and table (other limits): it sees the same sessions.
    fn api_with(&self, limits: Limits) -> Client {
        Client::over(std::sync::Arc::new(uploads_on(&self.sdk, limits)))
    }

    /// S3 refused `got` with `status` and `code`.
    fn refused(&self, got: &S3Answer, status: u16, code: &str, what: &str) {
        assert_eq!(
            (got.status, got.code.as_str()),
            (status, code),
            "{what}: S3 answered {}",
            got.body
        );
        self.refusals.fetch_add(1, Ordering::SeqCst);
    }

    /// The line `make test` sums into the suite's figures.
    fn done(self) {
        println!(
            "strict_s3::{}: {} refusals asserted",
            self.name,
            self.refusals.load(Ordering::SeqCst)
        );
    }

    /// The parts S3 holds for `id`, as the API lists them.
    async fn held(&self, id: &str) -> Vec<Value> {
        let p = self.client.parts(id).await;
        assert_eq!(p.status, 200, "{}", p.body);
        p.body["parts"].as_array().unwrap().clone()
    }

    /// `complete`, expecting the upload verified with `file`'s digest.
    async fn verifies(&self, id: &str, file: &[u8]) {
        let done = self.client.complete(id).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert_eq!(done.body["status"], "verified", "{}", done.body);
        assert_eq!(done.body["sha256"], sha256_hex(file));
    }
}

fn uploads_on(sdk: &aws_config::SdkConfig, limits: Limits) -> Uploads {
    Uploads::new(
        std::sync::Arc::new(S3Objects::new(sdk, bucket(), Duration::from_secs(20)).unwrap()),
        std::sync::Arc::new(DynamoSessions::new(sdk, table())),
        limits,
        small_ranges(),
    )
}

/// S3's answer to a request: its status, error code (`<Code>`, empty on success) and body.
#[derive(Debug)]
struct S3Answer {
    status: u16,
    code: String,
    body: String,
}

async fn answer(res: reqwest::Response) -> S3Answer {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_default();
    S3Answer { status, code, body }
}

/// PUTs `body` to `url` with `headers` (as a browser sets them; its length is the body's).
async fn put(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> S3Answer {
    let mut req = reqwest::Client::new()
        .put(url)
        .timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.body(body).send().await.unwrap()).await
}

/// A signed part's headers, but the one the browser sets itself (`content-length`).
fn headers_of(part: &Value) -> Vec<(&str, &str)> {
    part["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "content-length")
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect()
}

/// PUTs `body` to a signed part with exactly the headers the API listed.
async fn put_signed(part: &Value, body: Vec<u8>) -> S3Answer {
    put(part["url"].as_str().unwrap(), &headers_of(part), body).await
}

fn b64_sha256(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// `url` with `from` replaced by `to`, which must change it.
fn altered(url: &str, from: &str, to: &str) -> String {
    assert!(url.contains(from), "{from} not in {url}");
    let out = url.replacen(from, to, 1);
    assert_ne!(out, url);
    out
}

/// A query parameter's raw (encoded) value in `url`.
fn raw_param<'a>(url: &'a str, name: &str) -> &'a str {
    let start = url.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &url[start..];
    &rest[..rest.find('&').unwrap_or(rest.len())]
}

/// `POST /uploads`, answered 201.
async fn create(s: &Strict, body: Value) -> (String, Value) {
    let c = s.client.create(body).await;
    assert_eq!(c.status, 201, "{}", c.body);
    (c.body["upload_id"].as_str().unwrap().to_owned(), c.body)
}
