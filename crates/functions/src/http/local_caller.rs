//! The local server's stand-in for API Gateway's authorizer (`LOCAL_CALLER_HEADER`, off by
//! default): a request's header names its caller, put where the authorizer's `sub` claim would
//! be, so that one local server can serve many owners (the load bench, per-owner limits by hand).
//!
//! Only the local server applies it (`bin/api.rs`); in Lambda the setting is not read at all, and
//! the caller is only ever the authorizer's claim. Locally every request is already allowed as
//! `anonymous`, so naming another owner grants nothing that was not open there.

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;

/// `router` with each request's `header` (when present and not blank) taken as its caller.
pub fn with_local_callers(router: Router, header: HeaderName) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let header = header.clone();
        async move { next.run(claim(req, &header)).await }
    }))
}

/// The request with an HTTP API (v2) JWT authorizer context claiming `sub` = the header's value,
/// as API Gateway builds it.
fn claim(mut req: Request, header: &HeaderName) -> Request {
    let Some(sub) = req
        .headers()
        .get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
    else {
        return req;
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims.insert("sub".into(), sub);
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.authorizer = Some(authorizer);
    req.extensions_mut()
        .insert(RequestContext::ApiGatewayV2(context));
    req
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http::caller::Caller;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn who(header: Option<&str>) -> (StatusCode, String) {
        // No caller policy in the extensions: the extractor requires a claim, as deployed.
        let app = with_local_callers(
            Router::new().route("/", get(|c: Caller| async move { c.id().to_owned() })),
            HeaderName::from_static("x-local-caller"),
        );
        let mut req = axum::http::Request::get("/");
        if let Some(h) = header {
            req = req.header("x-local-caller", h);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_header_names_the_caller_as_the_authorizers_claim_would() {
        assert_eq!(
            who(Some("owner-7")).await,
            (StatusCode::OK, "owner-7".into())
        );
        // Absent or blank: no claim, so the policy decides (here: refused).
        assert_eq!(who(None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(who(Some("  ")).await.0, StatusCode::UNAUTHORIZED);
    }
}
