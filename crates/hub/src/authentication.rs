//! Who makes a request: a Heimdall API token (`hdl_...`, checked against its
//! stored hash), a person signed in with the organization's identity provider
//! (an OIDC bearer token, or the portal's session cookie), or nobody. The
//! middleware here authenticates every API request, throttles failing
//! clients, and asks [`crate::auth`] whether the route is allowed; what a
//! principal may do is decided there, never here.

use std::collections::HashMap;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::{Principal, principal_of_token, require, route_need};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::CLIENT_ADDRESS;

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A token from `Authorization: Bearer <token>`, or from Basic auth's
/// password (what `git` sends for `https://user:token@hub/...`).
pub fn token(request: &Request) -> Option<String> {
    token_of(request.headers())
}

/// [`token`] from the headers alone.
pub fn token_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
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

/// The principal a token names, if the token is valid: a Heimdall API token,
/// or an ID/access token of the configured identity provider.
pub async fn principal(state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
    if !token.starts_with(heimdall_store::TOKEN_PREFIX)
        && let Some(oidc) = &state.oidc
    {
        return match oidc.verify(token).await {
            Ok(identity) => Ok(Some(crate::identity::principal_of(state, &identity).await)),
            Err(e) => {
                tracing::info!(reason = %e, "bearer token refused");
                Ok(None)
            }
        };
    }
    let Some(info) = state.store.authenticate_token(token).await? else { return Ok(None) };
    principal_of_token(state, info).map(Some).map_err(ApiError::from)
}

/// What a request authenticated with, to ask again later: a stream that
/// outlives its credential (revoked, expired, signed out) must end.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API token or an identity provider's token, as sent.
    Bearer(String),
    /// The portal's session cookie.
    Session(String),
}

impl Credential {
    /// Who the credential names now; `None` once it is no longer valid.
    pub async fn principal(&self, state: &AppState) -> Result<Option<Principal>, ApiError> {
        match self {
            Credential::Bearer(token) => principal(state, token).await,
            Credential::Session(id) => Ok(crate::identity::session_id_principal(state, id).await?),
        }
    }
}

/// `stream`, until the credential it was opened with stops naming the same
/// principal (revoked, expired, signed out, or its roles changed): asked
/// again every `state.credential_recheck`, so a stream outlives its
/// credential by at most that long. A check that cannot be made ends it too.
pub fn while_valid<S>(
    state: AppState,
    credential: Credential,
    principal: Principal,
    stream: S,
) -> impl futures::Stream<Item = S::Item> + Send
where
    S: futures::Stream + Send + 'static,
    S::Item: Send,
{
    use futures::StreamExt;
    let every = state.credential_recheck;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = (stream.boxed(), ticks, state, credential, principal);
    futures::stream::unfold(start, |(mut inner, mut ticks, state, credential, principal)| async move {
        loop {
            tokio::select! {
                item = inner.next() => return item.map(|item| (item, (inner, ticks, state, credential, principal))),
                _ = ticks.tick() => {
                    match credential.principal(&state).await {
                        Ok(Some(now)) if now == principal => {}
                        _ => {
                            tracing::info!(actor = %principal.name, "a stream ended with its credential");
                            return None;
                        }
                    }
                }
            }
        }
    })
}

/// Who makes a request: a bearer token (or git's Basic password), else the
/// portal's session cookie, which carries a change only from the hub's own
/// pages. `None` when the request carries no valid credential.
pub async fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> Result<Option<(Principal, Credential)>, ApiError> {
    if let Some(token) = token_of(headers) {
        // A valid credential always works: the limit slows guessing, it never locks out.
        let found = principal(state, &token).await?;
        if found.is_none() && state.auth_failures.failed(headers) {
            return Err(too_many_failures());
        }
        return Ok(found.map(|p| (p, Credential::Bearer(token))));
    }
    let Some(id) = crate::web::session_id(state, headers) else { return Ok(None) };
    let Some(principal) = crate::identity::session_id_principal(state, &id).await? else { return Ok(None) };
    crate::web::check_origin(state, method, uri, headers)?;
    Ok(Some((principal, Credential::Session(id))))
}

fn too_many_failures() -> ApiError {
    let mut error = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "too many failed sign-ins from this address; wait a minute",
    );
    error.permission = None;
    error
}

/// Failed authentications per client: past [`AuthFailures::LIMIT`] in a
/// minute, a client's failing attempts get 429 (a valid credential still
/// works, so nobody can lock others out). IPv6 clients count per /64.
#[derive(Debug, Default)]
pub struct AuthFailures {
    recent: parking_lot::Mutex<HashMap<String, (std::time::Instant, u32)>>,
}

impl AuthFailures {
    pub const LIMIT: u32 = 20;
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    const CLIENTS: usize = 10_000;

    /// The client: the address the connection came from (set by the server), else one bucket for all.
    fn client(headers: &axum::http::HeaderMap) -> String {
        let address = headers.get(CLIENT_ADDRESS).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
        match address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            _ => address.to_string(),
        }
    }

    /// Records a failure; whether the client is now over the limit.
    pub fn failed(&self, headers: &axum::http::HeaderMap) -> bool {
        let mut recent = self.recent.lock();
        if recent.len() >= Self::CLIENTS {
            recent.retain(|_, (since, _)| since.elapsed() < Self::WINDOW);
            // Still full of fresh entries (many addresses at once): start over rather than grow.
            if recent.len() >= Self::CLIENTS {
                recent.clear();
            }
        }
        let entry = recent.entry(Self::client(headers)).or_insert((std::time::Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (std::time::Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 > Self::LIMIT
    }
}

/// Middleware: rejects requests without a valid credential (401) or
/// without the permission for the route (403), and hands the
/// [`Principal`] and its [`Credential`] to handlers.
pub async fn require_principal(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let (principal, credential) = match authenticate(&state, request.method(), request.uri(), request.headers()).await? {
        Some(found) => found,
        None if bearer(&request).is_some() => return Err(ApiError::unauthorized("invalid or expired token")),
        None => {
            return Err(ApiError::unauthorized("missing credentials: send Authorization: Bearer <token>, or sign in (heimdall login)"));
        }
    };
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let params = raw_params(&mut request).await;
    require(&principal, &route_need(request.method(), &route, &params))?;
    request.extensions_mut().insert(principal);
    request.extensions_mut().insert(credential);
    Ok(next.run(request).await)
}

async fn raw_params(request: &mut Request) -> HashMap<String, String> {
    use axum::RequestExt;
    match request.extract_parts::<RawPathParams>().await {
        Ok(params) => params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        Err(_) => HashMap::new(),
    }
}
