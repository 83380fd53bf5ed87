//! What S3 itself refuses, shown against a strict S3: LocalStack's (`scripts/strict_s3.sh`, which
//! `make test` starts and names in `STRICT_S3_ENDPOINT`), which checks pre-signed URLs and part
//! checksums as S3 does where moto checks nothing. The service is the real router whose S3 is
//! there (`AWS_ENDPOINT_URL_S3`) while DynamoDB stays on moto (`AWS_ENDPOINT_URL`), and every URL
//! and form is the one the API hands out. Each refusal is asserted by status and S3 error code
//! beside what S3 accepts, so a header dropped from the signature fails its test: S3 would then
//! take the bytes. Without `STRICT_S3_ENDPOINT` every test prints that it skipped.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use vu_aws::{DynamoSessions, S3Objects};
use vu_core::service::Uploads;
use vu_functions::config::Limits;

use crate::helpers::*;

const PART: usize = 5 * MIB;
/// SigV4's query encoding (what the pre-signer writes): unreserved characters stay.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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

#[tokio::test]
async fn s3_refuses_a_part_changed_by_one_byte_with_bad_digest() {
    let Some(s) = Strict::new("s3_refuses_a_part_changed_by_one_byte_with_bad_digest").await else {
        return;
    };
    let file = data(300_000, 21);
    let (id, _) = create(
        &s,
        json!({"filename": "digest.bin", "size": file.len(), "part_checksums": true}),
    )
    .await;
    let signed = s
        .client
        .sign(
            &id,
            json!({"part_numbers": [1], "sha256": {"1": b64_sha256(&file)}}),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let part = &signed.body["parts"][0];
    let url = part["url"].as_str().unwrap();
    let mut changed = file.clone();
    changed[123_456] ^= 0x01;

    // S3 hashes the body and compares it with the signed x-amz-checksum-sha256.
    let got = put_signed(part, changed.clone()).await;
    s.refused(&got, 400, "BadDigest", "a body changed by one byte");
    // The header is signed: leaving it out, or sending the changed body's own digest, breaks the
    // signature (a URL that did not sign it would take these bytes unchecked).
    let got = put(url, &[], changed.clone()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "the checksum header left out",
    );
    let own = b64_sha256(&changed);
    let got = put(url, &[("x-amz-checksum-sha256", &own)], changed).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "the changed body's own checksum",
    );
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // The bytes that were signed: stored, and the upload verifies.
    let ok = put_signed(part, file.clone()).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(s.held(&id).await[0]["checksum_sha256"], b64_sha256(&file));
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_a_part_of_another_length_than_signed() {
    let Some(s) = Strict::new("s3_refuses_a_part_of_another_length_than_signed").await else {
        return;
    };
    let file = data(2_000, 22);
    let (id, created) = create(&s, json!({"filename": "length.bin", "size": file.len()})).await;
    let part = &created["parts"][0];
    assert_eq!(part["headers"]["content-length"], "2000");

    let mut longer = file.clone();
    longer.push(0);
    let got = put_signed(part, longer).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "one byte more than signed",
    );
    let got = put_signed(part, file[..1_999].to_vec()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "one byte less than signed",
    );
    let got = put_signed(part, Vec::new()).await;
    s.refused(&got, 403, "SignatureDoesNotMatch", "an empty body");
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    assert_eq!(put_signed(part, file.clone()).await.status, 200);
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_an_expired_part_url() {
    let short = Limits {
        url_expiry: Duration::from_secs(1),
        ..test_limits()
    };
    let Some(s) = Strict::with_limits("s3_refuses_an_expired_part_url", short).await else {
        return;
    };
    let file = data(1_000, 23);
    let (id, created) = create(&s, json!({"filename": "late.bin", "size": file.len()})).await;
    // Signed for one second (at a whole second): past it for sure after two and a half.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got = put_signed(&created["parts"][0], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "a URL past its X-Amz-Expires");
    assert!(got.body.contains("Request has expired"), "{}", got.body);
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // Signed again (by an API with the usual lifetime): taken.
    let again = s
        .api_with(test_limits())
        .sign(&id, json!({"part_numbers": [1]}))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        put_signed(&again.body["parts"][0], file.clone())
            .await
            .status,
        200
    );
    s.verifies(&id, &file).await;
    s.done();
}

