//! The arguments (clap) and what each subcommand prints; exit statuses: 0 verified (or done),
//! 1 failed verification or a refused download, 2 usage or input errors, 3 service or network
//! errors, 130 interrupted (the upload stays resumable).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use super::Error;
use super::api::{Api, Record};
use super::download::download;
use super::progress::{Mode, Progress};
use super::state::StateDir;
use super::upload::{Options, Outcome, Uploader};
use vu_contract::{Sha256, Status};

const ABOUT: &str = "Uploads files straight to S3 through a verified-uploads API, verified end to \
end by SHA-256, and downloads verified uploads.";

const EXAMPLES: &str = "\
Examples:
  export VERIFIED_UPLOADS_API=https://abc123.execute-api.eu-west-1.amazonaws.com
  verified-uploads upload release.tar.gz
  verified-uploads status 01JDZ4Q8X6M3V9T2K7R5N1B0CD
  verified-uploads download 01JDZ4Q8X6M3V9T2K7R5N1B0CD -o release.tar.gz

Exit status: 0 verified, 1 failed verification (or a download whose SHA-256 is not the record's),
2 usage or input error, 3 service or network error, 130 interrupted (run again to resume).";

const UPLOAD_EXAMPLES: &str = "\
Examples:
  verified-uploads upload --api http://127.0.0.1:3000 dump.sql.gz
  verified-uploads upload --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 data.bin
  verified-uploads upload --concurrency 8 --part-size 64MiB --json *.parquet
  verified-uploads upload --abort data.bin     # give up an interrupted upload of data.bin

An interrupted upload (Ctrl-C, crash, lost network) continues where it stopped when the same,
unchanged file is uploaded again: only the parts S3 does not hold are sent.";

const STATUS_EXAMPLES: &str = "\
Examples:
  verified-uploads status 01JDZ4Q8X6M3V9T2K7R5N1B0CD
  verified-uploads status --json 01JDZ4Q8X6M3V9T2K7R5N1B0CD | jq -r .sha256";

const LIST_EXAMPLES: &str = "\
Examples:
  verified-uploads list
  verified-uploads list --status failed --limit 100
  verified-uploads list --json | jq -r .upload_id";

const DOWNLOAD_EXAMPLES: &str = "\
Examples:
  verified-uploads download 01JDZ4Q8X6M3V9T2K7R5N1B0CD               # to its filename, here
  verified-uploads download 01JDZ4Q8X6M3V9T2K7R5N1B0CD -o /srv/data.bin

The file is written under a temporary name and renamed into place only when its SHA-256 is the
verified upload's; otherwise it is removed, the target is left untouched, and the exit status is 1.";

#[derive(Debug, Parser)]
#[command(name = "verified-uploads", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The API's base URL.
    #[arg(long, env = "VERIFIED_UPLOADS_API", global = true, value_name = "URL")]
    api: Option<String>,
    /// A bearer token for the API's authorizer.
    #[arg(
        long,
        env = "VERIFIED_UPLOADS_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Print records as JSON (one per line) instead of human lines.
    #[arg(long, global = true)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload files and wait for the service's verdict.
    #[command(after_help = UPLOAD_EXAMPLES)]
    Upload(UploadArgs),
    /// Show an upload's record.
    #[command(after_help = STATUS_EXAMPLES)]
    Status {
        /// The upload id.
        id: String,
    },
    /// List your uploads, newest first.
    #[command(after_help = LIST_EXAMPLES)]
    List {
        /// Only uploads in this state.
        #[arg(long, value_parser = ["pending", "completing", "verifying", "verified", "failed", "aborted"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
    /// Download exactly the verified version of an upload, checking its SHA-256.
    #[command(after_help = DOWNLOAD_EXAMPLES)]
    Download {
        /// The upload id.
        id: String,
        /// Where to write it (default: the upload's filename, in the current directory).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct UploadArgs {
    /// The files to upload, one after another.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Parts in flight at once, per file. Memory stays within about (concurrency + 2) × part size.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Bytes per part, 5MiB to 5GiB (suffixes KiB, MiB, GiB); default: the service's.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    part_size: Option<u64>,
    /// The SHA-256 (hex) the file must have, e.g. one published beside it. One file only.
    #[arg(long, value_parser = parse_sha256, value_name = "HEX")]
    sha256: Option<Sha256>,
    /// The object's content type (default application/octet-stream).
    #[arg(long, value_name = "MIME")]
    content_type: Option<String>,
    /// Abort the interrupted upload of each FILE instead of resuming it.
    #[arg(long)]
    abort: bool,
}

fn parse_sha256(s: &str) -> Result<Sha256, String> {
    Sha256::parse_hex(s.trim()).map_err(|_| "must be 64 hexadecimal characters".into())
}

/// `16777216`, `16MiB`, `16M`, `1GiB`, `512KiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 16MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses `args` (the program name first) and runs the command; the exit status.
pub async fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let Some(base) = cli.api.clone().filter(|a| !a.trim().is_empty()) else {
        eprintln!(
            "error: the API's URL is required: --api URL or VERIFIED_UPLOADS_API\n\nFor more information, try '--help'."
        );
        return ExitCode::from(2);
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        eprintln!("error: --api {base:?} must be an http:// or https:// URL");
        return ExitCode::from(2);
    }
    let http = match super::api::http_client() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("verified-uploads: {e}");
            return ExitCode::from(3);
        }
    };
    let api = Api::new(http, &base, cli.token.clone());
    let run = run(&cli, &api);
    tokio::select! {
        code = run => ExitCode::from(code),
        _ = tokio::signal::ctrl_c() => {
            if matches!(cli.command, Command::Upload(_)) {
                eprintln!("\ninterrupted: run the same command again to resume, or add --abort to abort the upload");
            } else {
                eprintln!("\ninterrupted");
            }
            ExitCode::from(130)
        }
    }
}

