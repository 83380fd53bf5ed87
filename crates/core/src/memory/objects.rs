//! S3, for one bucket: multipart uploads, parts with ETags and checksums, objects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Call, Faults, lock};
use crate::domain::{ContentType, MIN_PART_SIZE, PartNumber, Sha256, multipart_etag};
use crate::ports::{
    ListedPart, NewMultipart, ObjectInfo, ObjectStore, PartToSign, Pin, PortError, PostForm,
    SignedPart, Upstream,
};

#[derive(Debug, Clone)]
struct Part {
    data: Bytes,
    etag: String,
    checksum: Option<Sha256>,
}

#[derive(Debug)]
struct Multipart {
    key: String,
    checksums: bool,
    parts: BTreeMap<PartNumber, Part>,
}

/// One version of a key in a versioned bucket; `data: None` is a delete marker.
#[derive(Debug, Clone)]
struct Version {
    id: String,
    data: Option<Bytes>,
    etag: String,
    /// Tagged `vu-remove=1`: the bucket's lifecycle removes it a day later (template.yaml).
    marked: bool,
}

impl Version {
    fn info(&self) -> Option<ObjectInfo> {
        Some(ObjectInfo {
            size: self.data.as_ref()?.len() as u64,
            etag: self.etag.clone(),
            version_id: Some(self.id.clone()),
        })
    }
}

pub struct MemoryObjects {
    bucket: String,
    uploads: Mutex<HashMap<String, Multipart>>,
    /// Every key's versions, oldest first: the bucket has versioning on, as the stack's has.
    objects: Mutex<HashMap<String, Vec<Version>>>,
    next_id: Mutex<u64>,
    /// Keys every call on which fails upstream (`fail_key`).
    broken: Mutex<HashSet<String>>,
    pub faults: Faults,
}

impl Default for MemoryObjects {
    fn default() -> Self {
        Self {
            bucket: "memory-bucket".into(),
            uploads: Mutex::default(),
            objects: Mutex::default(),
            next_id: Mutex::default(),
            broken: Mutex::default(),
            faults: Faults::default(),
        }
    }
}

mod keys;

