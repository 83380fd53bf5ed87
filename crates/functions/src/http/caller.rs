//! Who is calling: the `sub` claim the API Gateway authorizer put in the request context
//! (HTTP API v2 JWT claims or Lambda-authorizer context; REST v1 Cognito `claims` or Lambda
//! authorizer context). Without an authorizer (local development) every caller is `anonymous`.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use serde_json::Value;

use super::problem::{Problem, Slug};
use crate::config::CallerPolicy;

pub const ANONYMOUS: &str = "anonymous";

pub struct Caller(String);

impl Caller {
    pub fn id(&self) -> &str {
        &self.0
    }
}

fn sub_of(fields: &std::collections::HashMap<String, Value>) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    fields
        .get("claims")
        .and_then(|c| c.get("sub"))
        .and_then(text)
        .or_else(|| fields.get("sub").and_then(text))
}

fn claimed_sub(ctx: &RequestContext) -> Option<String> {
    match ctx {
        RequestContext::ApiGatewayV2(c) => c.authorizer.as_ref().and_then(|a| {
            a.jwt
                .as_ref()
                .and_then(|jwt| jwt.claims.get("sub").cloned())
                .or_else(|| sub_of(&a.fields))
        }),
        RequestContext::ApiGatewayV1(c) => sub_of(&c.authorizer.fields),
        _ => None,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let policy = parts
            .extensions
            .get::<CallerPolicy>()
            .copied()
            .unwrap_or(CallerPolicy::AuthorizerRequired);
        let sub = parts
            .extensions
            .get::<RequestContext>()
            .and_then(claimed_sub)
            .filter(|s| !s.trim().is_empty());
        match (sub, policy) {
            (Some(sub), _) => Ok(Self(sub)),
            (None, CallerPolicy::AnonymousAllowed) => Ok(Self(ANONYMOUS.to_owned())),
            (None, CallerPolicy::AuthorizerRequired) => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                Slug::Unauthenticated,
                "Authentication required",
                "the request carries no caller identity (the token's sub claim)",
            )),
        }
    }
}
