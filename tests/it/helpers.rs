//! Helpers shared by the integration tests: the real `Router` and AWS SDK clients against the
//! emulator that `make test` starts (`AWS_ENDPOINT_URL`), driven with `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use vu_aws::{DynamoSessions, S3Objects};
use vu_core::service::Uploads;
use vu_functions::config::{Limits, VerifyConfig};

pub const MIB: usize = 1024 * 1024;

/// The repository's root (this package is `tests/`).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A binary of the workspace (`api`, `verified-uploads`), built beside this test binary:
/// `make test` builds them first (`cargo build --workspace --bins`); they are other packages',
/// so cargo does not build them for this one.
pub fn bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/it-… → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join(name))
        .expect("the test binary sits in target/<profile>/deps");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL must point at the local emulator: run `make test`, which starts it",
    )
}

pub fn bucket() -> String {
    std::env::var("BUCKET_NAME").unwrap_or_else(|_| "verified-uploads".into())
}

pub fn table() -> String {
    std::env::var("TABLE_NAME").unwrap_or_else(|_| "verified-uploads".into())
}

pub async fn sdk() -> aws_config::SdkConfig {
    let _ = endpoint();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client on the emulator, path-style as the service's own.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let sdk = sdk().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Whether S3 holds an object under `key` (HEAD answers).
pub async fn object_exists(key: &str) -> bool {
    s3_client()
        .await
        .head_object()
        .bucket(bucket())
        .key(key)
        .send()
        .await
        .is_ok()
}

/// The SHA-256 (hex) of what S3 holds under `key`: its current object, or `version`.
pub async fn stored_sha256(key: &str, version: Option<&str>) -> Option<String> {
    let out = s3_client()
        .await
        .get_object()
        .bucket(bucket())
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .ok()?;
    let bytes = out.body.collect().await.ok()?.into_bytes();
    Some(sha256_hex(&bytes))
}

pub fn test_limits() -> Limits {
    Limits {
        max_object_bytes: 1024 * 1024 * 1024,
        completion_wait: Duration::from_secs(10),
        // Every test calls as `anonymous`, in one table: the per-owner limits are tested apart.
        max_open_sessions_per_owner: 2_000,
        max_pending_bytes_per_owner: u64::MAX / 4,
        ..Limits::default()
    }
}

pub fn small_ranges() -> VerifyConfig {
    // Small ranges so a few-MiB test object still crosses many range boundaries.
    VerifyConfig {
        concurrency: 3,
        range_bytes: 1024 * 1024 + 17,
        prefetch: 1,
        stall_timeout: Duration::from_secs(2),
        fan_out: true,
    }
}

pub async fn uploads_with(limits: Limits, verify: VerifyConfig) -> Arc<Uploads> {
    Arc::new(service_with(limits, verify).await)
}

/// The upload service on the emulator, before it is shared.
pub async fn service_with(limits: Limits, verify: VerifyConfig) -> Uploads {
    service_on(&bucket(), limits, verify).await
}

/// The upload service on the emulator's `bucket`.
pub async fn service_on(bucket: &str, limits: Limits, verify: VerifyConfig) -> Uploads {
    let sdk = sdk().await;
    Uploads::new(
        Arc::new(S3Objects::new(&sdk, bucket, Duration::from_secs(20)).unwrap()),
        Arc::new(DynamoSessions::new(&sdk, table())),
        limits,
        verify,
    )
}

/// A bucket of its own whose S3 notifications go to a queue of its own, as scripts/bootstrap.py
/// sets up the stack's: a test that consumes the queue sees only its own objects' events.
pub struct EventsStack {
    pub bucket: String,
    pub queue_url: String,
}

impl EventsStack {
    pub async fn new(name: &str) -> Self {
        let suffix = ulid::Ulid::new().to_string().to_lowercase();
        let bucket = format!("{name}-{}", &suffix[suffix.len() - 8..]);
        let s3 = s3_client().await;
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk().await);
        let queue_url = sqs
            .create_queue()
            .queue_name(&bucket)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "60",
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration,
            NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        let uploads_only = NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value("uploads/")
                            .build(),
                    )
                    .build(),
            )
            .build();
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(
                        QueueConfiguration::builder()
                            .queue_arn(arn)
                            .events(Event::from("s3:ObjectCreated:CompleteMultipartUpload"))
                            .events(Event::from("s3:ObjectCreated:Post"))
                            .filter(uploads_only)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        Self { bucket, queue_url }
    }

    /// The SHA-256 (hex) of the current object under `key` in this stack's bucket.
    pub async fn current_sha256(&self, key: &str) -> Option<String> {
        let out = s3_client()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(sha256_hex(&out.body.collect().await.ok()?.into_bytes()))
    }
}

/// The API as a client calls it: one method per route, each answering what the router answered.
/// `call` and `raw` remain for requests that are about their own shape.
#[derive(Clone)]
pub struct Client {
    pub app: Router,
}

