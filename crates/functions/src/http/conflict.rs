//! A conflict as the API answers it: each kind its own problem type, and whether to wait (a
//! `Retry-After` header and `retry_after` member), fix the request or start over is data the
//! client reads, never prose it has to parse.

use axum::http::StatusCode;
use serde_json::json;

use vu_core::domain::Status;
use vu_core::error::Conflict;

use super::problem::{Problem, Slug};

/// How long a client waits before polling an upload that is in flight: a verification takes
/// seconds to minutes, and a poll is one read.
pub const POLL_SECONDS: u64 = 2;

pub fn problem(c: Conflict) -> Problem {
    let detail = c.to_string();
    let (kind, title) = match &c {
        Conflict::WrongState { .. } => (Slug::WrongState, "Not allowed in the upload's state"),
        Conflict::Expired { .. } | Conflict::MultipartGone => {
            (Slug::SessionExpired, "Upload session expired")
        }
        Conflict::NoParts => (Slug::NoParts, "A form upload has no parts"),
        Conflict::NotVerified { .. } => (Slug::NotVerified, "Not verified"),
        Conflict::KeyTaken => (Slug::KeyTaken, "Another object holds the upload's key"),
        Conflict::PartRejected => (Slug::PartRejected, "S3 refused a part"),
        Conflict::DeclaredTooLate { .. } => (
            Slug::DeclaredTooLate,
            "Digest declared after verification began",
        ),
        Conflict::NotArrived => (Slug::NotArrived, "The object has not arrived"),
        Conflict::HolderBusy => (Slug::InProgress, "Being verified"),
    };
    let mut problem = Problem::new(StatusCode::CONFLICT, kind, title, detail);
    let status = match c {
        Conflict::WrongState { status, .. }
        | Conflict::NotVerified { status }
        | Conflict::DeclaredTooLate { status } => Some(status),
        _ => None,
    };
    if let Some(status) = status {
        problem = problem.with(json!({ "upload_status": status }));
    }
    if waits(&c) {
        problem = problem.retry_after(POLL_SECONDS);
    }
    problem
}

/// Whether the answer changes by itself: the upload is in flight, or its object on its way.
fn waits(c: &Conflict) -> bool {
    match c {
        Conflict::NotVerified { status } | Conflict::DeclaredTooLate { status } => {
            matches!(status, Status::Completing | Status::Verifying)
        }
        Conflict::NotArrived | Conflict::HolderBusy => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vu_core::error::Action;

    #[test]
    fn each_conflict_says_whether_to_wait() {
        let polled = [
            Conflict::NotVerified {
                status: Status::Verifying,
            },
            Conflict::DeclaredTooLate {
                status: Status::Completing,
            },
            Conflict::NotArrived,
            Conflict::HolderBusy,
        ];
        for c in polled {
            assert_eq!(problem(c.clone()).retry_after, Some(POLL_SECONDS), "{c:?}");
        }
        let final_ = [
            Conflict::WrongState {
                action: Action::Complete,
                status: Status::Aborted,
            },
            Conflict::Expired {
                action: Action::SignParts,
            },
            Conflict::MultipartGone,
            Conflict::NoParts,
            Conflict::NotVerified {
                status: Status::Failed,
            },
            Conflict::KeyTaken,
            Conflict::PartRejected,
        ];
        for c in final_ {
            let p = problem(c.clone());
            assert_eq!(p.retry_after, None, "{c:?}");
            assert_eq!(p.status, StatusCode::CONFLICT);
        }
    }

    #[test]
    fn conflicts_have_distinct_problem_types_by_what_to_do() {
        let kind = |c| problem(c).kind;
        assert_eq!(kind(Conflict::MultipartGone), Slug::SessionExpired);
        assert_eq!(kind(Conflict::PartRejected), Slug::PartRejected);
        assert_ne!(
            kind(Conflict::KeyTaken),
            kind(Conflict::WrongState {
                action: Action::Abort,
                status: Status::Verified
            })
        );
    }
}
