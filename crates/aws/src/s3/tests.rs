//! S3's endpoint: the client and the pre-signer address the same server, whichever setting named it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_credential_types::Credentials as SdkCredentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{S3Objects, s3_endpoint};
use vu_core::domain::{ContentType, Metadata, PartNumber};
use vu_core::ports::{NewMultipart, ObjectStore, PartToSign};

/// What `aws_config`'s loader reads from the environment: a service's own variable
/// (`AWS_ENDPOINT_URL_S3`: the service id, upper-case) over the shared one.
#[derive(Debug)]
struct Env(Vec<(&'static str, String)>);

impl Env {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

impl LoadServiceConfig for Env {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let own = format!("{}_{}", key.env(), key.service_id().to_uppercase());
        self.get(&own).or_else(|| self.get(key.env()))
    }
}

/// An `SdkConfig` as `aws_config::load_defaults` builds it from `env`.
fn sdk(env: Vec<(&'static str, String)>) -> aws_config::SdkConfig {
    let env = Env(env);
    let mut b = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .credentials_provider(SharedCredentialsProvider::new(SdkCredentials::new(
            "test", "test", None, None, "test",
        )));
    b.set_endpoint_url(env.get("AWS_ENDPOINT_URL"));
    b.service_config(env).build()
}

#[test]
fn the_s3_endpoint_wins_over_the_shared_one() {
    let both = sdk(vec![
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into()),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:3".into()),
    ]);
    assert_eq!(s3_endpoint(&both).as_deref(), Some("http://127.0.0.1:2"));
    let shared = sdk(vec![("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into())]);
    assert_eq!(s3_endpoint(&shared).as_deref(), Some("http://127.0.0.1:1"));
    let own = sdk(vec![("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2".into())]);
    assert_eq!(s3_endpoint(&own).as_deref(), Some("http://127.0.0.1:2"));
    assert_eq!(s3_endpoint(&sdk(vec![])), None);
}

/// Reads one request's head from `listener`, answers it with `body`: the request line.
async fn answer_one(listener: tokio::net::TcpListener, body: &'static str) -> String {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before the request's head");
        head.extend_from_slice(&buf[..n]);
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await.unwrap();
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_client_and_its_part_urls_address_the_s3_endpoint_not_the_shared_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s3 = format!("http://{}", listener.local_addr().unwrap());
    // The shared endpoint is a closed port: a call that went there would fail.
    let objects = S3Objects::new(
        &sdk(vec![
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
            ("AWS_ENDPOINT_URL_S3", s3.clone()),
        ]),
        "b",
        Duration::from_secs(5),
    )
    .unwrap();
    let server = tokio::spawn(answer_one(
        listener,
        "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
         <UploadId>u1</UploadId></InitiateMultipartUploadResult>",
    ));
    let upload = objects
        .create_multipart(&NewMultipart {
            key: "k",
            content_type: &ContentType::default(),
            metadata: &Metadata::default(),
            part_checksums: false,
        })
        .await
        .unwrap();
    assert_eq!(upload, "u1");
    // Path-style, as for any endpoint override.
    let request = server.await.unwrap();
    assert!(request.starts_with("POST /b/k?uploads"), "{request}");

    let signed = objects
        .presign_parts(
            "k",
            &upload,
            &[PartToSign {
                part_number: PartNumber::new(1).unwrap(),
                len: Some(3),
                sha256: None,
            }],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(
        signed[0].url.starts_with(&format!("{s3}/b/k?")),
        "{}",
        signed[0].url
    );
    let form = objects
        .presign_post("k", &ContentType::default(), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(form.url, format!("{s3}/b"));
}
