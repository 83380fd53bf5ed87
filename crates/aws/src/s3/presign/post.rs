//! SigV4 POST policies: a browser form upload of exactly one object.

use base64::Engine as _;
use hmac::Mac;
use vu_core::ports::PostForm;

use super::Batch;

impl Batch<'_> {
    /// A SigV4 POST policy for one object: S3 takes the form only for exactly this key and
    /// content type and a body of `len` bytes (`content-length-range`), until the batch expires.
    /// `extra` fields (server-side encryption, say) are given to the client and pinned by the
    /// policy like every other field, so a client can neither drop nor change them.
    pub fn post_form(
        &self,
        key: &str,
        content_type: &str,
        len: std::ops::RangeInclusive<u64>,
        extra: &[(&str, &str)],
    ) -> PostForm {
        let p = self.presigner;
        let mut fields = std::collections::BTreeMap::from([
            ("key".to_owned(), key.to_owned()),
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), self.raw_credential.clone()),
            ("x-amz-date".to_owned(), self.amz_date.clone()),
            // As Companion asks: S3 answers 201 with the object's location, not an empty 204.
            ("success_action_status".to_owned(), "201".to_owned()),
        ]);
        if let Some(t) = &self.raw_token {
            fields.insert("x-amz-security-token".into(), t.clone());
        }
        for (k, v) in extra {
            fields.insert((*k).to_owned(), (*v).to_owned());
        }
        // Each field an exact-match condition (`{"Content-Type": t}` is S3's `["eq", "$Content-Type", t]`).
        let mut conditions = vec![serde_json::json!({ "bucket": p.bucket })];
        conditions.extend(
            fields
                .iter()
                .map(|(k, v)| serde_json::json!({ k.as_str(): v })),
        );
        conditions.push(serde_json::json!([
            "content-length-range",
            len.start(),
            len.end()
        ]));
        let expiration = vu_core::domain::timestamp(self.expiration);
        let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let mut mac = self.signer.clone();
        mac.update(policy.as_bytes());
        fields.insert(
            "x-amz-signature".into(),
            hex::encode(mac.finalize().into_bytes()),
        );
        fields.insert("policy".into(), policy);
        PostForm {
            url: format!("{}://{}{}", p.scheme, p.host, p.prefix),
            fields,
        }
    }
}
