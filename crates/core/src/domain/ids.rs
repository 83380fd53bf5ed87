//! Identifiers: of a session, of a part, of the object a session writes.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{Filename, Invalid};

/// Server-generated upload id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(ulid::Ulid);

impl UploadId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        // ULIDs are case-insensitive; the canonical form is upper case.
        ulid::Ulid::from_string(s)
            .map(Self)
            .map_err(|_| Invalid::new("upload_id", "not a valid upload id (26-character ULID)"))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for UploadId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Who holds a completion: drawn afresh by each claim, so a holder whose lease ran out and was
/// taken over can no longer write (every write of a holder is conditional on its token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(ulid::Ulid);

impl LeaseToken {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        ulid::Ulid::from_string(s)
            .map(Self)
            .map_err(|_| Invalid::new("lease_token", "not a lease token"))
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The S3 key a session writes: `uploads/{upload_id}/{filename}`. Built and taken apart only
/// here, so the id in a key that S3 reports always leads back to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    upload_id: UploadId,
    key: String,
}

impl ObjectKey {
    const PREFIX: &'static str = "uploads/";

    pub fn new(upload_id: UploadId, filename: &Filename) -> Self {
        Self {
            upload_id,
            key: format!("{}{upload_id}/{}", Self::PREFIX, filename.as_str()),
        }
    }

    /// A key this service wrote; anything else (another prefix, no file name) is refused.
    pub fn parse(key: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("key", "not an upload key (uploads/{upload_id}/{filename})");
        let (id, name) = key
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            upload_id: UploadId::parse(id).map_err(|_| bad())?,
            key: key.to_owned(),
        })
    }

    pub fn upload_id(&self) -> UploadId {
        self.upload_id
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_parse_case_insensitively() {
        let id = UploadId::generate();
        assert_eq!(UploadId::parse(&id.to_string().to_lowercase()), Ok(id));
        assert!(UploadId::parse("not-an-id").is_err());
    }

    #[test]
    fn object_keys_lead_back_to_their_session() {
        let id = UploadId::generate();
        let name = Filename::parse("dir/big file.bin").unwrap_or_else(|e| panic!("{e}"));
        let key = ObjectKey::new(id, &name);
        assert_eq!(key.as_str(), format!("uploads/{id}/big file.bin"));
        let parsed = ObjectKey::parse(key.as_str()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((parsed.upload_id(), &parsed), (id, &key));
        for bad in [
            "other/x",
            "uploads/",
            &format!("uploads/{id}"),
            &format!("uploads/{id}/"),
            "uploads/not-an-id/a.bin",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad}");
        }
    }
}
