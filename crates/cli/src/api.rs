//! The API's routes as typed calls. Transient failures (network errors, 429, 5xx) are retried
//! with backoff; a problem document becomes an `ApiError::Problem` shown as one line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Attempts per API call (the first included) when the failure is transient.
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered a problem document (or a bare error status).
    #[error("{title}: {detail} (HTTP {status})")]
    Problem {
        status: u16,
        title: String,
        detail: String,
        /// The whole document (a failed verification's carries the record as `upload`).
        body: Value,
    },
    /// Nothing usable came back: connection refused, timeout, a body that is not the JSON asked for.
    #[error("{0}")]
    Network(String),
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } => Some(*status),
            Self::Network(_) => None,
        }
    }

    fn transient(&self) -> bool {
        match self {
            Self::Problem { status, .. } => *status == 429 || *status >= 500,
            Self::Network(_) => true,
        }
    }
}

/// The error and every cause beneath it, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// A network error with its causes, on one line (reqwest's own message omits them).
pub fn network(context: &str, e: &reqwest::Error) -> ApiError {
    ApiError::Network(format!("{context}: {}", chain(e)))
}

/// The record as the API shows it: the contract's shape, and `raw`, the JSON as it came (for
/// `--json`, so fields a newer service adds are printed too).
#[derive(Debug, Clone)]
pub struct Record {
    pub view: vu_contract::Record,
    pub raw: Value,
}

impl std::ops::Deref for Record {
    type Target = vu_contract::Record;

    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

impl Record {
    pub fn from_json(raw: Value) -> Result<Self, ApiError> {
        let view = serde_json::from_value(raw.clone()).map_err(|e| {
            ApiError::Network(format!("the API answered an unexpected record: {e}"))
        })?;
        Ok(Self { view, raw })
    }

    /// Still being completed or verified: poll until it settles.
    pub fn unsettled(&self) -> bool {
        self.status.is_in_flight()
    }
}

/// A created session: its id and part plan.
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub upload_id: String,
    pub part_size: u64,
    pub part_count: u64,
}

/// A part S3 holds.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldPart {
    pub part_number: u64,
    pub size: u64,
    pub checksum_sha256: Option<String>,
}

/// A pre-signed part URL and the headers to send with it.
#[derive(Debug, Clone, Deserialize)]
pub struct SignedPart {
    pub part_number: u64,
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// `GET /uploads/{id}/object`.
#[derive(Debug, Clone, Deserialize)]
pub struct Download {
    pub url: String,
    pub sha256: String,
    pub size: u64,
    pub filename: String,
}

/// What `complete` answered: the record, settled or still verifying.
pub enum Completion {
    Settled(Record),
    Verifying(Record),
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// The HTTP client for the API and for S3: connections time out, reads that stall time out.
pub fn http_client() -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("verified-uploads-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| network("cannot build the HTTP client", &e))
}

/// The delay before retry `attempt` (1-based): 0.5 s doubling, at most 8 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(5).saturating_sub(1)).min(8000))
}

impl Api {
    pub fn new(http: reqwest::Client, base: &str, token: Option<String>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.trim().is_empty()),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One call, retried while the failure is transient; the status and JSON body of a success.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ApiError> {
        let mut attempt = 0;
        loop {
            match self.call_once(method.clone(), path, body).await {
                Err(e) if e.transient() && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, path, "retrying API call");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ApiError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(60));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let what = format!("{method} {url}");
        let res = req.send().await.map_err(|e| network(&what, &e))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| network(&what, &e))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return Ok((status, json.unwrap_or(Value::Null)));
        }
        let doc = json.unwrap_or(Value::Null);
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        Err(ApiError::Problem {
            status,
            title: text("title").unwrap_or_else(|| format!("{what} failed")),
            detail: text("detail").unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    .trim()
                    .to_owned()
            }),
            body: doc,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, ApiError> {
        serde_json::from_value(v)
            .map_err(|e| ApiError::Network(format!("the API answered an unexpected {what}: {e}")))
    }

    /// `POST /uploads`.
    pub async fn create(&self, body: &Value) -> Result<Created, ApiError> {
        let (_, v) = self
            .call(reqwest::Method::POST, "/uploads", Some(body))
            .await?;
        Self::parse("session", v)
    }

    /// `POST /uploads/{id}/parts` for one part, its SHA-256 (base64) signed into the URL.
    pub async fn sign(&self, id: &str, n: u64, sha256_b64: &str) -> Result<SignedPart, ApiError> {
        let body = json!({ "part_numbers": [n], "sha256": { n.to_string(): sha256_b64 } });
        let path = format!("/uploads/{id}/parts");
        let (_, v) = self.call(reqwest::Method::POST, &path, Some(&body)).await?;
        let mut parts: Vec<SignedPart> = Self::parse("part list", v["parts"].clone())?;
        parts
            .pop()
            .filter(|p| p.part_number == n)
            .ok_or_else(|| ApiError::Network(format!("the API signed no URL for part {n}")))
    }

