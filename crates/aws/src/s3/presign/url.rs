//! SigV4 query-string signing: a URL whose signature covers its method, key, query and the
//! headers the client must send.

use std::fmt::Write as _;

use hmac::Mac;
use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

use super::{Batch, PATH, QUERY};

impl Batch<'_> {
    /// Signs `method` on `key` with extra query parameters (unencoded) and headers the client
    /// must send (lower-case names, unencoded values; `host` is added). Returns the URL.
    pub fn sign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> String {
        let p = self.presigner;
        let path = format!("{}/{}", p.prefix, utf8_percent_encode(key, PATH));

        let mut hdrs: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
        hdrs.push(("host", &p.host));
        hdrs.extend_from_slice(headers);
        hdrs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let signed_headers = hdrs.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
        let canonical_query = self.canonical_query(&signed_headers, query);

        let mut creq = String::with_capacity(1024);
        let _ = write!(creq, "{method}\n{path}\n{canonical_query}\n");
        for (k, v) in &hdrs {
            let _ = writeln!(creq, "{k}:{}", v.trim());
        }
        let _ = write!(creq, "\n{signed_headers}\nUNSIGNED-PAYLOAD");

        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let mut mac = self.signer.clone();
        mac.update(string_to_sign.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());

        format!(
            "{}://{}{path}?{canonical_query}&X-Amz-Signature={signature}",
            p.scheme, p.host
        )
    }

    /// SigV4's canonical query string: the signing parameters and `query`, encoded and sorted.
    fn canonical_query(&self, signed_headers: &str, query: &[(&str, &str)]) -> String {
        let expires = self.expires.to_string();
        let signed_enc = utf8_percent_encode(signed_headers, QUERY).to_string();
        let mut params: Vec<(String, String)> = vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            ("X-Amz-Credential".into(), self.credential.clone()),
            ("X-Amz-Date".into(), self.amz_date.clone()),
            ("X-Amz-Expires".into(), expires),
            ("X-Amz-SignedHeaders".into(), signed_enc),
        ];
        if let Some(t) = &self.token {
            params.push(("X-Amz-Security-Token".into(), t.clone()));
        }
        for (k, v) in query {
            params.push((
                utf8_percent_encode(k, QUERY).to_string(),
                utf8_percent_encode(v, QUERY).to_string(),
            ));
        }
        params.sort_unstable();
        let mut canonical_query = String::with_capacity(512);
        for (i, (k, v)) in params.iter().enumerate() {
            if i > 0 {
                canonical_query.push('&');
            }
            let _ = write!(canonical_query, "{k}={v}");
        }
        canonical_query
    }
}
