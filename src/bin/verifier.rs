//! Streams an object through SHA-256. In Lambda: verifies upload sessions handed to it by S3
//! `ObjectCreated:CompleteMultipartUpload` events.
//! Elsewhere: `verifier --bucket B --key K [--expect-sha256 HEX]`, printing one JSON line and
//! exiting 1 on a mismatch.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lambda_runtime::{LambdaEvent, service_fn};
use verified_uploads::aws::{self, S3Objects};
use verified_uploads::config::{Config, VerifyConfig};
use verified_uploads::domain::Sha256;
use verified_uploads::ports::ObjectStore;
use verified_uploads::s3_event::{Invocation, Verifier};
use verified_uploads::verify;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: verifier --bucket BUCKET --key KEY [--expect-sha256 HEX]";

struct Args {
    bucket: String,
    key: String,
    expect: Option<Sha256>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut bucket, mut key, mut expect) = (None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--bucket" => bucket = Some(value()?),
            "--key" => key = Some(value()?),
            "--expect-sha256" => {
                expect = Some(
                    Sha256::parse_hex("--expect-sha256", &value()?).map_err(|e| e.to_string())?,
                )
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        bucket: bucket.ok_or(USAGE)?,
        key: key.ok_or(USAGE)?,
        expect,
    })
}

/// Verifies one object; the JSON line the CLI prints and the Lambda logs.
async fn run(
    sdk: &aws_config::SdkConfig,
    cfg: VerifyConfig,
    bucket: &str,
    key: &str,
) -> Result<(serde_json::Value, Sha256), BoxError> {
    let store = S3Objects::new(sdk, bucket)?;
    let info = store
        .head(key)
        .await?
        .ok_or_else(|| format!("s3://{bucket}/{key} does not exist"))?;
    let started = Instant::now();
    let digest = match verify::sha256_object(&store, key, info.size, &info.etag, cfg, None, None)
        .await?
    {
        verify::Hashed::Done(d) => d,
        verify::Hashed::Paused(_) => return Err("verification stopped without a deadline".into()),
    };
    let line = serde_json::json!({
        "bucket": bucket,
        "key": key,
        "size": info.size,
        "sha256": digest,
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok((line, digest))
}

/// Stop hashing this long before Lambda's deadline, to save progress and hand over.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// In Lambda: sessions awaiting verification, from S3's CompleteMultipartUpload events and from
/// this function's own continuation events.
async fn lambda_main(sdk: &aws_config::SdkConfig) -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let uploads = aws::uploads(sdk, &config)?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")?;
    let continuation = aws::SelfInvoke::new(sdk, function);
    let verifier = &Verifier {
        uploads: &uploads,
        bucket: &config.bucket,
        continuation: &continuation,
    };
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let remaining =
                Duration::from_millis(event.context.deadline.saturating_sub(now_millis()));
            let deadline = Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);
            let invocation = Invocation::parse(event.payload)?;
            verifier
                .handle(invocation, Some(deadline))
                .await
                .map_err(BoxError::from)
        },
    ))
    .await
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_http::tracing::init_default_subscriber();
    let cfg = match VerifyConfig::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let sdk = aws::load_sdk_config().await;

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match lambda_main(&sdk).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "verifier function failed");
                ExitCode::FAILURE
            }
        };
    }

    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&sdk, cfg, &args.bucket, &args.key).await {
        Ok((line, digest)) => {
            println!("{line}");
            match args.expect {
                Some(expected) if expected != digest => {
                    eprintln!("sha256 mismatch: expected {expected}, computed {digest}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!(
                "verification failed: {}",
                verified_uploads::error::chain(e.as_ref())
            );
            ExitCode::from(3)
        }
    }
}
