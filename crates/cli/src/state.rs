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

/// The directory of saved sessions; `None` when the user has none (no resuming then).
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: Option<PathBuf>,
}

impl StateDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir: Some(dir) }
    }

    /// `$XDG_CACHE_HOME/verified-uploads` (or the platform's cache directory). Never a path
    /// under the shared temporary directory: another user could create it first (or a link in
    /// its place) and read or steer the saved sessions. Without a cache directory uploads still
    /// work, but an interrupted one starts over.
    pub fn default_location() -> Self {
        match dirs::cache_dir() {
            Some(base) => Self::new(base.join("verified-uploads")),
            None => {
                tracing::warn!("no cache directory (set XDG_CACHE_HOME): uploads cannot resume");
                Self { dir: None }
            }
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn file(&self, api: &str, f: &Fingerprint) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
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
        Some(dir.join(format!("{}.json", hex::encode(h.finalize()))))
    }

    /// The session saved for this file at this API, if any (an unreadable file counts as none).
    pub fn load(&self, api: &str, f: &Fingerprint) -> Option<Saved> {
        let text = std::fs::read_to_string(self.file(api, f)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves atomically (write a temporary file, rename), so a crash never leaves half a file,
    /// in a directory only this user can enter. Without a directory, nothing is saved.
    pub fn save(&self, f: &Fingerprint, saved: &Saved) -> Result<(), Error> {
        let (Some(dir), Some(target)) = (&self.dir, self.file(&saved.api, f)) else {
            return Ok(());
        };
        private_dir(dir)?;
        let tmp = target.with_extension(format!("tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(saved)
            .map_err(|e| Error::Input(format!("cannot encode the resume state: {e}")))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &target))
            .map_err(|e| Error::io(format!("cannot write {}", target.display()), e))
    }

    pub fn remove(&self, api: &str, f: &Fingerprint) {
        if let Some(file) = self.file(api, f) {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Creates `dir` (mode 0700) or checks the one there: a real directory (not a link), which
/// nobody else can write into. Anything else is refused rather than written to.
fn private_dir(dir: &Path) -> Result<(), Error> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {shown}"), e))?;
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    if !meta.is_dir() {
        return Err(Error::Input(format!(
            "{shown} is not a directory (a link?): refusing to keep resume state there"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        // Ours (its owner is who owns what we create in it) and closed to others.
        let probe = dir.join(format!(".owner-{}", std::process::id()));
        let mine = std::fs::write(&probe, b"")
            .and_then(|()| std::fs::metadata(&probe))
            .map(|m| m.uid());
        let _ = std::fs::remove_file(&probe);
        let mine = mine.map_err(|e| Error::io(format!("cannot write in {shown}"), e))?;
        if meta.uid() != mine {
            return Err(Error::Input(format!(
                "{shown} belongs to another user: refusing to keep resume state there"
            )));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(format!("cannot restrict {shown}"), e))?;
        }
    }
    Ok(())
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

    fn sample(file: &Path) -> (Fingerprint, Saved) {
        std::fs::write(file, b"hello").unwrap();
        let f = Fingerprint::of(file).unwrap();
        let saved = Saved {
            upload_id: "01ABC".into(),
            api: "http://a".into(),
            path: file.display().to_string(),
            size: 5,
            part_size: 5,
            part_count: 1,
        };
        (f, saved)
    }

    #[test]
    fn without_a_cache_directory_nothing_is_saved_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let (f, saved) = sample(&dir.path().join("a.bin"));
        let none = StateDir { dir: None };
        none.save(&f, &saved).unwrap();
        assert_eq!(none.load("http://a", &f), None);
        assert_eq!(none.dir(), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_state_directory_is_private_and_never_a_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (f, saved) = sample(&dir.path().join("a.bin"));

        // Created 0700; an existing one open to others is closed before anything is written.
        let state = dir.path().join("state");
        StateDir::new(state.clone()).save(&f, &saved).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        StateDir::new(open.clone()).save(&f, &saved).unwrap();
        assert_eq!(mode(&open), 0o700);

        // A link planted where the directory should be is refused, and nothing lands behind it.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let refused = StateDir::new(link).save(&f, &saved);
        assert!(matches!(refused, Err(Error::Input(m)) if m.contains("link")));
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
