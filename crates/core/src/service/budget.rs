//! What one caller may spend on a completion. The entry point decides (a request inside API
//! Gateway's timeout, a verifier run inside its invocation); the use cases only obey it, so the
//! core never knows who called it.

use std::time::{Duration, Instant};

use crate::settings::Limits;

/// Less than this left of a request's budget, a take-over is left to the next caller: the
/// multipart completion and the first ranges take seconds.
const MIN_WORK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Hashing stops here and saves its progress for the verifier; `None`: no deadline.
    pub deadline: Option<Instant>,
    /// Objects larger than this are handed to the verifier without hashing; `None`: any size.
    pub hash_max_bytes: Option<u64>,
    /// After a hand-over, start the verifier (a verifier run schedules its own continuation).
    pub starts_verifier: bool,
    /// Until when to wait for another caller's completion before answering its running record.
    pub wait_until: Instant,
}

impl Budget {
    /// A request's, starting now: hash up to `limits.verify_inline_max_bytes` for at most
    /// `limits.verify_inline_budget`, hand the rest to the verifier (and start it), and wait for
    /// another caller's completion up to `limits.completion_wait`.
    pub fn request(limits: &Limits) -> Self {
        let now = Instant::now();
        Self {
            deadline: Some(now + limits.verify_inline_budget),
            hash_max_bytes: Some(limits.verify_inline_max_bytes),
            starts_verifier: true,
            wait_until: now + limits.completion_wait,
        }
    }

    /// A verifier run's: objects of any size, until `deadline` (its invocation's end, less the
    /// time to save progress). It never waits on another caller: its queue redelivers.
    pub fn verifier(deadline: Option<Instant>) -> Self {
        Self {
            deadline,
            hash_max_bytes: None,
            starts_verifier: false,
            wait_until: Instant::now(),
        }
    }

    /// The same budget, its hashing cut short at `deadline` when that comes first.
    pub fn until(self, deadline: Instant) -> Self {
        Self {
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
            ..self
        }
    }

    /// The same budget, hashing and waiting both over by `deadline` (an invocation's end).
    pub fn within(self, deadline: Instant) -> Self {
        Self {
            wait_until: self.wait_until.min(deadline),
            ..self.until(deadline)
        }
    }

    /// Whether enough of the budget is left to start a completion's work (completing in S3,
    /// hashing) rather than leave it to the next caller.
    pub fn can_start_work(&self) -> bool {
        self.deadline
            .is_none_or(|d| d.saturating_duration_since(Instant::now()) >= MIN_WORK)
    }

    /// Whether an object of `size` bytes is hashed by this caller.
    pub fn hashes(&self, size: u64) -> bool {
        self.hash_max_bytes.is_none_or(|max| size <= max)
    }

    /// What is left of the wait.
    pub fn wait_left(&self) -> Duration {
        self.wait_until.saturating_duration_since(Instant::now())
    }
}