async fn run(cli: &Cli, api: &Api) -> u8 {
    match &cli.command {
        Command::Upload(args) => upload(cli, api, args).await,
        Command::Status { id } => match api.record(id).await {
            Ok(r) => {
                print_record(cli.json, &r);
                0
            }
            Err(e) => fail(&e.into()),
        },
        Command::List { status, limit } => list(cli.json, api, status.as_deref(), *limit).await,
        Command::Download { id, output } => match download(api, id, output.as_deref()).await {
            Ok(d) => {
                if cli.json {
                    let line = serde_json::json!({"upload_id": id, "path": d.path, "sha256": d.sha256, "size": d.size});
                    println!("{line}");
                } else {
                    println!(
                        "verified  {}  sha256 {}  {} bytes",
                        d.path.display(),
                        d.sha256,
                        d.size
                    );
                }
                0
            }
            Err(e) => fail(&e),
        },
    }
}

fn fail(e: &Error) -> u8 {
    eprintln!("verified-uploads: {e}");
    e.exit_code()
}

async fn upload(cli: &Cli, api: &Api, args: &UploadArgs) -> u8 {
    if args.sha256.is_some() && args.files.len() > 1 {
        eprintln!("error: --sha256 declares one file's digest: upload one FILE with it");
        return 2;
    }
    let progress = Progress::new(Mode::detect(cli.quiet));
    let options = Options {
        concurrency: usize::from(args.concurrency),
        part_size: args.part_size,
        expected: args.sha256,
        content_type: args.content_type.clone(),
    };
    let state = StateDir::default_location();
    let uploader = Uploader {
        api,
        state: &state,
        progress: &progress,
        options: &options,
    };
    let mut worst = 0;
    for path in &args.files {
        let result = if args.abort {
            uploader.abort(path).await
        } else {
            uploader.upload(path).await
        };
        let code = match result {
            Ok(Outcome::Aborted { upload_id }) => {
                println!("aborted  {}  upload {upload_id}", path.display());
                0
            }
            Ok(Outcome::Settled {
                record,
                computed,
                resumed_parts,
            }) => {
                if resumed_parts > 0 {
                    progress.println(&format!(
                        "{}: resumed upload {} ({resumed_parts} parts were already in S3)",
                        path.display(),
                        record.upload_id
                    ));
                }
                verdict(cli.json, path, &record, computed)
            }
            Err(e) => {
                eprintln!("verified-uploads: {}: {e}", path.display());
                e.exit_code()
            }
        };
        worst = worst.max(code);
    }
    worst
}

