//! `verified-uploads`: the command-line client (`client::cli`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs only when asked (RUST_LOG), and on stderr: stdout carries the verdicts.
    if std::env::var_os("RUST_LOG").is_some() {
        lambda_http::tracing::init_default_subscriber_with_writer(std::io::stderr);
    }
    verified_uploads::client::cli::main(std::env::args_os()).await
}
