//! `verifier --bucket B --key K [--expect-sha256 HEX]`: streams one object through SHA-256 as
//! the service does, prints one JSON line, exits 1 on a mismatch (2: usage, 3: S3 failed).
//!
//! With `--part-size N --part-states FILE [--workers W]` it verifies by segments as the service
//! does from a client's `part_states` (the same code, `vu_core::segments`), W segments at once,
//! each on its own connection: what W verifier functions reading one segment each would see.
//! `verifier --print-part-states LOCAL_FILE --part-size N` prints the states a client declares
//! for a local file (the JSON object `part_states` takes), for the benchmark.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::config::VerifyConfig;
use vu_aws::S3Objects;
use vu_contract::{PartPlan, PartStates};
use vu_core::domain::Sha256;
use vu_core::error::chain;
use vu_core::hash;
use vu_core::ports::{BoxError, ObjectStore};
use vu_core::segments::{Claimed, MAX_KEPT_STATES, verify_by_segments};

const USAGE: &str = "usage: verifier --bucket BUCKET --key KEY [--expect-sha256 HEX] \
[--part-size BYTES --part-states FILE [--workers W]]
       verifier --print-part-states LOCAL_FILE --part-size BYTES";

#[derive(Debug, PartialEq)]
pub struct Args {
    pub bucket: String,
    pub key: String,
    pub expect: Option<Sha256>,
    /// Verify by segments: the part size, and the file holding the declared states.
    pub segments: Option<(u64, PathBuf)>,
    /// Segments hashed at once (default: `VERIFY_CONCURRENCY`).
    pub workers: Option<usize>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Verify(Args),
    /// Print the chaining values of a local file's part boundaries.
    PrintStates {
        file: PathBuf,
        part_size: u64,
    },
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
        let (mut bucket, mut key, mut expect) = (None, None, None);
        let (mut part_size, mut states, mut workers, mut print) = (None, None, None, None);
        let number = |flag: &str, v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{flag} takes a positive whole number\n{USAGE}"))
        };
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
                "--part-size" => part_size = Some(number(&flag, value()?)?),
                "--part-states" => states = Some(PathBuf::from(value()?)),
                "--workers" => {
                    let w = number(&flag, value()?)?;
                    workers = Some(usize::try_from(w).map_err(|e| e.to_string())?);
                }
                "--print-part-states" => print = Some(PathBuf::from(value()?)),
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if let Some(file) = print {
            let part_size = part_size.ok_or(format!("--part-size is required\n{USAGE}"))?;
            return Ok(Command::PrintStates { file, part_size });
        }
        let segments = match (part_size, states) {
            (Some(p), Some(s)) => Some((p, s)),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "--part-size and --part-states go together\n{USAGE}"
                ));
            }
        };
        Ok(Command::Verify(Self {
            bucket: bucket.ok_or(USAGE)?,
            key: key.ok_or(USAGE)?,
            expect,
            segments,
            workers,
        }))
    }
}

/// The chaining value after every part of `file` but the last, as `part_states` declares them.
fn part_states_of(file: &std::path::Path, part_size: u64) -> Result<serde_json::Value, BoxError> {
    use std::io::Read as _;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let size = std::fs::metadata(file)?.len();
    let mut chain = vu_contract::Chain::new();
    let mut states = PartStates::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut part = 0u16;
    while done + part_size < size {
        let mut left = part_size;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64))?;
            reader.read_exact(&mut buf[..n])?;
            chain.update(&buf[..n]);
            left -= n as u64;
        }
        done += part_size;
        part += 1;
        let state = chain
            .state()
            .ok_or("the part size is not a multiple of 64 bytes")?;
        states.insert(part, state);
    }
    Ok(serde_json::to_value(&states)?)
}

