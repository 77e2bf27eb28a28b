//! Authentication and authorization, in one place for every API route.
//!
//! A request carries `Authorization: Bearer <token>`. Today tokens are Heimdall
//! API tokens checked against their stored hashes; single sign-on will add an
//! OIDC verifier that yields the same [`Principal`], so handlers never change.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May do everything.
    PlatformAdmin,
}

impl Role {
    pub const PLATFORM_ADMIN: &'static str = "platform-admin";

    fn parse(role: &str) -> Option<Role> {
        (role == Self::PLATFORM_ADMIN).then_some(Role::PlatformAdmin)
    }
}

/// Who is making a request. `name` is what the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Decides whether `principal` may call `method` on `route`.
fn authorize(principal: &Principal, _method: &Method, _route: &str) -> Result<(), ApiError> {
    match principal.role {
        Role::PlatformAdmin => Ok(()),
    }
}

/// Middleware: rejects requests without a valid token (401) or without the
/// permission for the route (403), and hands the [`Principal`] to handlers.
pub async fn require_principal(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let token = bearer(&request).ok_or_else(|| ApiError::unauthorized("missing bearer token: send Authorization: Bearer <token>"))?;
    let info = state.store.authenticate_token(token).await?.ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    let role = Role::parse(&info.role)
        .ok_or_else(|| ApiError::forbidden(format!("token {:?} has role {:?}, which grants nothing", info.name, info.role)))?;
    let principal = Principal { name: info.name, role };
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    authorize(&principal, request.method(), &route)?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
