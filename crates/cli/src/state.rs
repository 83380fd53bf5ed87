//! What an interrupted upload leaves behind: one small JSON file per (API, file) in the user's
//! cache directory, keyed by the file's canonical path, size and modification time, so a re-run
//! with the same unchanged file continues the same session and a changed file starts afresh.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::Error;

/// The session a file's upload started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub upload_id: String,
    pub api: String,
    pub path: String,
    pub size: u64,
    pub part_size: u64,
    pub part_count: u64,
}

/// The identity of a file on disk, as resuming sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub path: PathBuf,
    pub size: u64,
    pub modified_nanos: u128,
}

impl Fingerprint {
    /// The file at `path`; an error when it is missing or not a regular file.
    pub fn of(path: &Path) -> Result<Self, Error> {
        let shown = path.display();
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
        if !meta.is_file() {
            return Err(Error::Input(format!("{shown} is not a regular file")));
        }
        let modified_nanos = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path: canonical,
            size: meta.len(),
            modified_nanos,
        })
    }
}

/// The directory of saved sessions.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_CACHE_HOME/verified-uploads` (or the platform's cache directory), else a directory
    /// under the system's temporary one.
    pub fn default_location() -> Self {
        let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
        Self::new(base.join("verified-uploads"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, api: &str, f: &Fingerprint) -> PathBuf {
        let mut h = sha2::Sha256::new();
        for part in [
            api.as_bytes(),
            f.path.as_os_str().as_encoded_bytes(),
            f.size.to_string().as_bytes(),
            f.modified_nanos.to_string().as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        self.dir.join(format!("{}.json", hex::encode(h.finalize())))
    }

    /// The session saved for this file at this API, if any (an unreadable file counts as none).
    pub fn load(&self, api: &str, f: &Fingerprint) -> Option<Saved> {
        let text = std::fs::read_to_string(self.file(api, f)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves atomically (write a temporary file, rename), so a crash never leaves half a file.
    pub fn save(&self, f: &Fingerprint, saved: &Saved) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("cannot create {}", self.dir.display()), e))?;
        let target = self.file(&saved.api, f);
        let tmp = target.with_extension(format!("tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(saved)
            .map_err(|e| Error::Input(format!("cannot encode the resume state: {e}")))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &target))
            .map_err(|e| Error::io(format!("cannot write {}", target.display()), e))
    }

    pub fn remove(&self, api: &str, f: &Fingerprint) {
        let _ = std::fs::remove_file(self.file(api, f));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_or_another_api_finds_no_saved_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateDir::new(dir.path().join("state"));
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"hello").unwrap();
        let f = Fingerprint::of(&file).unwrap();
        let saved = Saved {
            upload_id: "01ABC".into(),
            api: "http://a".into(),
            path: file.display().to_string(),
            size: 5,
            part_size: 5,
            part_count: 1,
        };
        store.save(&f, &saved).unwrap();
        assert_eq!(store.load("http://a", &f), Some(saved));
        assert_eq!(store.load("http://b", &f), None);
        let grown = Fingerprint {
            size: 6,
            ..f.clone()
        };
        assert_eq!(store.load("http://a", &grown), None);
        let touched = Fingerprint {
            modified_nanos: f.modified_nanos + 1,
            ..f.clone()
        };
        assert_eq!(store.load("http://a", &touched), None);
        store.remove("http://a", &f);
        assert_eq!(store.load("http://a", &f), None);
    }

    #[test]
    fn a_directory_is_not_an_upload() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Fingerprint::of(dir.path()), Err(Error::Input(_))));
        assert!(matches!(
            Fingerprint::of(&dir.path().join("missing")),
            Err(Error::Io { .. })
        ));
    }
}
