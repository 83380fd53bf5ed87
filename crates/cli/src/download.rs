//! `download ID`: streams exactly the verified version into a temporary file beside the target,
//! hashing as it writes, and renames it into place only when its SHA-256 and size are the
//! record's. Otherwise the temporary file is removed and the target is left untouched. When the
//! service issues receipts, the upload's receipt is checked first (against the API's published
//! keys), and the record's size and SHA-256 must be the ones it names.

use std::path::{Path, PathBuf};

use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use super::Error;
use super::api::{Api, ApiError, network};
use vu_contract::problem::ProblemType;

/// A download that ended in place.
#[derive(Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub receipt: ReceiptCheck,
}

/// What became of the upload's receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptCheck {
    /// Checked against the published keys, and it names these bytes.
    Checked,
    /// The service issues no receipts: nothing to check.
    NotIssued,
    /// The service issues receipts but this upload has none (verified before it did, or its
    /// receipt was removed from the table), and `--allow-unreceipted` accepted that.
    Missing,
}

impl ReceiptCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checked => "checked",
            Self::NotIssued => "not-issued",
            Self::Missing => "missing",
        }
    }
}

/// Removes the temporary file unless disarmed (on every early return, error or mismatch).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Downloads upload `id` to `output` (default: its filename in the current directory); an
/// upload without a receipt from a service that issues them only with `allow_unreceipted`.
pub async fn download(
    api: &Api,
    id: &str,
    output: Option<&Path>,
    allow_unreceipted: bool,
) -> Result<Downloaded, Error> {
    let d = api.download(id).await?;
    let receipt = check_receipt(api, id, &d, allow_unreceipted).await?;
    let target = match output {
        Some(p) => p.to_path_buf(),
        // The API's filename is one path component already; never let it climb out.
        None => PathBuf::from(Path::new(&d.filename).file_name().ok_or_else(|| {
            Error::Input(format!(
                "the upload's filename {:?} is not usable here; pass -o FILE",
                d.filename
            ))
        })?),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| Error::Input(format!("{} is not a file name", target.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp_path = dir.join(format!(".{name}.{}.partial", ulid::Ulid::new()));
    let mut guard = TempFile(Some(tmp_path.clone()));
    let mut file = tokio::fs::File::create(&tmp_path)
        .await
        .map_err(|e| Error::io(format!("cannot create {}", tmp_path.display()), e))?;

    let mut res = api
        .http()
        .get(&d.url)
        .send()
        .await
        .map_err(|e| network("GET the verified object", &e))?;
    if !res.status().is_success() {
        return Err(ApiError::Network(format!(
            "S3 answered {} for the verified object",
            res.status().as_u16()
        ))
        .into());
    }
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| network("reading the verified object", &e))?
    {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(format!("cannot write {}", tmp_path.display()), e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| Error::io(format!("cannot write {}", tmp_path.display()), e))?;
    drop(file);
    let got = hex::encode(hasher.finalize());
    if got != d.sha256 || size != d.size {
        return Err(Error::Mismatch(format!(
            "refused: the downloaded bytes ({size} bytes, SHA-256 {got}) are not the verified \
             upload's ({} bytes, SHA-256 {}); {} was not written",
            d.size,
            d.sha256,
            target.display()
        )));
    }
    tokio::fs::rename(&tmp_path, &target).await.map_err(|e| {
        Error::io(
            format!("cannot move the download to {}", target.display()),
            e,
        )
    })?;
    guard.0 = None;
    Ok(Downloaded {
        path: target,
        sha256: got,
        size,
        receipt,
    })
}

/// Checks the upload's receipt against the API's keys, and that it names the bytes the download
/// is then held to. Nothing to check when the service issues no receipts (404 `no-route`). A
/// service that issues them but has none for this upload (404 `no-receipt`) is refused unless
/// `allow_unreceipted`: whoever can write the table can remove a receipt, and a check skipped
/// in silence would look like one passed.
async fn check_receipt(
    api: &Api,
    id: &str,
    d: &super::api::Download,
    allow_unreceipted: bool,
) -> Result<ReceiptCheck, Error> {
    let receipt = match api.receipt(id).await {
        Ok(r) => r,
        Err(e) => {
            // `no-route` is also any unknown path's answer: it means "no receipts here" only
            // when the service publishes no keys either.
            let unissued = match not_found(&e) {
                Some(ProblemType::NoRoute) => Some(match api.jwks().await {
                    Ok(keys) => keys.keys.is_empty(),
                    // A service older than receipts has no key set either.
                    Err(e) if not_found(&e).is_some() => true,
                    Err(e) => return Err(e.into()),
                }),
                Some(ProblemType::NoReceipt) => Some(false),
                _ => None,
            };
            return match unissued {
                Some(true) => Ok(ReceiptCheck::NotIssued),
                Some(false) if allow_unreceipted => Ok(ReceiptCheck::Missing),
                Some(false) => Err(Error::Mismatch(
                    "refused: the service issues receipts but this upload has none (verified \
                     before it issued them, or its receipt was removed); nothing was written. \
                     Pass --allow-unreceipted to download it on the record's SHA-256 alone"
                        .into(),
                )),
                _ => Err(e.into()),
            };
        }
    };
    let keys = api.jwks().await?;
    let claims = crate::receipt::check(&receipt, &keys)
        .map_err(|why| Error::Mismatch(format!("refused: the upload's receipt: {why}")))?;
    if claims.upload_id != id || claims.sha256.to_hex() != d.sha256 || claims.size != d.size {
        return Err(Error::Mismatch(format!(
            "refused: the upload's receipt names other bytes ({} bytes, SHA-256 {}) than the \
             record ({} bytes, SHA-256 {}); nothing was written",
            claims.size, claims.sha256, d.size, d.sha256
        )));
    }
    Ok(ReceiptCheck::Checked)
}

/// The problem type of a 404 answer.
fn not_found(e: &ApiError) -> Option<ProblemType> {
    match e {
        ApiError::Problem {
            status: 404, body, ..
        } => body["type"].as_str().and_then(ProblemType::parse),
        _ => None,
    }
}
