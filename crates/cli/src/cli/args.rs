//! The arguments, as clap reads them: each subcommand's, with its examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use vu_contract::Sha256;

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

const RECEIPT_EXAMPLES: &str = "\
Examples:
  verified-uploads receipt 01JDZ4Q8X6M3V9T2K7R5N1B0CD                # to 01JDZ4Q8X6M3V9T2K7R5N1B0CD.receipt.jwt
  verified-uploads keys > keys.json                                   # the published keys, to check offline
  verified-uploads check 01JDZ4Q8X6M3V9T2K7R5N1B0CD.receipt.jwt release.tar.gz --keys keys.json

The receipt is a compact JWS (ES256) that any JOSE library checks against the keys at
/.well-known/jwks.json (docs/receipts.md).";

const CHECK_EXAMPLES: &str = "\
Examples:
  verified-uploads check upload.receipt.jwt --keys keys.json                 # offline
  verified-uploads check upload.receipt.jwt release.tar.gz --keys keys.json  # and the file
  verified-uploads check upload.receipt.jwt --keys https://api.example/.well-known/jwks.json

Exit status: 0 the receipt is valid (and FILE is the bytes it names), 1 refused (a changed
receipt, another key, another file), 2 an unreadable receipt, file or key set, 3 network error.";

const DOWNLOAD_EXAMPLES: &str = "\
Examples:
  verified-uploads download 01JDZ4Q8X6M3V9T2K7R5N1B0CD               # to its filename, here
  verified-uploads download 01JDZ4Q8X6M3V9T2K7R5N1B0CD -o /srv/data.bin

The file is written under a temporary name and renamed into place only when its SHA-256 is the
verified upload's; otherwise it is removed, the target is left untouched, and the exit status is 1.
When the service issues receipts, the upload's receipt is checked first against its published keys,
and the bytes must be the ones the receipt names; an upload without one is refused (exit 1) unless
--allow-unreceipted is given.";

#[derive(Debug, Parser)]
#[command(name = "verified-uploads", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The API's base URL.
    #[arg(long, env = "VERIFIED_UPLOADS_API", global = true, value_name = "URL")]
    pub(super) api: Option<String>,
    /// A bearer token for the API's authorizer.
    #[arg(
        long,
        env = "VERIFIED_UPLOADS_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(super) token: Option<String>,
    /// Print records as JSON (one per line) instead of human lines.
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// No progress on stderr.
    #[arg(long, short, global = true)]
    pub(super) quiet: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
        /// Download an upload that has no receipt although the service issues them (verified
        /// before it did), on the record's SHA-256 alone.
        #[arg(long)]
        allow_unreceipted: bool,
    },
    /// Save a verified upload's signed receipt.
    #[command(after_help = RECEIPT_EXAMPLES)]
    Receipt {
        /// The upload id.
        id: String,
        /// Where to save it (default: ID.receipt.jwt, in the current directory).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check a saved receipt offline against saved keys, and that FILE is the bytes it names.
    #[command(after_help = CHECK_EXAMPLES)]
    Check {
        /// The saved receipt (as `receipt` saves it).
        receipt: PathBuf,
        /// The file the receipt should name (its size and SHA-256).
        file: Option<PathBuf>,
        /// The key set: a JWKS file, or a URL (default: the API's /.well-known/jwks.json).
        #[arg(long, value_name = "JWKS-FILE-OR-URL")]
        keys: Option<String>,
    },
    /// Print the keys receipts are checked with (the API's JWKS), to save for offline checks.
    Keys,
}

#[derive(Debug, Args)]
pub(super) struct UploadArgs {
    /// The files to upload, one after another.
    #[arg(required = true, value_name = "FILE")]
    pub(super) files: Vec<PathBuf>,
    /// Parts in flight at once, per file. Memory stays within about (concurrency + 2) × part size.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) concurrency: u16,
    /// Bytes per part, 5MiB to 5GiB (suffixes KiB, MiB, GiB); default: the service's.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub(super) part_size: Option<u64>,
    /// The SHA-256 (hex) the file must have, e.g. one published beside it. One file only.
    #[arg(long, value_parser = parse_sha256, value_name = "HEX")]
    pub(super) sha256: Option<Sha256>,
    /// The object's content type (default application/octet-stream).
    #[arg(long, value_name = "MIME")]
    pub(super) content_type: Option<String>,
    /// Abort the interrupted upload of each FILE instead of resuming it.
    #[arg(long)]
    pub(super) abort: bool,
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