/// Verifies by the declared states' segments, `workers` at once (each segment's ranges read one
/// after the other on its own connection).
async fn digest_by_segments(
    store: &S3Objects,
    cfg: VerifyConfig,
    args: &Args,
    info: &vu_core::ports::ObjectInfo,
    (part_size, states): (u64, &std::path::Path),
) -> Result<(Sha256, u32), BoxError> {
    let plan = PartPlan::stored(info.size, part_size)?;
    let states: PartStates = serde_json::from_slice(&std::fs::read(states)?)?;
    states.fit(&plan)?;
    // The service keeps no more than this many states from a claim: the same cut here.
    let states = states.thinned(MAX_KEPT_STATES);
    let claimed = Claimed {
        plan: &plan,
        states: &states,
        expected: args.expect,
    };
    let cfg = VerifyConfig {
        concurrency: args.workers.unwrap_or(cfg.concurrency),
        ..cfg
    };
    let verdict = verify_by_segments(store, &args.key, info, claimed, cfg, None)
        .await?
        .ok_or("verification stopped without a deadline")?;
    Ok((verdict.digest, verdict.segments))
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
    let (digest, segments) = match &args.segments {
        Some((part_size, states)) => {
            digest_by_segments(&store, cfg, args, &info, (*part_size, states)).await?
        }
        None => match hash::sha256_object(&store, key, &info, cfg, None, None).await? {
            hash::Hashed::Done(digest) => (digest, 1),
            hash::Hashed::Paused(_) => {
                return Err("verification stopped without a deadline".into());
            }
        },
    };
    let line = serde_json::json!({
        "bucket": bucket,
        "key": key,
        "size": info.size,
        "sha256": digest,
        "segments": segments,
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
        Ok(Command::Verify(a)) => a,
        Ok(Command::PrintStates { file, part_size }) => {
            return match part_states_of(&file, part_size) {
                Ok(states) => {
                    println!("{states}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("could not read {}: {}", file.display(), chain(e.as_ref()));
                    ExitCode::from(3)
                }
            };
        }
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
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        match Args::parse(args.iter().map(|s| (*s).to_owned()))? {
            Command::Verify(a) => Ok(a),
            other => Err(format!("not a verification: {other:?}")),
        }
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
                segments: None,
                workers: None,
            })
        );
        assert!(parse(&["--bucket", "b"]).is_err());
        assert!(parse(&["--bucket"]).is_err());
        assert!(parse(&["--bucket", "b", "--key", "k", "--what"]).is_err());
        let bad = parse(&["--bucket", "b", "--key", "k", "--expect-sha256", "zz"]);
        assert!(bad.is_err_and(|e| e.starts_with("--expect-sha256:")));
    }

    #[test]
    fn segments_need_a_part_size_and_states_and_workers_are_positive() {
        let args = parse(&[
            "--bucket",
            "b",
            "--key",
            "k",
            "--part-size",
            "64",
            "--part-states",
            "s.json",
            "--workers",
            "16",
        ])
        .expect("a verification by segments");
        assert_eq!(args.segments, Some((64, PathBuf::from("s.json"))));
        assert_eq!(args.workers, Some(16));
        assert!(parse(&["--bucket", "b", "--key", "k", "--part-size", "64"]).is_err());
        assert!(parse(&["--bucket", "b", "--key", "k", "--workers", "0"]).is_err());
        let print = Args::parse(
            ["--print-part-states", "f", "--part-size", "128"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        assert_eq!(
            print,
            Ok(Command::PrintStates {
                file: PathBuf::from("f"),
                part_size: 128
            })
        );
    }

    #[test]
    fn printed_states_are_the_chaining_values_at_each_part_boundary() {
        let dir = std::env::temp_dir().join(format!("vu-states-{}", std::process::id()));
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&dir, &data).expect("temp file");
        let states = part_states_of(&dir, 128).expect("states");
        let _ = std::fs::remove_file(&dir);
        let states: PartStates = serde_json::from_value(states).expect("part_states JSON");
        // 1000 bytes in parts of 128: 8 parts, a state after each of the first 7.
        assert_eq!(states.len(), 7);
        for (n, state) in states.iter() {
            let mut c = vu_contract::Chain::new();
            c.update(&data[..usize::from(n) * 128]);
            assert_eq!(c.state(), Some(state), "after part {n}");
        }
    }
}