impl Client {
    /// The anonymous API over `uploads`.
    pub fn over(uploads: Arc<Uploads>) -> Self {
        Self {
            app: vu_functions::http::router(
                uploads,
                vu_functions::http::CallerPolicy::AnonymousAllowed,
            ),
        }
    }

    /// The anonymous API with `limits` and small verification ranges.
    pub async fn with_limits(limits: Limits) -> Self {
        Self::over(uploads_with(limits, small_ranges()).await)
    }

    /// The anonymous API with the test limits and small verification ranges.
    pub async fn new() -> Self {
        Self::with_limits(test_limits()).await
    }

    /// `POST /uploads`.
    pub async fn create(&self, body: Value) -> Answer {
        call(&self.app, "POST", "/uploads", Some(body)).await
    }

    /// `POST /uploads/{id}/parts`: signs the parts `body` lists.
    pub async fn sign(&self, id: &str, body: Value) -> Answer {
        call(
            &self.app,
            "POST",
            &format!("/uploads/{id}/parts"),
            Some(body),
        )
        .await
    }

    /// `GET /uploads/{id}/parts`: the parts S3 holds.
    pub async fn parts(&self, id: &str) -> Answer {
        call(&self.app, "GET", &format!("/uploads/{id}/parts"), None).await
    }

    /// `POST /uploads/{id}/complete` with no body.
    pub async fn complete(&self, id: &str) -> Answer {
        call(&self.app, "POST", &format!("/uploads/{id}/complete"), None).await
    }

    /// `POST /uploads/{id}/complete` as a patient client makes it: on `202` (the record still
    /// `completing` under another call, or `verifying`), `GET /uploads/{id}` until it is final.
    pub async fn complete_settled(&self, id: &str) -> Answer {
        let mut answer = self.complete(id).await;
        let give_up = std::time::Instant::now() + Duration::from_secs(120);
        while matches!(
            answer.body["status"].as_str(),
            Some("completing" | "verifying")
        ) {
            assert!(
                std::time::Instant::now() < give_up,
                "{id} never settled: {}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            answer = self.record(id).await;
        }
        answer
    }

    /// `POST /uploads/{id}/complete` with `body`.
    pub async fn complete_with(&self, id: &str, body: Value) -> Answer {
        call(
            &self.app,
            "POST",
            &format!("/uploads/{id}/complete"),
            Some(body),
        )
        .await
    }

    /// `GET /uploads/{id}`: the record.
    pub async fn record(&self, id: &str) -> Answer {
        call(&self.app, "GET", &format!("/uploads/{id}"), None).await
    }

    /// `GET /uploads/{id}/object`: a download of the verified version.
    pub async fn download(&self, id: &str) -> Answer {
        call(&self.app, "GET", &format!("/uploads/{id}/object"), None).await
    }

    /// `DELETE /uploads/{id}`.
    pub async fn abort(&self, id: &str) -> Answer {
        call(&self.app, "DELETE", &format!("/uploads/{id}"), None).await
    }

    /// Companion's `POST /s3/multipart`.
    pub async fn uppy_create(&self, body: Value) -> Answer {
        call(&self.app, "POST", "/s3/multipart", Some(body)).await
    }

    /// Companion's `GET /s3/multipart/{id}/{n}`: signs one part (Uppy 5+).
    pub async fn uppy_sign(&self, id: &str, key: &str, n: usize) -> Answer {
        let uri = format!("/s3/multipart/{id}/{n}?key={}", enc(key));
        call(&self.app, "GET", &uri, None).await
    }

    /// Companion's `GET /s3/multipart/{id}/batch`: signs `part_numbers` ("2,3"; older Uppy).
    pub async fn uppy_sign_batch(&self, id: &str, key: &str, part_numbers: &str) -> Answer {
        let uri = format!(
            "/s3/multipart/{id}/batch?key={}&partNumbers={part_numbers}",
            enc(key)
        );
        call(&self.app, "GET", &uri, None).await
    }

    /// Companion's `GET /s3/multipart/{id}`: the parts S3 holds.
    pub async fn uppy_parts(&self, id: &str, key: &str) -> Answer {
        let uri = format!("/s3/multipart/{id}?key={}", enc(key));
        call(&self.app, "GET", &uri, None).await
    }

    /// Companion's `POST /s3/multipart/{id}/complete`; `None` sends no body.
    pub async fn uppy_complete(&self, id: &str, key: &str, body: Option<Value>) -> Answer {
        let uri = format!("/s3/multipart/{id}/complete?key={}", enc(key));
        call(&self.app, "POST", &uri, body).await
    }

    /// Companion's `DELETE /s3/multipart/{id}`.
    pub async fn uppy_abort(&self, id: &str, key: &str) -> Answer {
        let uri = format!("/s3/multipart/{id}?key={}", enc(key));
        call(&self.app, "DELETE", &uri, None).await
    }

    /// Companion's `GET /s3/params?{query}`: a form POST's URL and fields.
    pub async fn uppy_params(&self, query: &str) -> Answer {
        call(&self.app, "GET", &format!("/s3/params?{query}"), None).await
    }
}

/// Percent-encodes `s` for a query string.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

pub async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Answer {
    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
    raw(app, method, uri, body).await
}

pub async fn raw(app: &Router, method: &str, uri: &str, body: Body) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

/// Deterministic test data that is not all one byte value.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// PUTs a part to its pre-signed URL with exactly the headers the API listed, as a client would.
pub async fn put_part(part: &Value, bytes: Vec<u8>) -> (u16, Option<String>) {
    let client = reqwest::Client::new();
    let mut req = client
        .put(part["url"].as_str().unwrap())
        .header("content-type", "application/octet-stream")
        .timeout(Duration::from_secs(30));
    for (k, v) in part["headers"].as_object().unwrap() {
        if k != "content-length" {
            req = req.header(k, v.as_str().unwrap());
        }
    }
    let res = req.body(bytes).send().await.unwrap();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().trim_matches('"').to_owned());
    (res.status().as_u16(), etag)
}