    /// `GET /uploads/{id}/parts`: the parts S3 holds.
    pub async fn held_parts(&self, id: &str) -> Result<Vec<HeldPart>, ApiError> {
        let path = format!("/uploads/{id}/parts");
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        Self::parse("part list", v["parts"].clone())
    }

    /// `POST /uploads/{id}/complete`, declaring `sha256` (hex) when given, and the SHA-256
    /// chaining values at the part boundaries (`part_states`) when there are any: the service
    /// then verifies the parts in parallel. A failed verification (422 with the record) is a
    /// settled record, not an error.
    pub async fn complete(
        &self,
        id: &str,
        sha256: Option<&str>,
        states: &vu_contract::PartStates,
    ) -> Result<Completion, ApiError> {
        let mut body = sha256.map_or_else(|| json!({}), |d| json!({ "sha256": d }));
        if !states.is_empty() {
            body["part_states"] = json!(states);
        }
        let path = format!("/uploads/{id}/complete");
        match self.call(reqwest::Method::POST, &path, Some(&body)).await {
            Ok((202, v)) => Ok(Completion::Verifying(Record::from_json(v)?)),
            Ok((_, v)) => Ok(Completion::Settled(Record::from_json(v)?)),
            Err(ApiError::Problem {
                status: 422, body, ..
            }) if body.get("upload").is_some() => Ok(Completion::Settled(Record::from_json(
                body["upload"].clone(),
            )?)),
            Err(e) => Err(e),
        }
    }

    /// `GET /uploads/{id}`.
    pub async fn record(&self, id: &str) -> Result<Record, ApiError> {
        let (_, v) = self
            .call(reqwest::Method::GET, &format!("/uploads/{}", enc(id)), None)
            .await?;
        Record::from_json(v)
    }

    /// `GET /uploads?status=&limit=&cursor=`: one page and the cursor of the next.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Record>, Option<String>), ApiError> {
        let mut path = format!("/uploads?limit={limit}");
        if let Some(s) = status {
            path.push_str(&format!("&status={}", enc(s)));
        }
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        let records = match v.get("uploads") {
            Some(Value::Array(items)) => items
                .iter()
                .cloned()
                .map(Record::from_json)
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(ApiError::Network("the API answered no upload list".into())),
        };
        let next = v["next_cursor"].as_str().map(str::to_owned);
        Ok((records, next))
    }

    /// `GET /uploads/{id}/object`: a download of exactly the verified version.
    pub async fn download(&self, id: &str) -> Result<Download, ApiError> {
        let path = format!("/uploads/{}/object", enc(id));
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        Self::parse("download", v)
    }

    /// `GET /uploads/{id}/receipt`: the signed receipt of a verified upload.
    pub async fn receipt(&self, id: &str) -> Result<String, ApiError> {
        let path = format!("/uploads/{}/receipt", enc(id));
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        v["receipt"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Network("the API answered no receipt".into()))
    }

    /// `GET /.well-known/jwks.json`: the keys receipts are checked with.
    pub async fn jwks(&self) -> Result<vu_contract::receipt::Jwks, ApiError> {
        let (_, v) = self
            .call(reqwest::Method::GET, vu_contract::receipt::JWKS_PATH, None)
            .await?;
        Self::parse("key set", v)
    }

    /// `DELETE /uploads/{id}`: aborts the multipart upload.
    pub async fn abort(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/uploads/{}", enc(id));
        self.call(reqwest::Method::DELETE, &path, None).await?;
        Ok(())
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let ms: Vec<u128> = (1..=7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn a_record_needs_an_id_and_status() {
        assert!(Record::from_json(json!({"status": "verified"})).is_err());
        // The contract's record: every field the service sends is required.
        let mut full = json!({
            "upload_id": "x", "owner": "o", "status": "verifying", "bucket": "b", "key": "k",
            "filename": "f", "content_type": "application/octet-stream", "kind": "multipart",
            "open_size": false, "size": 1, "part_size": 1, "part_count": 1,
            "part_checksums": true, "expected_sha256": null, "sha256": null, "etag": null,
            "version_id": null, "metadata": {}, "created_at": "t", "updated_at": "t",
            "verified_at": null, "error": null, "expires_at": null, "verified_bytes": 0
        });
        let r = Record::from_json(full.clone()).unwrap();
        assert!(r.unsettled());
        full.as_object_mut().unwrap().remove("upload_id");
        assert!(Record::from_json(full).is_err());
    }
}
