//! The `verified-uploads` command-line client: uploads files through the API's pre-signed part
//! URLs (reading each file once, hashing it whole and per part), resumes interrupted uploads,
//! waits for the service's verdict, and downloads verified uploads checking their SHA-256.
//!
//! - `api`: the HTTP API as typed calls (problem documents become one-line errors);
//! - `upload`: the upload of one file (parts in flight bounded, retries, resume, completion);
//! - `state`: what an interrupted upload leaves in the user's cache directory;
//! - `download`: a verified download into a temporary file, renamed only when its digest matches;
//! - `receipt`: receipts checked offline against a saved key set, and against the file;
//! - `progress`: a bar on a terminal, plain lines elsewhere;
//! - `cli`: the arguments (clap) and exit statuses. `src/bin/verified-uploads.rs` only calls it.

pub mod api;
pub mod cli;
pub mod download;
pub mod progress;
pub mod receipt;
pub mod state;
pub mod upload;

/// Why a command did not succeed; each maps onto one exit status (`Error::exit_code`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a missing file, a file that changed while uploading, a held part that is not
    /// this file's. Exit 2.
    #[error("{0}")]
    Input(String),
    /// The API or S3 refused or could not be reached. Exit 3 (2 when the API calls the input
    /// malformed: 400, 413).
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// The bytes are not the ones the record names (a download whose digest differs). Exit 1.
    #[error("{0}")]
    Mismatch(String),
    /// Reading or writing local files failed. Exit 2 (the input is not usable as given).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Mismatch(_) => 1,
            Self::Input(_) | Self::Io { .. } => 2,
            // The API refused the input itself (a malformed id, a file too large).
            Self::Api(e) if matches!(e.status(), Some(400 | 413)) => 2,
            Self::Api(_) => 3,
        }
    }
}