/// PUTs every part a create answer (`created`) signed: `file` split into `part_size` parts.
pub async fn put_all(created: &Value, file: &[u8], part_size: usize) {
    for (i, part) in created["parts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(put_part(part, slice(file, part_size, i + 1)).await.0, 200);
    }
}

/// The bytes of part `n` (1-based) of `file` split into `part_size` parts.
pub fn slice(file: &[u8], part_size: usize, n: usize) -> Vec<u8> {
    let start = (n - 1) * part_size;
    file[start..(start + part_size).min(file.len())].to_vec()
}

/// Records the continuations the verifier schedules, so a test can deliver them as Lambda would.
#[derive(Default)]
pub struct Scheduled(pub std::sync::Mutex<Vec<vu_core::domain::UploadId>>);

#[async_trait::async_trait]
impl vu_core::ports::Continuation for Scheduled {
    async fn schedule(
        &self,
        id: vu_core::domain::UploadId,
    ) -> Result<(), vu_core::ports::PortError> {
        self.0.lock().unwrap().push(id);
        Ok(())
    }
}

/// Runs an S3 event through the verifier's handler, without a deadline.
pub async fn handle_s3(
    uploads: &Uploads,
    event: aws_lambda_events::event::s3::S3Event,
) -> Vec<Value> {
    let verifier = vu_functions::lambda::verifier::Verifier {
        uploads,
        bucket: &bucket(),
        continuation: &Scheduled::default(),
    };
    verifier
        .handle(
            vu_functions::lambda::verifier::Invocation::parse(
                serde_json::to_value(&event).unwrap(),
            )
            .unwrap(),
            None,
        )
        .await
        .unwrap()
}

/// The S3 completion event from `events/`, for `key` (form-encoded as S3 sends it).
pub fn s3_event_for(key: &str) -> aws_lambda_events::event::s3::S3Event {
    s3_event_from("s3-complete-multipart-upload.json", key)
}

/// An S3 event from `events/` (`file`), for `key`.
pub fn s3_event_from(file: &str, key: &str) -> aws_lambda_events::event::s3::S3Event {
    s3_event_of_version(file, key, None)
}

/// An S3 event from `events/` (`file`), for `version` of `key` (a versioned bucket's events
/// name the version they report).
pub fn s3_event_of_version(
    file: &str,
    key: &str,
    version: Option<&str>,
) -> aws_lambda_events::event::s3::S3Event {
    let path = std::path::Path::new(crate::helpers::REPO)
        .join("events")
        .join(file);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let encoded = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2F", "/")
        .replace("%20", "+");
    event["Records"][0]["s3"]["object"]["key"] = Value::String(encoded);
    event["Records"][0]["s3"]["bucket"]["name"] = Value::String(bucket());
    if let Some(v) = version {
        event["Records"][0]["s3"]["object"]["versionId"] = Value::String(v.to_owned());
    }
    serde_json::from_value(event).unwrap()
}

/// POSTs a signed form (its `fields`, then the file, as a browser does) to `url`: the status.
pub async fn send_form(
    url: &str,
    fields: &serde_json::Map<String, Value>,
    name: &str,
    body: Vec<u8>,
) -> u16 {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), v.as_str().unwrap().to_owned());
    }
    // A file part, as a browser sends it: with a filename.
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(body).file_name(name.to_owned()),
    );
    let res = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(30))
        .multipart(form)
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

/// A form-POST session (Uppy's `GET /s3/params`): its id, key and signed form.
pub async fn signed_form(client: &Client, name: &str, meta: &str) -> (String, String, Value) {
    let p = client
        .uppy_params(&format!("filename={name}&type=text%2Fplain{meta}"))
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let key = p.body["fields"]["key"].as_str().unwrap().to_owned();
    let id = key.split('/').nth(1).unwrap().to_owned();
    (id, key, p.body)
}

/// POSTs `body` with the signed form, as a browser does; S3 answers 201.
pub async fn post_signed(form: &Value, body: &[u8]) {
    let fields = form["fields"].as_object().unwrap();
    let url = form["url"].as_str().unwrap();
    assert_eq!(send_form(url, fields, "f.txt", body.to_vec()).await, 201);
}
