//! A whole upload on the strict S3: through the router, and through the `api` binary with each
//! service's endpoint in its own variable.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::json;

use super::*;

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
/// closed port, so the upload verifies only if S3, DynamoDB, SQS and KMS each take their own (SQS:
/// the hand-over to the local verifier, as `VERIFY_INLINE_MAX_BYTES=0` sends every object there;
/// KMS: the receipt is signed with the verdict, which is not written without it).
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
        ("AWS_ENDPOINT_URL_KMS", &moto),
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
    // Signed by KMS through its own variable, with the verdict.
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/uploads/{id}/receipt"),
            None,
        )
        .await;
    assert_eq!(status, 200, "the receipt: {}", api.log());
    drop(api);
    sqs.delete_queue().queue_url(queue).send().await.unwrap();
    s.done();
}
