//! The arguments (clap) and what each subcommand prints; exit statuses: 0 verified (or done),
//! 1 failed verification or a refused download, 2 usage or input errors, 3 service or network
//! errors, 130 interrupted (the upload stays resumable).
//!
//! `args`: the command line as clap reads it; `commands`: what each subcommand does and prints.

mod args;
mod commands;
mod receipts;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

use super::Error;
use super::api::Api;
use super::download::{ReceiptCheck, download};
use args::Command;
pub use args::{Cli, parse_size};
use commands::{list, print_record, upload};

/// Parses `args` (the program name first) and runs the command; the exit status.
pub async fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let http = match super::api::http_client() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("verified-uploads: {e}");
            return ExitCode::from(3);
        }
    };
    // A receipt checked against saved keys needs no API: it is checked offline.
    if let Command::Check {
        receipt,
        file,
        keys: Some(keys),
    } = &cli.command
    {
        let code = receipts::check(cli.json, &http, None, receipt, file.as_deref(), Some(keys));
        return ExitCode::from(code.await);
    }
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
        Command::Download {
            id,
            output,
            allow_unreceipted,
        } => match download(api, id, output.as_deref(), *allow_unreceipted).await {
            Ok(d) => {
                if cli.json {
                    let line = serde_json::json!({"upload_id": id, "path": d.path, "sha256": d.sha256, "size": d.size, "receipt": d.receipt.as_str(), "receipt_checked": d.receipt == ReceiptCheck::Checked});
                    println!("{line}");
                } else {
                    let receipt = match d.receipt {
                        ReceiptCheck::Checked => "  receipt checked",
                        ReceiptCheck::NotIssued => "",
                        ReceiptCheck::Missing => "  NO RECEIPT (--allow-unreceipted)",
                    };
                    println!(
                        "verified  {}  sha256 {}  {} bytes{receipt}",
                        d.path.display(),
                        d.sha256,
                        d.size,
                    );
                }
                0
            }
            Err(e) => fail(&e),
        },
        Command::Receipt { id, output } => {
            receipts::save(cli.json, api, id, output.as_deref()).await
        }
        Command::Check {
            receipt,
            file,
            keys,
        } => {
            receipts::check(
                cli.json,
                api.http(),
                Some(api),
                receipt,
                file.as_deref(),
                keys.as_deref(),
            )
            .await
        }
        Command::Keys => receipts::keys(api).await,
    }
}

fn fail(e: &Error) -> u8 {
    eprintln!("verified-uploads: {e}");
    e.exit_code()
}
