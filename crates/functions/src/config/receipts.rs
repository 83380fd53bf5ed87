//! Receipts (`RECEIPT_*`): read by every binary that issues them (the API, the verifier for its
//! verdict events, the webhooks function for its webhooks).

use super::{ConfigError, Lookup};

/// The key receipts are signed with, the keys rotated out, and the issuer they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// `RECEIPT_KEY_ID`: the KMS key (id or ARN; ECC_NIST_P256, SIGN_VERIFY) that signs now.
    pub key_id: String,
    /// `RECEIPT_RETIRED_KEY_IDS`: keys that signed before a rotation, comma-separated; their
    /// public halves stay published, so their receipts stay checkable.
    pub retired_key_ids: Vec<String>,
    /// `RECEIPT_ISSUER`: every receipt's `iss` (default `verified-uploads`); the template sets
    /// the API's URL.
    pub issuer: String,
}

/// `None` when `RECEIPT_KEY_ID` is unset: no receipts.
pub(super) fn receipts(get: &impl Lookup) -> Result<Option<ReceiptSettings>, ConfigError> {
    let Some(key_id) = get.set("RECEIPT_KEY_ID") else {
        if let Some(retired) = get.set("RECEIPT_RETIRED_KEY_IDS") {
            return Err(ConfigError::Invalid {
                name: "RECEIPT_RETIRED_KEY_IDS",
                value: retired,
                reason: "needs RECEIPT_KEY_ID: the key that signs now".into(),
            });
        }
        return Ok(None);
    };
    let retired_key_ids = get
        .set("RECEIPT_RETIRED_KEY_IDS")
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ReceiptSettings {
        key_id: key_id.trim().to_owned(),
        retired_key_ids,
        issuer: get
            .set("RECEIPT_ISSUER")
            .map_or_else(|| "verified-uploads".to_owned(), |v| v.trim().to_owned()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<ReceiptSettings>, ConfigError> {
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        receipts(&get)
    }

    #[test]
    fn receipts_are_off_without_a_key_and_read_their_rotation() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(
            read(&[
                ("RECEIPT_KEY_ID", "arn:aws:kms:eu-west-1:1:key/new"),
                ("RECEIPT_RETIRED_KEY_IDS", " key/old1 ,, key/old2"),
                ("RECEIPT_ISSUER", "https://api.example"),
            ])
            .unwrap(),
            Some(ReceiptSettings {
                key_id: "arn:aws:kms:eu-west-1:1:key/new".into(),
                retired_key_ids: vec!["key/old1".into(), "key/old2".into()],
                issuer: "https://api.example".into(),
            })
        );
        assert_eq!(
            read(&[("RECEIPT_KEY_ID", "k")]).unwrap().unwrap().issuer,
            "verified-uploads"
        );
        let err = read(&[("RECEIPT_RETIRED_KEY_IDS", "old")]).unwrap_err();
        assert!(err.to_string().contains("RECEIPT_KEY_ID"), "{err}");
    }
}
