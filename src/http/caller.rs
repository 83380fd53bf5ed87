//! Who is calling. Without an authorizer (local development) every caller is `anonymous`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::problem::Problem;

pub const ANONYMOUS: &str = "anonymous";

pub struct Caller(String);

impl Caller {
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(ANONYMOUS.to_owned()))
    }
}
