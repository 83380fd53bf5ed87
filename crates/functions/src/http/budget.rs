//! A request's budget, from the clock it really has: the service's inline limits, cut short by
//! the Lambda invocation's own deadline (API Gateway gives up at ~29 s; the function's timeout may
//! be shorter), less the time to answer and release the completion.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use vu_core::service::{Budget, Uploads};

/// Kept back from the invocation's deadline: the answer, and a release written on a fault.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// The budget of the request being served (an extractor).
pub struct RequestBudget(pub Budget);

impl FromRequestParts<Arc<Uploads>> for RequestBudget {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<Uploads>,
    ) -> Result<Self, Self::Rejection> {
        let deadline = parts
            .extensions
            .get::<lambda_http::Context>()
            .map(|ctx| ctx.deadline());
        Ok(Self(budget(
            app,
            deadline,
            SystemTime::now(),
            Instant::now(),
        )))
    }
}

/// The limits' budget, starting `now`, ending no later than `deadline` (the invocation's, in
/// wall-clock time) less the margin.
fn budget(app: &Uploads, deadline: Option<SystemTime>, wall: SystemTime, now: Instant) -> Budget {
    let budget = Budget::request(app.limits());
    match deadline {
        Some(d) => {
            let left = d.duration_since(wall).unwrap_or_default();
            budget.within(now + left.saturating_sub(ANSWER_MARGIN))
        }
        None => budget,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vu_core::memory::{MemoryObjects, MemorySessions};
    use vu_core::settings::{Limits, VerifyConfig};

    fn app() -> Uploads {
        Uploads::new(
            MemoryObjects::new(),
            MemorySessions::new(),
            Limits::default(),
            VerifyConfig::default(),
        )
    }

    #[test]
    fn an_invocation_ending_sooner_than_the_limits_cuts_the_budget() {
        let (app, wall, now) = (app(), SystemTime::now(), Instant::now());
        // 8 s left in the invocation: hashing and waiting end 2 s before it.
        let short = budget(&app, Some(wall + Duration::from_secs(8)), wall, now);
        assert!(short.deadline.unwrap() <= now + Duration::from_secs(6));
        assert!(short.wait_until <= now + Duration::from_secs(6));
        // A long invocation keeps the limits' own budget.
        let long = budget(&app, Some(wall + Duration::from_secs(900)), wall, now);
        let limits = Limits::default();
        assert!(
            long.deadline.unwrap() <= now + limits.verify_inline_budget + Duration::from_millis(50)
        );
        assert!(
            long.deadline.unwrap() >= now + limits.verify_inline_budget - Duration::from_millis(50)
        );
        // Past its deadline already: nothing left to spend.
        let gone = budget(&app, Some(wall - Duration::from_secs(1)), wall, now);
        assert!(gone.deadline.unwrap() <= now + Duration::from_millis(50));
    }
}
