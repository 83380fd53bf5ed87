//! Who may call the API: the caller policy, read from `AUTH_REQUIRED` and `ALLOW_ANONYMOUS`.
//! The HTTP layer enforces it (`http::caller`); it is decided here, at start, so that a deployed
//! API without an authorizer cannot start by accident.

use super::{ConfigError, Lookup, Runtime};

/// Whether requests must carry an authorizer's `sub` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerPolicy {
    /// Deployed behind the JWT authorizer: a request without a `sub` claim is refused (401).
    AuthorizerRequired,
    /// Local development, or a deployment that asked for it: callers without a claim are
    /// `anonymous`.
    AnonymousAllowed,
}

impl CallerPolicy {
    /// `AUTH_REQUIRED=true` (behind the JWT authorizer) requires a claim. Otherwise callers are
    /// anonymous, which deployed (in Lambda) lets anyone list, sign and abort everyone's uploads:
    /// that must be asked for (`ALLOW_ANONYMOUS=true`), never a default.
    pub(super) fn from_lookup(get: &impl Lookup, runtime: Runtime) -> Result<Self, ConfigError> {
        let auth_required = get.flag("AUTH_REQUIRED")?;
        // Read (and checked) locally too, where it changes nothing, so that a value the
        // deployed function would refuse is refused by `make dev` as well.
        let allow_anonymous = get.flag("ALLOW_ANONYMOUS")?;
        match (auth_required, allow_anonymous, runtime) {
            (true, _, _) => Ok(Self::AuthorizerRequired),
            (false, true, _) | (false, false, Runtime::Local) => Ok(Self::AnonymousAllowed),
            (false, false, Runtime::Lambda) => Err(ConfigError::Invalid {
                name: "ALLOW_ANONYMOUS",
                value: String::new(),
                reason: "no authorizer is required (AUTH_REQUIRED is not true), so every caller would be anonymous; deploy with JwtIssuer, or set ALLOW_ANONYMOUS=true (template parameter AllowAnonymous) to allow it on purpose".into(),
            }),
        }
    }
}
