//! Versions under a key: deleting all but the one a record names, and downloads of exactly it.

use std::time::Duration;

use super::{S3Objects, objects, port_error};
use vu_core::ports::PortError;

/// Deletes every version and delete marker of `key` but `keep`; how many went.
pub(super) async fn purge(
    s3: &S3Objects,
    key: &str,
    keep: Option<&str>,
) -> Result<usize, PortError> {
    let mut gone = 0;
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .client
            .list_object_versions()
            .bucket(&s3.bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(port_error)?;
        // Versions (tagged for the lifecycle, then deleted) and delete markers (deleted).
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id(), true));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id(), false));
        let doomed: Vec<(String, bool)> = versions
            .chain(markers)
            .filter(|(k, _, _)| *k == Some(key))
            .filter_map(|(_, v, bytes)| Some((v?.to_owned(), bytes)))
            .filter(|(v, _)| Some(v.as_str()) != keep)
            .collect();
        for (version, bytes) in &doomed {
            // "null" is the one version of an unversioned bucket, deleted by that name.
            if *bytes {
                objects::delete(s3, key, Some(version)).await?;
            } else {
                objects::delete_untagged(s3, key, Some(version)).await?;
            }
        }
        gone += doomed.len();
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    Ok(gone)
}

/// A pre-signed GET of `key` (of `version_id`, when given) that downloads as `filename`.
pub(super) async fn presign_get(
    s3: &S3Objects,
    key: &str,
    version_id: Option<&str>,
    filename: &str,
    expires: Duration,
) -> Result<String, PortError> {
    let creds = s3.credentials().await?;
    let disposition = attachment(filename);
    let mut query = vec![("response-content-disposition", disposition.as_str())];
    if let Some(v) = version_id {
        query.push(("versionId", v));
    }
    Ok(s3
        .presigner
        .batch(&creds, time::OffsetDateTime::now_utc(), expires)
        .sign("GET", key, &query, &[]))
}

/// `Content-Disposition: attachment` naming `filename` for every browser (RFC 6266): an ASCII
/// fallback, and the exact name percent-encoded as UTF-8 (RFC 5987).
pub(super) fn attachment(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let exact = percent_encoding::utf8_percent_encode(filename, ATTR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn downloads_are_attachments_named_for_every_browser() {
        assert_eq!(
            attachment("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        // Quotes, backslashes and non-ASCII never break out of the header value.
        assert_eq!(
            attachment("na\"ïve\\ 100%.txt"),
            "attachment; filename=\"na__ve_ 100_.txt\"; filename*=UTF-8''na%22%C3%AFve%5C%20100%25.txt"
        );
    }
}
