//! In-memory ports for state-machine tests: they keep the promises the AWS adapters keep
//! (conditional transitions under the same guards, ETags that change with the bytes, S3's
//! answers for unknown uploads and refused parts), yield at every call so concurrent callers
//! interleave, and fail on demand (`Faults`).

mod announcer;
mod objects;
mod sessions;
mod signer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use announcer::MemoryAnnouncer;
pub use objects::MemoryObjects;
pub use sessions::MemorySessions;
pub use signer::MemorySigner;

use crate::domain::Status;
use crate::ports::{PortError, Upstream};

/// Which port call a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    CreateMultipart,
    PresignParts,
    PresignPost,
    ListParts,
    CompleteMultipart,
    AbortMultipart,
    Head,
    GetRange,
    /// Deleting one object or version.
    Delete,
    /// Deleting every version of a key but one.
    Purge,
    PresignGet,
    CreateSession,
    GetSession,
    ListSessions,
    Stalled,
    Abandoned,
    /// Asking for, listing or clearing a check of a session's key.
    WatchKey,
    Unannounced,
    Announced,
    Reserve,
    Unreserve,
    /// Moving a reservation's expiry (a reopened session).
    Extend,
    /// A transition writing this status.
    Transition(Status),
    /// Announcing a verdict (EventBridge).
    Announce,
    /// Signing a receipt (KMS).
    Sign,
}

/// Planned failures: the next `times` calls of a kind answer `Unavailable` (or, with
/// `fail_with`, whatever the test builds); and parked calls, for exact interleavings.
#[derive(Default)]
pub struct Faults {
    planned: Mutex<HashMap<Call, Vec<PortError>>>,
    calls: Mutex<HashMap<Call, usize>>,
    parked: Mutex<Vec<(Call, Arc<Park>)>>,
}

/// A call held before it runs: `reached` once it is waiting, `release` lets it go.
#[derive(Default)]
pub struct Park {
    reached: tokio::sync::Notify,
    released: tokio::sync::Notify,
}

impl Park {
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    pub fn release(&self) {
        self.released.notify_one();
    }
}

impl Faults {
    pub fn fail(&self, call: Call, times: usize) {
        for _ in 0..times {
            let service = match call {
                Call::CreateSession
                | Call::GetSession
                | Call::ListSessions
                | Call::Stalled
                | Call::Abandoned
                | Call::WatchKey
                | Call::Unannounced
                | Call::Announced
                | Call::Reserve
                | Call::Unreserve
                | Call::Extend
                | Call::Transition(_) => Upstream::DynamoDB,
                Call::Announce => Upstream::Events,
                Call::Sign => Upstream::Kms,
                _ => Upstream::S3,
            };
            self.fail_with(call, PortError::unavailable(service, "injected fault"));
        }
    }

    pub fn fail_with(&self, call: Call, error: PortError) {
        lock(&self.planned).entry(call).or_default().push(error);
    }

    /// Holds the next `call` before it runs, until the returned park is released.
    pub fn park(&self, call: Call) -> Arc<Park> {
        let park = Arc::new(Park::default());
        lock(&self.parked).push((call, park.clone()));
        park
    }

    /// How many times `call` was made (failed ones included).
    pub fn count(&self, call: Call) -> usize {
        lock(&self.calls).get(&call).copied().unwrap_or(0)
    }

    pub(super) async fn enter(&self, call: Call) -> Result<(), PortError> {
        // Let other tasks run between any two port calls, as real I/O would.
        tokio::task::yield_now().await;
        let park = {
            let mut parked = lock(&self.parked);
            let at = parked.iter().position(|(c, _)| *c == call);
            at.map(|i| parked.remove(i).1)
        };
        if let Some(park) = park {
            park.reached.notify_one();
            park.released.notified().await;
        }
        *lock(&self.calls).entry(call).or_default() += 1;
        match lock(&self.planned).get_mut(&call) {
            Some(errors) if !errors.is_empty() => Err(errors.remove(0)),
            _ => Ok(()),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
