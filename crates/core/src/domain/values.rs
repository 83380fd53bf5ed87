//! Values a client declares about a file: its digest, name, type and metadata.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use super::Invalid;

/// The file's name as the object key's last segment: 1–255 bytes, no control characters,
/// and only the last path component of whatever the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Filename(String);

/// Unicode's format characters (category Cf): bidi controls, zero-width joiners and spaces, …
fn is_format(c: char) -> bool {
    unicode_general_category::get_general_category(c)
        == unicode_general_category::GeneralCategory::Format
}

/// The 66 code points Unicode reserves never to be characters.
fn is_noncharacter(c: char) -> bool {
    let cp = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
}

impl Filename {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        use unicode_normalization::UnicodeNormalization;
        let field = "filename";
        if s.chars().any(char::is_control) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        // Bidi overrides and zero-width characters make a name show as another
        // (`invoice\u{202E}fdp.exe` reads `invoiceexe.pdf`); noncharacters S3 refuses in keys.
        if let Some(c) = s.chars().find(|&c| is_format(c) || is_noncharacter(c)) {
            return Err(Invalid::new(
                field,
                format!(
                    "must not contain U+{:04X} (invisible formatting characters and noncharacters are refused)",
                    u32::from(c)
                ),
            ));
        }
        // One spelling per name: "é" composed or not is the same file.
        let s: String = s.nfc().collect();
        // Browsers and some tools send full paths (C:\fakepath\a.txt, dir/a.txt): keep the last part.
        let name = s.rsplit(['/', '\\']).next().unwrap_or_default().trim();
        if name.is_empty() || name == "." || name == ".." {
            return Err(Invalid::new(
                field,
                "must name a file (empty after removing path parts)",
            ));
        }
        if name.len() > 255 {
            return Err(Invalid::new(field, "must be at most 255 bytes of UTF-8"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A MIME type's `type` or `subtype`: the characters RFC 6838 allows in names.
fn is_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// A MIME type such as `video/mp4; codecs=avc1`; defaults to `application/octet-stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ContentType(String);

impl ContentType {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let field = "content_type";
        let mut pieces = s.split(';');
        let essence = pieces.next().unwrap_or_default().trim();
        // Parameters are `token=token` or `token="…"`, nothing else: S3 stores the whole string,
        // and a comma would smuggle a second type past the allow-list (browsers take the last
        // of `image/png; a=1, text/html`).
        let parameter = |p: &str| {
            p.trim().split_once('=').is_some_and(|(name, value)| {
                is_token(name)
                    && (is_token(value)
                        || value
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .is_some_and(|v| !v.contains(['"', '\\', ','])))
            })
        };
        let valid = s.len() <= 255
            && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            && essence
                .split_once('/')
                .is_some_and(|(a, b)| is_token(a) && is_token(b))
            && pieces.all(parameter);
        if valid {
            Ok(Self(s.trim().to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "must be a MIME type such as application/zip",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `type` and `subtype`, parameters left out (valid by construction, so always both).
    fn essence(&self) -> (&str, &str) {
        let essence = self.0.split(';').next().unwrap_or_default().trim();
        essence.split_once('/').unwrap_or((essence, ""))
    }
}

/// One entry of an allow-list: `type/subtype`, or `type/*` for every subtype; lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypePattern {
    ty: String,
    /// `None`: any subtype.
    subtype: Option<String>,
}

/// Which content types uploads may declare (`ALLOWED_CONTENT_TYPES`, e.g. `image/*,application/pdf`):
/// matched case-insensitively on the type and subtype, parameters (`; charset=…`) ignored.
/// Empty allows every type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedContentTypes(Vec<TypePattern>);

impl AllowedContentTypes {
    /// A comma-separated list of `type/subtype` and `type/*`; blank entries are skipped.
    pub fn parse(list: &str) -> Result<Self, Invalid> {
        let mut patterns = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let refuse = |why: &str| Invalid::new(entry, why);
            if entry.contains(';') {
                return Err(refuse(
                    "parameters are ignored when matching: list the type alone",
                ));
            }
            if entry == "*/*" {
                return Err(refuse(
                    "*/* would allow every type: leave the list empty instead",
                ));
            }
            let (ty, subtype) = entry
                .split_once('/')
                .filter(|(t, s)| is_token(t) && (*s == "*" || is_token(s)))
                .ok_or_else(|| refuse("must be type/subtype or type/*"))?;
            patterns.push(TypePattern {
                ty: ty.to_ascii_lowercase(),
                subtype: (subtype != "*").then(|| subtype.to_ascii_lowercase()),
            });
        }
        // A list that says something but names nothing (`,`) must not quietly allow everything.
        if patterns.is_empty() && !list.trim().is_empty() {
            return Err(Invalid::new(
                "ALLOWED_CONTENT_TYPES",
                "names no type: leave it empty to allow every type",
            ));
        }
        Ok(Self(patterns))
    }

    /// Whether every type is allowed (the list is empty).
    pub fn allows_all(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, content_type: &ContentType) -> bool {
        let (ty, subtype) = content_type.essence();
        self.allows_all()
            || self.0.iter().any(|p| {
                p.ty.eq_ignore_ascii_case(ty)
                    && p.subtype
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case(subtype))
            })
    }
}

impl fmt::Display for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ty, self.subtype.as_deref().unwrap_or("*"))
    }
}

impl fmt::Display for AllowedContentTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// As a list of patterns, for clients to see what they may upload.
impl Serialize for AllowedContentTypes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl Default for ContentType {
    fn default() -> Self {
        Self("application/octet-stream".to_owned())
    }
}

/// User metadata, stored on the record and as S3 `x-amz-meta-*` headers, so it must fit S3's rules:
/// lower-case keys of `[a-z0-9-_]`, printable ASCII values, 2 KiB in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub const MAX_ENTRIES: usize = 32;
    pub const MAX_TOTAL_BYTES: usize = 2048;

    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, Invalid> {
        if map.len() > Self::MAX_ENTRIES {
            return Err(Invalid::new(
                "metadata",
                format!("at most {} entries", Self::MAX_ENTRIES),
            ));
        }
        let mut total = 0;
        for (k, v) in &map {
            let field = format!("metadata.{k}");
            if k.is_empty()
                || k.len() > 128
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(Invalid::new(
                    field,
                    "keys are 1-128 characters of a-z, 0-9, '-' and '_'",
                ));
            }
            if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Invalid::new(field, "values must be printable ASCII"));
            }
            total += k.len() + v.len();
        }
        if total > Self::MAX_TOTAL_BYTES {
            return Err(Invalid::new(
                "metadata",
                format!(
                    "keys and values must total at most {} bytes",
                    Self::MAX_TOTAL_BYTES
                ),
            ));
        }
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_keeps_only_the_last_path_component() {
        assert_eq!(
            Filename::parse("a/b/c.tar").map(|f| f.0),
            Ok("c.tar".into())
        );
        assert_eq!(
            Filename::parse(r"C:\fakepath\photo.jpg").map(|f| f.0),
            Ok("photo.jpg".into())
        );
        assert!(Filename::parse("dir/").is_err());
        assert!(Filename::parse("..").is_err());
        assert!(Filename::parse("a\nb").is_err());
        assert!(Filename::parse(&"x".repeat(256)).is_err());
        assert!(Filename::parse(&"é".repeat(127)).is_ok());
        assert!(Filename::parse(&"é".repeat(128)).is_err());
    }

    #[test]
    fn filenames_show_what_they_are() {
        for hidden in [
            "invoice\u{202E}fdp.exe",
            "a\u{200B}b.txt",
            "\u{FEFF}a.txt",
            "a\u{2066}.txt",
            "a\u{FFFE}.txt",
            "a\u{FDD0}.txt",
            "a\u{10FFFF}.txt",
        ] {
            assert!(Filename::parse(hidden).is_err(), "{hidden:?}");
        }
        // NFC, before the length check: 127 decomposed "é" are 381 bytes, composed 254.
        let decomposed = "e\u{301}".repeat(127);
        assert_eq!(
            Filename::parse(&decomposed).map(|f| f.0),
            Ok("é".repeat(127))
        );
        assert!(Filename::parse("日本語のファイル.pdf").is_ok());
    }

    #[test]
    fn content_type_and_metadata_follow_s3_rules() {
        assert!(ContentType::parse("video/mp4; codecs=avc1").is_ok());
        assert!(ContentType::parse("nonsense").is_err());
        assert!(ContentType::parse("a/b\r\nx-evil: 1").is_err());
        assert!(ContentType::parse("text/plain; charset=\"utf-8\"").is_ok());
        // A second type cannot ride along in the parameters (browsers take the last one).
        for smuggled in [
            "image/png; a=1, text/html",
            "image/png;,text/html",
            "image/png; a=\"x, text/html\"",
            "image/png; a=\"x\\\"",
            "image/png; junk",
            "image/png;",
        ] {
            assert!(ContentType::parse(smuggled).is_err(), "{smuggled}");
        }
        let m = |k: &str, v: &str| Metadata::parse(BTreeMap::from([(k.into(), v.into())]));
        assert!(m("project", "apollo-11").is_ok());
        assert!(m("Project", "x").is_err());
        assert!(m("k", "caf\u{e9}").is_err());
        assert!(m("k", &"v".repeat(3000)).is_err());
    }

    #[test]
    fn an_allow_list_matches_types_and_wildcards_whatever_their_case_and_parameters() {
        let list = AllowedContentTypes::parse(" image/* , Application/PDF,, ")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(list.to_string(), "image/*, application/pdf");
        let allows =
            |t: &str| list.allows(&ContentType::parse(t).unwrap_or_else(|e| panic!("{e}")));
        assert!(allows("image/png"));
        assert!(allows("IMAGE/SVG+XML"));
        assert!(allows("application/pdf; charset=binary"));
        assert!(allows("application/Pdf"));
        assert!(!allows("application/pdfx"));
        assert!(!allows("application/x-pdf"));
        assert!(!allows("text/plain"));
        assert!(!allows("imagex/png"));
        // Nothing declared is `application/octet-stream`, checked like any other type.
        assert!(!list.allows(&ContentType::default()));

        let all = AllowedContentTypes::parse("").unwrap_or_else(|e| panic!("{e}"));
        assert!(all.allows_all() && all.allows(&ContentType::default()));
        // A list that names nothing is refused rather than read as "everything".
        assert!(AllowedContentTypes::parse(" , ").is_err());
    }

    #[test]
    fn an_allow_list_entry_that_is_not_a_type_or_wildcard_is_refused() {
        for bad in [
            "image",
            "*/*",
            "*/png",
            "image/p*",
            "image/",
            "/png",
            "text/plain; charset=utf-8",
            "image/png image/gif",
        ] {
            let e = AllowedContentTypes::parse(&format!("application/pdf,{bad}"));
            assert!(
                e.as_ref().is_err_and(|e| e.field == bad.trim()),
                "{bad:?}: {e:?}"
            );
        }
    }
}
