//! `verifier --bucket B --key K [--expect-sha256 HEX]`: streams one object through SHA-256 as
//! the service does, prints one JSON line, exits 1 on a mismatch (2: usage, 3: S3 failed).

use std::process::ExitCode;
use std::time::Instant;

use crate::config::VerifyConfig;
use vu_aws::S3Objects;
use vu_core::domain::Sha256;
use vu_core::error::chain;
use vu_core::hash;
use vu_core::ports::{BoxError, ObjectStore};

const USAGE: &str = "usage: verifier --bucket BUCKET --key KEY [--expect-sha256 HEX]";

#[derive(Debug, PartialEq)]
pub struct Args {
    pub bucket: String,
    pub key: String,
    pub expect: Option<Sha256>,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut bucket, mut key, mut expect) = (None, None, None);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--bucket" => bucket = Some(value()?),
                "--key" => key = Some(value()?),
                "--expect-sha256" => {
                    let hex = value()?;
                    let digest = Sha256::parse_hex(&hex).map_err(|e| e.at("--expect-sha256"));
                    expect = Some(digest.map_err(|e| e.to_string())?);
                }
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(Self {
            bucket: bucket.ok_or(USAGE)?,
            key: key.ok_or(USAGE)?,
            expect,
        })
    }
}

/// Verifies one object with every `VERIFY_*` setting in `cfg`; the JSON line to print.
async fn digest(
    sdk: &aws_config::SdkConfig,
    cfg: VerifyConfig,
    args: &Args,
) -> Result<(serde_json::Value, Sha256), BoxError> {
    let store = S3Objects::new(sdk, &args.bucket, cfg.stall_timeout)?;
    let (bucket, key) = (&args.bucket, &args.key);
    let info = store
        .head(key, None)
        .await?
        .ok_or_else(|| format!("s3://{bucket}/{key} does not exist"))?;
    let started = Instant::now();
    let hashed = hash::sha256_object(&store, key, &info, cfg, None, None).await?;
    let hash::Hashed::Done(digest) = hashed else {
        return Err("verification stopped without a deadline".into());
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

pub async fn main(
    sdk: &aws_config::SdkConfig,
    cfg: VerifyConfig,
    args: impl Iterator<Item = String>,
) -> ExitCode {
    let args = match Args::parse(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match digest(sdk, cfg, &args).await {
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
            eprintln!("verification failed: {}", chain(e.as_ref()));
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments_name_bucket_key_and_an_optional_digest() {
        let hex = Sha256::of(b"x").to_hex();
        let args = parse(&["--key", "k", "--bucket", "b", "--expect-sha256", &hex]);
        assert_eq!(
            args,
            Ok(Args {
                bucket: "b".into(),
                key: "k".into(),
                expect: Some(Sha256::of(b"x")),
            })
        );
        assert!(parse(&["--bucket", "b"]).is_err());
        assert!(parse(&["--bucket"]).is_err());
        assert!(parse(&["--bucket", "b", "--key", "k", "--what"]).is_err());
        let bad = parse(&["--bucket", "b", "--key", "k", "--expect-sha256", "zz"]);
        assert!(bad.is_err_and(|e| e.starts_with("--expect-sha256:")));
    }
}
