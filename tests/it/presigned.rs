//! Pre-signed part URLs against an S3 server that verifies SigV4 (s3s + s3s-fs, in process):
//! a URL works only for its own part, key, upload, length and checksum, and only until it expires.

use std::time::Duration;

use aws_credential_types::Credentials as SdkCredentials;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use vu_aws::S3Objects;
use vu_aws::presign::{Credentials, Presigner};
use vu_core::domain::{ContentType, Metadata, PartNumber, Sha256};
use vu_core::ports::{NewMultipart, ObjectStore, PartToSign, PortError, PostForm};

const ACCESS_KEY: &str = "AKIAVERIFIEDUPLOADS1";
const SECRET_KEY: &str = "verified/uploads/secret/key/for/tests/only";
const BUCKET: &str = "signed-bucket";

struct Server {
    endpoint: String,
    _dir: tempfile::TempDir,
}

async fn s3s_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server {
        endpoint,
        _dir: dir,
    }
}

fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                SdkCredentials::for_tests_with_session_token().clone(),
            ),
        )
        .build()
}

fn store(endpoint: &str) -> S3Objects {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(SdkCredentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "test",
            )),
        )
        .build();
    S3Objects::new(&sdk, BUCKET, Duration::from_secs(20)).unwrap()
}

fn part(n: u64) -> PartNumber {
    PartNumber::new(n).unwrap()
}

async fn put(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    let mut req = reqwest::Client::new()
        .put(url)
        .timeout(Duration::from_secs(10));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.body(body).send().await.unwrap().status().as_u16()
}

async fn new_upload(s: &S3Objects, key: &str, checksums: bool) -> String {
    s.create_multipart(&NewMultipart {
        key,
        content_type: &ContentType::default(),
        metadata: &Metadata::default(),
        part_checksums: checksums,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_part_url_is_bound_to_its_part_key_upload_and_length() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/a file+ü.bin";
    let upload = new_upload(&s, key, false).await;
    let other_upload = new_upload(&s, key, false).await;
    let body = vec![7u8; 1000];
    let signed = s
        .presign_parts(
            key,
            &upload,
            &[
                PartToSign {
                    part_number: part(1),
                    len: Some(1000),
                    sha256: None,
                },
                PartToSign {
                    part_number: part(2),
                    len: Some(10),
                    sha256: None,
                },
            ],
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    let url = signed[0].url.clone();

    // Tampered URLs: another part, another upload, another key.
    let other_part = url.replace("partNumber=1", "partNumber=2");
    assert_eq!(put(&other_part, &[], body.clone()).await, 403);
    let other_id = url.replace(
        &format!("uploadId={upload}"),
        &format!("uploadId={other_upload}"),
    );
    assert_ne!(other_id, url);
    assert_eq!(put(&other_id, &[], body.clone()).await, 403);
    let other_key = url.replace("a%20file", "b%20file");
    assert_eq!(put(&other_key, &[], body.clone()).await, 403);
    // The signed Content-Length: a longer or shorter body is refused.
    assert_eq!(put(&url, &[], vec![7u8; 1001]).await, 403);
    assert_eq!(put(&url, &[], vec![7u8; 999]).await, 403);
    // The URL itself works, and the signature-checking server stored the part.
    assert_eq!(put(&url, &[], body.clone()).await, 200);
    let listed = s.list_parts(key, &upload).await.unwrap();
    assert_eq!((listed.len(), listed[0].size), (1, 1000));
}

#[tokio::test]
async fn a_checksum_url_refuses_a_changed_or_missing_checksum_header() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/sums.bin";
    let upload = new_upload(&s, key, true).await;
    let body = b"hello, checksummed part".to_vec();
    let digest = Sha256::of(&body);
    let signed = s
        .presign_parts(
            key,
            &upload,
            &[PartToSign {
                part_number: part(1),
                len: Some(body.len() as u64),
                sha256: Some(digest),
            }],
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    let p = &signed[0];
    assert_eq!(p.headers["x-amz-checksum-sha256"], digest.to_base64());
    let other = Sha256::of(b"something else").to_base64();
    assert_eq!(
        put(&p.url, &[("x-amz-checksum-sha256", other)], body.clone()).await,
        403
    );
    assert_eq!(put(&p.url, &[], body.clone()).await, 403);
    assert_eq!(
        put(
            &p.url,
            &[("x-amz-checksum-sha256", digest.to_base64())],
            body
        )
        .await,
        200
    );
}

#[tokio::test]
async fn an_expired_url_is_refused() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/late.bin";
    let upload = new_upload(&s, key, false).await;
    let creds = Credentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        session_token: None,
    };
    let presigner = Presigner::new(Some(&server.endpoint), "us-east-1", BUCKET).unwrap();
    let sign_at = |at: time::OffsetDateTime| {
        presigner.batch(&creds, at, Duration::from_secs(60)).sign(
            "PUT",
            key,
            &[("partNumber", "1"), ("uploadId", &upload)],
            &[("content-length", "3")],
        )
    };
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        put(
            &sign_at(now - time::Duration::minutes(2)),
            &[],
            vec![1, 2, 3]
        )
        .await,
        403
    );
    assert_eq!(put(&sign_at(now), &[], vec![1, 2, 3]).await, 200);
}

#[tokio::test]
async fn a_url_signed_with_other_credentials_is_refused() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/creds.bin";
    let upload = new_upload(&s, key, false).await;
    let impostor = S3Objects::new(&sdk(&server.endpoint), BUCKET, Duration::from_secs(20)).unwrap();
    let signed = impostor
        .presign_parts(
            key,
            &upload,
            &[PartToSign {
                part_number: part(1),
                len: Some(3),
                sha256: None,
            }],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(put(&signed[0].url, &[], vec![1, 2, 3]).await, 403);
}