/// S3's ETag of a single-part object or part (SSE-S3): the body's MD5.
fn etag_of(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

impl MemoryObjects {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A client's PUT to a part URL; S3 refuses a body that misses its checksum. The ETag.
    pub fn put_part(
        &self,
        s3_upload_id: &str,
        n: PartNumber,
        data: &[u8],
        checksum: Option<Sha256>,
    ) -> Result<String, PortError> {
        let mut uploads = lock(&self.uploads);
        let upload = uploads.get_mut(s3_upload_id).ok_or(PortError::NotFound)?;
        if upload.checksums && checksum != Some(Sha256::of(data)) {
            return Err(PortError::Rejected("BadDigest".into()));
        }
        let etag = etag_of(data);
        let part = Part {
            data: Bytes::copy_from_slice(data),
            etag: etag.clone(),
            checksum,
        };
        upload.parts.insert(n, part);
        Ok(etag)
    }

    /// A form POST, or anyone overwriting the key: a new current version holds `data`. Its id.
    pub fn put_object(&self, key: &str, data: &[u8]) -> String {
        self.push(key, Some(Bytes::copy_from_slice(data)), etag_of(data))
    }

    fn push(&self, key: &str, data: Option<Bytes>, etag: String) -> String {
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            format!("v{next}")
        };
        let version = Version {
            id: id.clone(),
            data,
            etag,
            marked: false,
        };
        lock(&self.objects)
            .entry(key.to_owned())
            .or_default()
            .push(version);
        id
    }

    /// The current object's bytes (`None`: no object, or a delete marker).
    pub fn object(&self, key: &str) -> Option<Bytes> {
        lock(&self.objects).get(key)?.last()?.data.clone()
    }

    /// The bytes of one version.
    pub fn version(&self, key: &str, version_id: &str) -> Option<Bytes> {
        let objects = lock(&self.objects);
        objects
            .get(key)?
            .iter()
            .find(|v| v.id == version_id)?
            .data
            .clone()
    }

    /// How many versions and delete markers `key` has.
    pub fn versions(&self, key: &str) -> usize {
        lock(&self.objects).get(key).map_or(0, Vec::len)
    }

    /// Whether S3 still holds the multipart upload.
    pub fn has_upload(&self, s3_upload_id: &str) -> bool {
        lock(&self.uploads).contains_key(s3_upload_id)
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn create_multipart(&self, req: &NewMultipart<'_>) -> Result<String, PortError> {
        self.faults.enter(Call::CreateMultipart).await?;
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            format!("mpu-{next}")
        };
        let upload = Multipart {
            key: req.key.to_owned(),
            checksums: req.part_checksums,
            parts: BTreeMap::new(),
        };
        lock(&self.uploads).insert(id.clone(), upload);
        Ok(id)
    }

    async fn presign_parts(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartToSign],
        _expires: Duration,
    ) -> Result<Vec<SignedPart>, PortError> {
        self.faults.enter(Call::PresignParts).await?;
        Ok(parts
            .iter()
            .map(|p| {
                let mut headers = BTreeMap::new();
                if let Some(len) = p.len {
                    headers.insert("content-length".into(), len.to_string());
                }
                if let Some(sha) = p.sha256 {
                    headers.insert("x-amz-checksum-sha256".into(), sha.to_base64());
                }
                SignedPart {
                    part_number: p.part_number,
                    url: format!(
                        "memory://{}/{key}?partNumber={}&uploadId={upload_id}",
                        self.bucket, p.part_number
                    ),
                    headers,
                }
            })
            .collect())
    }

    async fn presign_post(
        &self,
        key: &str,
        content_type: &ContentType,
        max_len: u64,
        _expires: Duration,
    ) -> Result<PostForm, PortError> {
        self.faults.enter(Call::PresignPost).await?;
        let fields = BTreeMap::from([
            ("key".to_owned(), key.to_owned()),
            ("Content-Type".to_owned(), content_type.as_str().to_owned()),
            ("max".to_owned(), max_len.to_string()),
        ]);
        Ok(PostForm {
            url: format!("memory://{}", self.bucket),
            fields,
        })
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, PortError> {
        self.faults.enter(Call::ListParts).await?;
        self.reachable(key)?;
        let uploads = lock(&self.uploads);
        let upload = uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or(PortError::NotFound)?;
        Ok(upload
            .parts
            .iter()
            .map(|(&part_number, p)| ListedPart {
                part_number,
                size: p.data.len() as u64,
                etag: p.etag.clone(),
                checksum_sha256: p.checksum.map(|c| c.to_base64()),
            })
            .collect())
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), PortError> {
        self.faults.enter(Call::CompleteMultipart).await?;
        self.reachable(key)?;
        let mut uploads = lock(&self.uploads);
        let upload = uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or(PortError::NotFound)?;
        // The adapter sends `If-None-Match: *`: an object already under the key stays.
        if self.object(key).is_some() {
            return Err(PortError::PreconditionFailed);
        }
        let mut data = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && parts[i - 1].part_number >= p.part_number {
                return Err(PortError::Rejected("InvalidPartOrder".into()));
            }
            let held = match upload.parts.get(&p.part_number) {
                Some(held) if held.etag == p.etag => held,
                _ => return Err(PortError::Rejected("InvalidPart".into())),
            };
            // S3: every part but the last is at least 5 MiB.
            if i + 1 < parts.len() && (held.data.len() as u64) < MIN_PART_SIZE {
                return Err(PortError::Rejected("EntityTooSmall".into()));
            }
            data.extend_from_slice(&held.data);
        }
        uploads.remove(upload_id);
        drop(uploads);
        let etag =
            multipart_etag(parts).unwrap_or_else(|| format!("{}-{}", etag_of(&data), parts.len()));
        self.push(key, Some(Bytes::from(data)), etag);
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError> {
        self.faults.enter(Call::AbortMultipart).await?;
        let mut uploads = lock(&self.uploads);
        match uploads.get(upload_id) {
            Some(u) if u.key == key => {
                uploads.remove(upload_id);
                Ok(())
            }
            _ => Err(PortError::NotFound),
        }
    }

    async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectInfo>, PortError> {
        self.faults.enter(Call::Head).await?;
        self.reachable(key)?;
        Ok(self.find(key, version_id).and_then(|v| v.info()))
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
        pin: Pin<'_>,
    ) -> Result<Vec<Bytes>, PortError> {
        self.faults.enter(Call::GetRange).await?;
        self.reachable(key)?;
        let version = self.find(key, pin.version_id).ok_or(PortError::NotFound)?;
        let data = version.data.ok_or(PortError::NotFound)?;
        if version.etag != pin.etag {
            return Err(PortError::PreconditionFailed);
        }
        let size = data.len();
        if len > 0 && start >= size as u64 {
            return Err(PortError::unavailable(Upstream::S3, "InvalidRange (416)"));
        }
        let from = usize::try_from(start).map_or(size, |s| s.min(size));
        let to = usize::try_from(start.saturating_add(len)).map_or(size, |e| e.min(size));
        Ok(vec![data.slice(from..to)])
    }

    async fn delete(&self, key: &str, version_id: Option<&str>) -> Result<(), PortError> {
        // A version is tagged for the lifecycle first, as the adapter does: a delete that fails
        // leaves it to expire. (The current object's delete only hides it behind a marker.)
        self.mark(key, |v| version_id.is_some_and(|id| v.id == id));
        self.faults.enter(Call::Delete).await?;
        match version_id {
            // S3 answers a DELETE of a missing version as a success.
            Some(id) => {
                if let Some(versions) = lock(&self.objects).get_mut(key) {
                    versions.retain(|v| v.id != id);
                }
            }
            // In a versioned bucket: a delete marker; the bytes stay as a noncurrent version.
            None => {
                self.push(key, None, String::new());
            }
        }
        Ok(())
    }

    async fn purge(&self, key: &str, keep: Option<&str>) -> Result<usize, PortError> {
        self.mark(key, |v| Some(v.id.as_str()) != keep);
        self.faults.enter(Call::Purge).await?;
        let mut objects = lock(&self.objects);
        let Some(versions) = objects.get_mut(key) else {
            return Ok(0);
        };
        let before = versions.len();
        versions.retain(|v| Some(v.id.as_str()) == keep);
        Ok(before - versions.len())
    }

    async fn presign_get(
        &self,
        key: &str,
        version_id: Option<&str>,
        filename: &str,
        _expires: Duration,
    ) -> Result<String, PortError> {
        self.faults.enter(Call::PresignGet).await?;
        let version = version_id.map_or(String::new(), |v| format!("&versionId={v}"));
        Ok(format!(
            "memory://{}/{key}?filename={filename}{version}",
            self.bucket
        ))
    }
}

impl MemoryObjects {
    /// `version_id`, or the current version (`None` when that is a delete marker).
    fn find(&self, key: &str, version_id: Option<&str>) -> Option<Version> {
        let objects = lock(&self.objects);
        let versions = objects.get(key)?;
        match version_id {
            Some(id) => versions.iter().find(|v| v.id == id).cloned(),
            None => versions.last().filter(|v| v.data.is_some()).cloned(),
        }
    }
}