#[tokio::test]
async fn s3_refuses_a_part_url_with_its_part_number_upload_id_key_or_signature_altered() {
    let Some(s) = Strict::new(
        "s3_refuses_a_part_url_with_its_part_number_upload_id_key_or_signature_altered",
    )
    .await
    else {
        return;
    };
    // Two parts: part 2 (10 bytes) is signed, and so is part 1, which the URL is altered into.
    let (id, created) = create(
        &s,
        json!({"filename": "bound file.bin", "size": PART + 10, "part_size": PART}),
    )
    .await;
    let part = &created["parts"][1];
    let url = part["url"].as_str().unwrap();
    let body = data(10, 24);
    let key = created["key"].as_str().unwrap();
    // Another multipart upload of the same key, real in S3: only the signature can refuse it.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&s.sdk)
            .force_path_style(true)
            .build(),
    );
    let other_upload = s3
        .create_multipart_upload()
        .bucket(bucket())
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();

    let upload = raw_param(url, "uploadId");
    let other = utf8_percent_encode(&other_upload, QUERY).to_string();
    let signature = raw_param(url, "X-Amz-Signature");
    let flipped = format!(
        "{}{}",
        &signature[..signature.len() - 1],
        if signature.ends_with('0') { '1' } else { '0' }
    );
    for (what, tampered) in [
        (
            "another part number",
            altered(url, "partNumber=2", "partNumber=1"),
        ),
        (
            "another upload id",
            altered(
                url,
                &format!("uploadId={upload}"),
                &format!("uploadId={other}"),
            ),
        ),
        (
            "another key",
            altered(url, "bound%20file.bin", "bound%20file.exe"),
        ),
        ("another signature", altered(url, signature, &flipped)),
        (
            "a longer lifetime",
            altered(url, "X-Amz-Expires=3600", "X-Amz-Expires=604800"),
        ),
    ] {
        let got = put(&tampered, &headers_of(part), body.clone()).await;
        s.refused(&got, 403, "SignatureDoesNotMatch", what);
    }
    // Signed with another secret for the same access key.
    let impostor = S3Objects::new(
        &s.sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "test",
                        "not-the-secret",
                        None,
                        None,
                        "t",
                    ),
                ),
            )
            .build(),
        bucket(),
        Duration::from_secs(20),
    )
    .unwrap();
    let forged = vu_core::ports::ObjectStore::presign_parts(
        &impostor,
        key,
        &percent_encoding::percent_decode_str(upload)
            .decode_utf8()
            .unwrap(),
        &[vu_core::ports::PartToSign {
            part_number: vu_core::domain::PartNumber::new(2).unwrap(),
            len: Some(10),
            sha256: None,
        }],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let got = put(&forged[0].url, &[], body.clone()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "signed with another secret",
    );
    assert_eq!(s.held(&id).await, Vec::<Value>::new(), "nothing stored");

    // The URL as signed: taken, for its own part.
    assert_eq!(put_signed(part, body).await.status, 200);
    let held = s.held(&id).await;
    assert_eq!((held.len(), &held[0]["part_number"]), (1, &json!(2)));
    s3.abort_multipart_upload()
        .bucket(bucket())
        .key(key)
        .upload_id(other_upload)
        .send()
        .await
        .unwrap();
    assert_eq!(s.client.abort(&id).await.status, 204);
    s.done();
}

/// POSTs the signed `form` with some fields replaced, then the file: S3's answer.
async fn post_form(form: &Value, replace: &[(&str, &str)], body: Vec<u8>) -> S3Answer {
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in form["fields"].as_object().unwrap() {
        let v = replace
            .iter()
            .find(|(rk, _)| rk == k)
            .map_or(v.as_str().unwrap(), |(_, rv)| rv);
        multipart = multipart.text(k.clone(), v.to_owned());
    }
    multipart = multipart.part(
        "file",
        reqwest::multipart::Part::bytes(body).file_name("form.txt"),
    );
    let res = reqwest::Client::new()
        .post(form["url"].as_str().unwrap())
        .timeout(Duration::from_secs(30))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// LocalStack checks a POST policy's conditions (key, content type, size range) and its
/// expiration, but not its signature: a rewritten policy would pass there. The s3s server checks
/// that one (`presigned::a_post_policy_takes_only_its_key_type_and_size_range`).
#[tokio::test]
async fn s3_refuses_a_form_post_outside_its_policy() {
    let Some(s) = Strict::new("s3_refuses_a_form_post_outside_its_policy").await else {
        return;
    };
    // A declared size: the policy's content-length-range ends there.
    let (id, key, form) = signed_form(&s.client, "form.txt", "&metadata%5Bsize%5D=100").await;
    assert!(
        form["url"].as_str().unwrap().starts_with(&s.endpoint),
        "{form}"
    );
    let file = data(100, 25);

    let got = post_form(&form, &[], data(101, 25)).await;
    s.refused(&got, 400, "EntityTooLarge", "one byte over the size range");
    let elsewhere = format!("{key}.exe");
    let got = post_form(&form, &[("key", &elsewhere)], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "another key");
    assert!(got.body.contains("Policy Condition failed"), "{}", got.body);
    let got = post_form(&form, &[("Content-Type", "text/html")], file.clone()).await;
    s.refused(&got, 403, "AccessDenied", "another content type");
    assert!(got.body.contains("Policy Condition failed"), "{}", got.body);
    assert!(!object_on(&s, &key).await && !object_on(&s, &elsewhere).await);

    let ok = post_form(&form, &[], file.clone()).await;
    assert_eq!(ok.status, 201, "{ok:?}");
    // Its owner's read verifies it.
    let r = s.client.record(&id).await.body;
    assert_eq!(r["status"], "verified", "{r}");
    assert_eq!(r["sha256"], sha256_hex(&file));
    s.done();
}

/// Whether the strict S3 holds an object under `key`.
async fn object_on(s: &Strict, key: &str) -> bool {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&s.sdk)
            .force_path_style(true)
            .build(),
    )
    .head_object()
    .bucket(bucket())
    .key(key)
    .send()
    .await
    .is_ok()
}

