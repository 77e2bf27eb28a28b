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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// May do everything.
    PlatformAdmin,
    /// May only read this cluster's repository (an agent's, Argo CD's or Flux's
    /// token); the agent's own credential may also use the agent API.
    Cluster(String),
}

impl Role {
    pub const PLATFORM_ADMIN: &'static str = "platform-admin";

    pub fn parse(role: &str) -> Option<Role> {
        if role == Self::PLATFORM_ADMIN {
            return Some(Role::PlatformAdmin);
        }
        role.strip_prefix("cluster:").filter(|c| !c.is_empty()).map(|c| Role::Cluster(c.to_string()))
    }

    pub fn cluster(name: &str) -> String {
        format!("cluster:{name}")
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
fn authorize(principal: &Principal, _method: &Method, route: &str) -> Result<(), ApiError> {
    match &principal.role {
        Role::PlatformAdmin => Ok(()),
        // Agent routes check themselves that this is the cluster's agent credential.
        Role::Cluster(_) if route.starts_with("/api/v1/agent/") => Ok(()),
        Role::Cluster(cluster) => {
            Err(ApiError::forbidden(format!("a token of cluster {cluster} may only read that cluster's git repository")))
        }
    }
}

/// Whether `principal` may read cluster `cluster`'s repository.
pub fn may_read_repository(principal: &Principal, cluster: &str) -> bool {
    match &principal.role {
        Role::PlatformAdmin => true,
        Role::Cluster(own) => own == cluster,
    }
}

/// A token from `Authorization: Bearer <token>`, or from Basic auth's
/// password (what `git` sends for `https://user:token@hub/...`).
pub fn token(request: &Request) -> Option<String> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(credentials.trim()).ok()?;
        let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

/// The principal a token names, if the token is valid.
pub async fn principal(state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
    let Some(info) = state.store.authenticate_token(token).await? else { return Ok(None) };
    let role = Role::parse(&info.role)
        .ok_or_else(|| ApiError::forbidden(format!("token {:?} has role {:?}, which grants nothing", info.name, info.role)))?;
    Ok(Some(Principal { name: info.name, role }))
}

/// Middleware: rejects requests without a valid token (401) or without the
/// permission for the route (403), and hands the [`Principal`] to handlers.
pub async fn require_principal(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let token = bearer(&request).ok_or_else(|| ApiError::unauthorized("missing bearer token: send Authorization: Bearer <token>"))?;
    let principal = principal(&state, token).await?.ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    authorize(&principal, request.method(), &route)?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