/// Prints an upload's verdict; its exit status.
fn verdict(json: bool, path: &std::path::Path, r: &Record, computed: Option<Sha256>) -> u8 {
    // Verified, and (when this run read the file) verified as the bytes read here.
    let agrees = computed.is_none() || computed == r.sha256;
    let verified = r.status == Status::Verified;
    let hex = |d: Option<Sha256>| d.map_or_else(|| "-".to_owned(), |d| d.to_hex());
    if json {
        println!("{}", r.raw);
    } else if verified && agrees {
        println!(
            "verified  {}  sha256 {}  {} bytes  upload {}",
            path.display(),
            hex(r.sha256),
            r.size,
            r.upload_id
        );
    } else if verified {
        println!(
            "MISMATCH  {}  the service verified sha256 {} but this file's is {}  upload {}",
            path.display(),
            hex(r.sha256),
            hex(computed),
            r.upload_id
        );
    } else {
        println!(
            "FAILED  {}  {}  upload {} (the object was deleted)",
            path.display(),
            r.error.as_deref().unwrap_or(r.status.as_str()),
            r.upload_id
        );
    }
    if verified && agrees { 0 } else { 1 }
}

fn print_record(json: bool, r: &Record) {
    if json {
        println!("{}", r.raw);
        return;
    }
    let mut line = format!(
        "{}  {}  {}  {} bytes  sha256 {}",
        r.upload_id,
        r.status,
        r.filename,
        r.size,
        r.sha256.map_or_else(|| "-".to_owned(), |d| d.to_hex())
    );
    if let Some(e) = &r.error {
        line.push_str(&format!("  error: {e}"));
    }
    println!("{line}");
}

async fn list(json: bool, api: &Api, status: Option<&str>, limit: u32) -> u8 {
    let mut left = limit;
    let mut cursor: Option<String> = None;
    while left > 0 {
        match api.list(status, left.min(100), cursor.as_deref()).await {
            Ok((records, next)) => {
                for r in &records {
                    if json {
                        println!("{}", r.raw);
                    } else {
                        println!(
                            "{}  {:<10} {:>14}  {}  {}",
                            r.upload_id, r.status, r.size, r.created_at, r.filename
                        );
                    }
                }
                left = left.saturating_sub(records.len() as u32);
                match next {
                    Some(c) if !records.is_empty() => cursor = Some(c),
                    _ => break,
                }
            }
            Err(e) => return fail(&e.into()),
        }
    }
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("5m").unwrap(), 5 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn the_arguments_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "verified-uploads",
            "upload",
            "--api",
            "http://x",
            "--part-size",
            "8MiB",
            "a",
            "b",
        ])
        .unwrap();
        match cli.command {
            Command::Upload(a) => {
                assert_eq!(a.files.len(), 2);
                assert_eq!(a.part_size, Some(8 << 20));
                assert_eq!(a.concurrency, 4);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            vec!["verified-uploads", "upload"],
            vec!["verified-uploads", "upload", "--sha256", "abc", "f"],
            vec!["verified-uploads", "upload", "--concurrency", "0", "f"],
            vec!["verified-uploads", "list", "--status", "lost"],
            vec!["verified-uploads", "frobnicate"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
