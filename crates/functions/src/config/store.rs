//! Where the service keeps objects and sessions: what the API and the verifier both read.

use super::{ConfigError, Lookup};

/// The uploads bucket, the sessions table and how objects are written.
#[derive(Debug, Clone)]
pub struct Store {
    /// `BUCKET_NAME`.
    pub bucket: String,
    /// `TABLE_NAME`.
    pub table: String,
    /// `KMS_KEY_ARN`, `S3_ACCELERATE`.
    pub s3: S3Options,
}

impl Store {
    pub(super) fn from_lookup(get: &impl Lookup) -> Result<Self, ConfigError> {
        let bucket = get.required("BUCKET_NAME")?;
        Ok(Self {
            s3: S3Options::from_lookup(get, &bucket)?,
            bucket,
            table: table(get)?,
        })
    }
}

/// `TABLE_NAME`, the sessions table: the webhooks function reads it alone (what it signs is
/// re-read from there).
pub(super) fn table(get: &impl Lookup) -> Result<String, ConfigError> {
    get.required("TABLE_NAME")
}

/// How objects are written and addressed in S3.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `KMS_KEY_ARN`: objects are encrypted with SSE-KMS under this key (with an S3 bucket key);
    /// `None`: SSE-S3, the bucket's default.
    pub kms_key_arn: Option<String>,
    /// `S3_ACCELERATE=true`: part URLs, forms and downloads use the bucket's Transfer
    /// Acceleration endpoint (ignored, with a warning, under an endpoint override).
    pub accelerate: bool,
}

impl S3Options {
    fn from_lookup(get: &impl Lookup, bucket: &str) -> Result<Self, ConfigError> {
        let kms_key_arn = get("KMS_KEY_ARN")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if let Some(arn) = &kms_key_arn
            && !is_kms_key_arn(arn)
        {
            return Err(ConfigError::Invalid {
                name: "KMS_KEY_ARN",
                value: arn.clone(),
                // IAM grants a key by its ARN; an alias or bare id would not match the policy.
                reason: "must be a KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (not an alias or a bare key id)".into(),
            });
        }
        let accelerate = get.flag("S3_ACCELERATE")?;
        if accelerate && !vu_aws::presign::accelerable(bucket) {
            return Err(ConfigError::Invalid {
                name: "S3_ACCELERATE",
                value: "true".into(),
                reason: format!(
                    "BUCKET_NAME {bucket:?} cannot use Transfer Acceleration: it needs a DNS-compatible name without dots"
                ),
            });
        }
        Ok(Self {
            kms_key_arn,
            accelerate,
        })
    }
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID`.
fn is_kms_key_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "kms", region, account, resource]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("key/").is_some_and(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
    )
}
