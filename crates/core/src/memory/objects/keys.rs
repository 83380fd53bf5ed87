//! What a test does to one key: make every call on it fail, and see which versions were tagged
//! for removal by the bucket's lifecycle (as the adapter tags each version before deleting it).

use super::{MemoryObjects, Version};
use crate::memory::lock;
use crate::ports::{PortError, Upstream};

impl MemoryObjects {
    /// From now on every call on `key` (listing, completing, reading it) fails upstream, as it
    /// would for an object whose KMS key denies this service: a session that keeps failing the
    /// same way.
    pub fn fail_key(&self, key: &str) {
        lock(&self.broken).insert(key.to_owned());
    }

    pub(super) fn reachable(&self, key: &str) -> Result<(), PortError> {
        if lock(&self.broken).contains(key) {
            return Err(PortError::unavailable(
                Upstream::S3,
                "AccessDenied (injected)",
            ));
        }
        Ok(())
    }

    /// The versions of `key` tagged for removal by the bucket's lifecycle.
    pub fn marked_for_removal(&self, key: &str) -> Vec<String> {
        lock(&self.objects)
            .get(key)
            .map_or_else(Vec::new, |versions| {
                versions
                    .iter()
                    .filter(|v| v.marked)
                    .map(|v| v.id.clone())
                    .collect()
            })
    }

    /// Tags the versions of `key` (holding bytes) that `which` picks.
    pub(super) fn mark(&self, key: &str, which: impl Fn(&Version) -> bool) {
        if let Some(versions) = lock(&self.objects).get_mut(key) {
            for v in versions.iter_mut().filter(|v| v.data.is_some() && which(v)) {
                v.marked = true;
            }
        }
    }
}
