//! What the upload and list subcommands do and print, and how a record prints.

use super::args::{Cli, UploadArgs};
use super::fail;
use crate::api::{Api, Record};
use crate::progress::{Mode, Progress};
use crate::state::StateDir;
use crate::upload::{Options, Outcome, Uploader};
use vu_contract::{Sha256, Status};

pub(super) async fn upload(cli: &Cli, api: &Api, args: &UploadArgs) -> u8 {
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

pub(super) fn print_record(json: bool, r: &Record) {
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

pub(super) async fn list(json: bool, api: &Api, status: Option<&str>, limit: u32) -> u8 {
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