#[tokio::test]
async fn a_correct_upload_verifies_end_to_end_on_the_strict_s3() {
    let Some(s) = Strict::new("a_correct_upload_verifies_end_to_end_on_the_strict_s3").await else {
        return;
    };
    let file = data(PART + 4_321, 26);
    let (p1, p2) = (slice(&file, PART, 1), slice(&file, PART, 2));
    let (id, created) = create(
        &s,
        json!({"filename": "whole.bin", "size": file.len(), "part_size": PART, "part_checksums": true}),
    )
    .await;
    assert!(created["key"].as_str().unwrap().ends_with("whole.bin"));
    let signed = s
        .client
        .sign(
            &id,
            json!({"part_numbers": [1, 2], "sha256": {"1": b64_sha256(&p1), "2": b64_sha256(&p2)}}),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let parts = signed.body["parts"].as_array().unwrap();
    assert!(parts[0]["url"].as_str().unwrap().starts_with(&s.endpoint));
    assert_eq!(put_signed(&parts[0], p1).await.status, 200);
    assert_eq!(put_signed(&parts[1], p2).await.status, 200);
    s.verifies(&id, &file).await;

    // The download names the verified version, and S3 checks that URL's signature too.
    let d = s.client.download(&id).await;
    assert_eq!(d.status, 200, "{}", d.body);
    let url = d.body["url"].as_str().unwrap();
    let got = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&file));
    let version = raw_param(url, "versionId");
    let unpinned = altered(url, &format!("&versionId={version}"), "");
    let got = answer(reqwest::get(&unpinned).await.unwrap()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "the download without its version",
    );
    s.done();
}

/// The `api` binary on a free port with `env`; killed on drop.
struct Api {
    child: Child,
    url: String,
    log: tempfile::NamedTempFile,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api {
    async fn start(env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(crate::helpers::bin("api"))
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("WEB_DIR", "/nonexistent")
            .env("RUST_LOG", "warn")
            .env("MAX_OPEN_SESSIONS_PER_OWNER", "2000")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let api = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        for _ in 0..100 {
            let health = reqwest::get(format!("{}/healthz", api.url)).await;
            if health.is_ok_and(|r| r.status() == 200) {
                return api;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the api binary did not start: {}", api.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// The SDK's per-service variables, set for real on the `api` binary: the shared endpoint is a
/// closed port, so the upload verifies only if S3, DynamoDB and SQS each take their own (SQS: the
/// hand-over to the local verifier, as `VERIFY_INLINE_MAX_BYTES=0` sends every object there).
#[tokio::test]
async fn the_api_binary_takes_each_services_endpoint_from_its_own_variable() {
    let Some(s) =
        Strict::new("the_api_binary_takes_each_services_endpoint_from_its_own_variable").await
    else {
        return;
    };
    let moto = endpoint();
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = sqs
        .create_queue()
        .queue_name(format!("strict-{}", ulid::Ulid::new()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let api = Api::start(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ENDPOINT_URL_S3", &s.endpoint),
        ("AWS_ENDPOINT_URL_DYNAMODB", &moto),
        ("AWS_ENDPOINT_URL_SQS", &moto),
        // Where verdicts are announced (EVENT_BUS_NAME), EventBridge is moto's too.
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", &moto),
        // Verified by the local server's consumer of this queue, not inline: SQS is used too.
        ("VERIFIER_QUEUE_URL", &queue),
        ("VERIFY_INLINE_MAX_BYTES", "0"),
    ])
    .await;
    let file = data(200_000, 27);
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/uploads",
            Some(json!({"filename": "env.bin", "size": file.len()})),
        )
        .await;
    assert_eq!(status, 201, "{created} {}", api.log());
    let id = created["upload_id"].as_str().unwrap();
    let part = &created["parts"][0];
    assert!(
        part["url"].as_str().unwrap().starts_with(&s.endpoint),
        "{part}"
    );
    let got = put_signed(part, file[1..].to_vec()).await;
    s.refused(
        &got,
        403,
        "SignatureDoesNotMatch",
        "a short part through the binary's URL",
    );
    assert_eq!(put_signed(part, file.clone()).await.status, 200);

    let (status, done) = api
        .call(
            reqwest::Method::POST,
            &format!("/uploads/{id}/complete"),
            None,
        )
        .await;
    assert_eq!(
        status,
        202,
        "handed over to the verifier: {done} {}",
        api.log()
    );
    let started = Instant::now();
    let record = loop {
        let (_, r) = api
            .call(reqwest::Method::GET, &format!("/uploads/{id}"), None)
            .await;
        if r["status"] == "verified" || started.elapsed() > Duration::from_secs(60) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(record["status"], "verified", "{record} {}", api.log());
    assert_eq!(record["sha256"], sha256_hex(&file));
    drop(api);
    sqs.delete_queue().queue_url(queue).send().await.unwrap();
    s.done();
}
