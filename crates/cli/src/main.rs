//! `verified-uploads`: the command-line client (`vu_cli::cli`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs only when asked (RUST_LOG), and on stderr: stdout carries the verdicts.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    vu_cli::cli::main(std::env::args_os()).await
}