/// A browser form POST: the fields in `form` (some replaced), then the file.
async fn post(form: &PostForm, replace: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in &form.fields {
        let v = replace
            .iter()
            .find(|(rk, _)| rk == k)
            .map_or(v.as_str(), |(_, rv)| rv);
        multipart = multipart.text(k.clone(), v.to_owned());
    }
    multipart = multipart.part("file", reqwest::multipart::Part::bytes(body));
    let res = reqwest::Client::new()
        .post(&form.url)
        .timeout(Duration::from_secs(10))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_post_policy_takes_only_its_key_type_and_size_range() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/form.txt";
    let text = ContentType::parse("text/plain").unwrap();
    let form = s
        .presign_post(key, &text, 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(form.fields["success_action_status"], "201");

    // S3 answers 403 "Invalid according to Policy"; s3s 400 InvalidPolicyDocument.
    let refused_by_policy = |(status, body): &(u16, String)| {
        matches!(status, 400 | 403) && (body.contains("Policy") || body.contains("EntityTooLarge"))
    };
    let too_big = post(&form, &[], vec![b'x'; 101]).await;
    assert!(refused_by_policy(&too_big), "{too_big:?}");
    let other_key = post(&form, &[("key", "uploads/01TEST/elsewhere.txt")], vec![1]).await;
    assert!(refused_by_policy(&other_key), "{other_key:?}");
    let other_type = post(&form, &[("Content-Type", "text/html")], vec![1]).await;
    assert!(refused_by_policy(&other_type), "{other_type:?}");
    assert!(
        s.head(key, None).await.unwrap().is_none(),
        "nothing stored yet"
    );

    let ok = post(&form, &[], vec![b'x'; 100]).await;
    assert_eq!(ok.0, 201, "{ok:?}");
    assert_eq!(s.head(key, None).await.unwrap().map(|o| o.size), Some(100));

    let impostor = S3Objects::new(&sdk(&server.endpoint), BUCKET, Duration::from_secs(20)).unwrap();
    let forged = impostor
        .presign_post(key, &text, 100, Duration::from_secs(60))
        .await
        .unwrap();
    let refused = post(&forged, &[], vec![1]).await;
    assert_eq!(refused.0, 403, "{refused:?}");
}

#[tokio::test]
async fn a_completion_is_refused_over_an_object_already_under_its_key() {
    let server = s3s_server().await;
    let s = store(&server.endpoint);
    let key = "uploads/01TEST/taken.bin";
    let complete = |upload: String| {
        let s = &s;
        async move {
            let signed = s
                .presign_parts(
                    key,
                    &upload,
                    &[PartToSign {
                        part_number: part(1),
                        len: Some(100),
                        sha256: None,
                    }],
                    Duration::from_secs(300),
                )
                .await
                .unwrap();
            assert_eq!(put(&signed[0].url, &[], vec![1u8; 100]).await, 200);
            let parts = s.list_parts(key, &upload).await.unwrap();
            s.complete_multipart(key, &upload, &parts).await
        }
    };
    // The first completion creates the object; a second upload to the key may not replace it
    // (`If-None-Match: *`, which this server honours as S3 does).
    complete(new_upload(&s, key, false).await).await.unwrap();
    let first = s.head(key, None).await.unwrap().unwrap();
    let second = complete(new_upload(&s, key, false).await).await;
    assert!(
        matches!(second, Err(PortError::PreconditionFailed)),
        "{second:?}"
    );
    assert_eq!(s.head(key, None).await.unwrap().unwrap().etag, first.etag);
}

/// With a KMS key, what a client sends does not change: a part URL takes the part with only
/// its signed length (SSE is fixed at CreateMultipartUpload), and a form is posted with the
/// fields it came with. The form's encryption fields are pinned by its policy: dropped, or
/// naming another key, S3 refuses the form.
#[tokio::test]
async fn with_a_kms_key_clients_send_nothing_more_and_a_form_cannot_drop_or_change_it() {
    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let server = s3s_server().await;
    let s = store(&server.endpoint).with_kms_key(Some(ARN.into()));

    let key = "uploads/01TEST/kms.bin";
    let upload = new_upload(&s, key, false).await;
    let signed = s
        .presign_parts(
            key,
            &upload,
            &[PartToSign {
                part_number: part(1),
                len: Some(100),
                sha256: None,
            }],
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert_eq!(
        signed[0].headers.keys().collect::<Vec<_>>(),
        ["content-length"]
    );
    assert_eq!(put(&signed[0].url, &[], vec![3u8; 100]).await, 200);

    let key = "uploads/01TEST/kms.txt";
    let form = s
        .presign_post(
            key,
            &ContentType::parse("text/plain").unwrap(),
            100,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(form.fields["x-amz-server-side-encryption"], "aws:kms");
    assert_eq!(
        form.fields["x-amz-server-side-encryption-aws-kms-key-id"],
        ARN
    );
    assert_eq!(
        form.fields["x-amz-server-side-encryption-bucket-key-enabled"],
        "true"
    );
    let other_key = ARN.replace("1234abcd", "9999abcd");
    let changed = post(
        &form,
        &[("x-amz-server-side-encryption-aws-kms-key-id", &other_key)],
        vec![1],
    )
    .await;
    assert!(matches!(changed.0, 400 | 403), "{changed:?}");
    let mut dropped = form.clone();
    dropped.fields.remove("x-amz-server-side-encryption");
    let dropped = post(&dropped, &[], vec![1]).await;
    assert!(matches!(dropped.0, 400 | 403), "{dropped:?}");
    assert!(s.head(key, None).await.unwrap().is_none());
    let ok = post(&form, &[], vec![b'x'; 10]).await;
    assert_eq!(ok.0, 201, "{ok:?}");
}
