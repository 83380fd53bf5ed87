//! What Uppy declares about a file, read into an upload; the parts Uppy cuts it into.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use vu_core::domain::{ContentType, Filename, Invalid, MIN_PART_SIZE, Metadata, Sha256};
use vu_core::service::UnsizedUpload;

/// Metadata values keep printable ASCII (but `%`, so the encoding stays reversible).
const NOT_PRINTABLE_ASCII: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// An Uppy metadata value, as the JSON holds it: `uppy_upload` keeps strings, numbers and
/// booleans, skips nulls and refuses the rest, naming the entry.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct MetaValue(pub Value);

/// In the OpenAPI document: what Uppy may send (null entries left out: they are skipped).
impl utoipa::PartialSchema for MetaValue {
    fn schema() -> RefOr<Schema> {
        let number = ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)));
        OneOfBuilder::new()
            .description(Some(
                "An Uppy metadata value: a string, number or boolean (null entries are skipped).",
            ))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(number)
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .into()
    }
}

impl utoipa::ToSchema for MetaValue {
    fn name() -> std::borrow::Cow<'static, str> {
        "MetadataValue".into()
    }
}

/// What Uppy declares about a file. `name` and `type` repeat `filename` and `type`; a
/// `sha256` entry (hex) is the digest the upload must match; a `size` entry (bytes) makes the
/// session sized; the rest is kept as metadata.
pub(super) fn uppy_upload(
    filename: &str,
    content_type: Option<&str>,
    meta: impl IntoIterator<Item = (String, Value)>,
) -> Result<(UnsizedUpload, Option<u64>), Invalid> {
    let mut sha256 = None;
    let mut size = None;
    let mut kept = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in meta {
        let field = format!("metadata.{k}");
        // S3 lower-cases metadata keys: two that differ only in case would overwrite each other.
        let k = k.to_ascii_lowercase();
        if !seen.insert(k.clone()) {
            return Err(Invalid::new(
                field,
                "differs from another metadata key only in letter case",
            ));
        }
        let text = match v {
            Value::Null => continue,
            // S3 metadata is ASCII; Companion RFC 2047-encodes the rest, here it is percent-encoded.
            Value::String(s) => {
                percent_encoding::utf8_percent_encode(&s, NOT_PRINTABLE_ASCII).to_string()
            }
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(Invalid::new(field, "must be a string"));
            }
        };
        match k.as_str() {
            "name" | "type" => {}
            "sha256" => sha256 = Some(Sha256::parse_hex(&text).map_err(|e| e.at(field))?),
            "size" => {
                size = Some(text.parse::<u64>().map_err(|_| {
                    Invalid::new(field, "must be the file's size, a whole number of bytes")
                })?);
            }
            _ => {
                kept.insert(k, text);
            }
        }
    }
    let upload = UnsizedUpload {
        filename: Filename::parse(filename)?,
        content_type: match content_type.map(str::trim) {
            None | Some("") => ContentType::default(),
            Some(t) => ContentType::parse(t)?,
        },
        sha256,
        metadata: Metadata::parse(kept)?,
    };
    Ok((upload, size))
}

/// The part size `@uppy/aws-s3` cuts a file of `size` bytes into: a 10,000th of it, at least
/// 5 MiB. A sized session signs exactly those lengths.
pub(super) fn uppy_part_size(size: u64) -> u64 {
    size.div_ceil(10_000).max(MIN_PART_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_as_uppy_cuts_them() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(uppy_part_size(1), 5 * MIB);
        assert_eq!(uppy_part_size(50_000 * MIB), 5 * MIB);
        // Past 10,000 parts of 5 MiB, a 10,000th of the file, rounded up.
        assert_eq!(uppy_part_size(100_000 * MIB + 1), 10 * MIB + 1);
    }
}
