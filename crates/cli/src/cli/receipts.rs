//! What the `receipt`, `check` and `keys` subcommands do and print.

use std::path::{Path, PathBuf};

use super::fail;
use crate::Error;
use crate::api::Api;
use crate::receipt::{check as check_receipt, check_file, load_keys};

/// `receipt ID [-o FILE]`: saves the receipt.
pub(super) async fn save(json: bool, api: &Api, id: &str, output: Option<&Path>) -> u8 {
    let receipt = match api.receipt(id).await {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    let path = output.map_or_else(
        || PathBuf::from(format!("{id}.receipt.jwt")),
        Path::to_path_buf,
    );
    if let Err(e) = tokio::fs::write(&path, format!("{receipt}\n")).await {
        return fail(&Error::io(format!("cannot write {}", path.display()), e));
    }
    if json {
        println!("{}", serde_json::json!({"upload_id": id, "path": path}));
    } else {
        println!("saved  {}  receipt of upload {id}", path.display());
    }
    0
}

/// `keys`: prints the published key set.
pub(super) async fn keys(api: &Api) -> u8 {
    match api.jwks().await {
        Ok(keys) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&keys).unwrap_or_default()
            );
            0
        }
        Err(e) => fail(&e.into()),
    }
}

/// `check RECEIPT [FILE] [--keys …]`: 0 valid, 1 refused.
pub(super) async fn check(
    json: bool,
    http: &reqwest::Client,
    api: Option<&Api>,
    receipt: &Path,
    file: Option<&Path>,
    keys: Option<&str>,
) -> u8 {
    let source = match (keys, api) {
        (Some(k), _) => k.to_owned(),
        (None, Some(api)) => format!("{}{}", api.base(), vu_contract::receipt::JWKS_PATH),
        (None, None) => {
            eprintln!(
                "error: the keys to check with are required: --keys JWKS-FILE-OR-URL (or --api URL)"
            );
            return 2;
        }
    };
    let started = std::time::Instant::now();
    let text = match tokio::fs::read_to_string(receipt).await {
        Ok(t) => t,
        Err(e) => return fail(&Error::io(format!("cannot read {}", receipt.display()), e)),
    };
    let keys = match load_keys(http, &source).await {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let claims = match check_receipt(&text, &keys) {
        Ok(c) => c,
        Err(why) => return fail(&Error::Mismatch(format!("refused: {why}"))),
    };
    if let Some(file) = file {
        match check_file(&claims, file).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return fail(&Error::Mismatch(format!(
                    "refused: {}: {why}",
                    file.display()
                )));
            }
            Err(e) => return fail(&e),
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if json {
        println!(
            "{}",
            serde_json::json!({"valid": true, "claims": claims, "file": file, "ms": ms})
        );
    } else {
        println!(
            "valid  receipt of upload {}: {} bytes, sha256 {}, {}/{} version {}, verified {} by {}{}",
            claims.upload_id,
            claims.size,
            claims.sha256,
            claims.bucket,
            claims.key,
            claims.version_id.as_deref().unwrap_or("-"),
            claims.verified_at,
            claims.iss,
            file.map_or_else(String::new, |f| format!("; {} is those bytes", f.display())),
        );
    }
    0
}
