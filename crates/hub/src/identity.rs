//! People: from a verified identity to a [`Principal`] (roles from the
//! tenants' members and the platform-admin groups), the portal's sign-in
//! (authorization code flow with PKCE, a server-side session behind an
//! HttpOnly cookie), and the `User`/`Group` records of who signed in.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use heimdall_model::Resource;
use heimdall_store::ApplyMode;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::actors::IDENTITY_ACTOR;
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::oidc::Identity;
use crate::state::AppState;
pub use heimdall_api::auth::{AuthConfig, PublicOidc, WhoAmI};

pub const SESSION_COOKIE: &str = "heimdall_session";
/// Its name under TLS: `__Host-` keeps a sibling subdomain from setting it (cookie tossing).
pub const SECURE_SESSION_COOKIE: &str = "__Host-heimdall_session";

/// The session cookie's name on this hub.
pub fn session_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies { SECURE_SESSION_COOKIE } else { SESSION_COOKIE }
}
const LOGIN_COOKIE: &str = "heimdall_login";
const SESSION: &str = "session";
const PENDING_LOGIN: &str = "login";

/// The roles an identity holds now: platform admin through the configured
/// groups, and a role in every tenant that lists the person or a group.
pub fn roles_of(state: &AppState, identity: &Identity) -> Vec<Role> {
    let mut roles = Vec::new();
    if let Some(oidc) = &state.oidc
        && identity.groups.iter().any(|g| oidc.config.platform_admin_groups.contains(g))
    {
        roles.push(Role::PlatformAdmin);
    }
    let platform = state.rendering.platform();
    for (tenant, spec) in platform.tenants() {
        let email = identity.email.as_deref().filter(|_| identity.email_verified);
        if let Some(role) = spec.role_of(&identity.username, email, &identity.groups) {
            roles.push(Role::Tenant { tenant: tenant.clone(), role });
        }
    }
    roles
}

/// The principal of a verified identity; records the person the first
/// time this hub process sees them (or their groups change).
pub async fn principal_of(state: &AppState, identity: &Identity) -> Principal {
    let fingerprint = serde_json::to_string(identity).unwrap_or_default();
    let first_sight = state.seen_identities.lock().map(|mut seen| seen.insert(fingerprint)).unwrap_or(false);
    if first_sight {
        record(state, identity).await;
    }
    Principal { name: identity.username.clone(), roles: roles_of(state, identity), groups: identity.groups.clone() }
}

/// A resource name for an identity-provider name: `alice@example.com` becomes `alice-example.com`.
pub fn resource_name(name: &str) -> String {
    let mapped: String =
        name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
    let trimmed: String = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric()).chars().take(253).collect();
    if trimmed.is_empty() { format!("id-{}", &hex_digest(name)[..12]) } else { trimmed }
}

fn hex_digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the `User` and its `Group`s (for the catalog), if they changed.
async fn record(state: &AppState, identity: &Identity) {
    let group_version = heimdall_model::spec::platform::GROUP_VERSION;
    let mut documents = vec![json!({
        "apiVersion": group_version,
        "kind": "User",
        "metadata": {"name": resource_name(&identity.username)},
        "spec": {"username": identity.username, "displayName": identity.display_name, "email": identity.email, "memberOf": identity.groups},
    })];
    documents.extend(identity.groups.iter().map(
        |group| json!({"apiVersion": group_version, "kind": "Group", "metadata": {"name": resource_name(group)}, "spec": {"group": group}}),
    ));
    let mut batch = Vec::new();
    for document in documents {
        match heimdall_model::decode(&document, "sign-in", "default") {
            Ok(decoded) => batch.push(("sign-in".to_string(), strip_nulls(decoded.resource))),
            Err(e) => tracing::warn!(error = %e, "cannot record who signed in"),
        }
    }
    let system = Principal::system(IDENTITY_ACTOR);
    if let Err(e) = crate::admission::write(state, &system, "record", batch, ApplyMode::Apply, false).await {
        tracing::warn!(error = %e, "cannot record who signed in");
    }
}

fn strip_nulls(mut resource: Resource) -> Resource {
    if let Some(spec) = resource.spec.as_object_mut() {
        spec.retain(|_, v| !v.is_null());
    }
    resource
}

/// A cookie's value (the first of that name).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

pub(crate) fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn expires_in(seconds: u64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds as i64)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a portal session stands for. Only the session id's hash is kept
/// (a copy of the table opens no session), and what it points to is read
/// again on every request, so a revoked or replaced token, or a session
/// ended by signing out, stops working at once.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Session {
    /// Signed in with the identity provider.
    Identity { identity: Identity },
    /// Signed in with an API token: the token's record, never the token.
    Token { id: String, name: String },
}

fn session_key(id: &str) -> String {
    hex_digest(id)
}

/// Starts a session; returns the cookie that carries its id.
pub async fn start_session(state: &AppState, session: &Session, seconds: u64) -> Result<HeaderValue, ApiError> {
    let id = random_token();
    let data = serde_json::to_string(session).map_err(|_| ApiError::internal())?;
    state.store.put_auth_record(SESSION, &session_key(&id), &data, &expires_in(seconds)).await?;
    Ok(set_cookie(state, session_cookie(state), &id, "/", seconds))
}

/// The principal of a session id, if the session and what it stands for are still valid.
pub async fn session_id_principal(state: &AppState, id: &str) -> Result<Option<Principal>, ApiError> {
    let Some(data) = state.store.auth_record(SESSION, &session_key(id)).await? else { return Ok(None) };
    let Ok(session) = serde_json::from_str::<Session>(&data) else { return Ok(None) };
    match session {
        Session::Identity { identity } => Ok(Some(principal_of(state, &identity).await)),
        Session::Token { id, name } => {
            let Some(info) = state.store.token_named(&name).await? else { return Ok(None) };
            let expired = info.expires_at.as_deref().is_some_and(|expiry| expiry <= heimdall_store::now().as_str());
            if info.id != id || expired {
                return Ok(None);
            }
            crate::auth::principal_of_token(state, info).map(Some)
        }
    }
}

/// The session id of a request's cookie.
pub fn session_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, session_cookie(state)).filter(|id| !id.is_empty())
}

/// Ends the portal session of these headers, if any; returns the cookie that clears it.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = session_id(state, headers)
        && let Err(e) = state.store.take_auth_record(SESSION, &session_key(&id)).await
    {
        tracing::warn!(error = %e, "cannot end a portal session");
    }
    set_cookie(state, session_cookie(state), "", "/", 0)
}

#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    verifier: String,
    nonce: String,
    return_to: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginParams {
    #[serde(default)]
    return_to: Option<String>,
}

fn sso(state: &AppState) -> Result<&crate::oidc::Oidc, ApiError> {
    state.oidc.as_deref().ok_or_else(|| ApiError::not_found("single sign-on is not configured on this hub (oidc in its config)"))
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/auth/callback", state.public_url.trim_end_matches('/'))
}

/// `GET /auth/login`: starts the authorization code flow with PKCE.
pub async fn login(State(state): State<AppState>, Query(params): Query<LoginParams>) -> Result<Response, ApiError> {
    let oidc = sso(&state)?;
    let discovery = oidc.discovery().await.map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "IdentityProvider", e.to_string()))?;
    let (login_state, nonce, verifier) = (random_token(), random_token(), random_token());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let pending = PendingLogin { verifier, nonce: nonce.clone(), return_to: crate::web::local_path(params.return_to.as_deref()) };
    let data = serde_json::to_string(&pending).map_err(|_| ApiError::internal())?;
    state.store.put_auth_record(PENDING_LOGIN, &login_state, &data, &expires_in(600)).await?;
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "IdentityProvider", format!("authorization endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("scope", &oidc.config.scopes.join(" "))
        .append_pair("state", &login_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, &login_state, "/auth", 600));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the provider sends the browser back here.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, ApiError> {
    let oidc = sso(&state)?;
    if let Some(error) = params.error {
        return Err(ApiError::unauthorized(format!("the identity provider refused the sign-in: {error}")));
    }
    let (Some(code), Some(login_state)) = (params.code, params.state) else {
        return Err(ApiError::bad_request("expected code and state from the identity provider"));
    };
    // The flow must end in the browser that started it.
    if cookie(&headers, LOGIN_COOKIE).as_deref() != Some(login_state.as_str()) {
        return Err(ApiError::unauthorized("this sign-in was not started in this browser; start again at /auth/login"));
    }
    let pending = state
        .store
        .take_auth_record(PENDING_LOGIN, &login_state)
        .await?
        .and_then(|data| serde_json::from_str::<PendingLogin>(&data).ok())
        .ok_or_else(|| ApiError::unauthorized("this sign-in expired or was already used; start again at /auth/login"))?;
    let refused = |e: crate::oidc::OidcError| ApiError::unauthorized(format!("sign-in failed: {e}"));
    let tokens = oidc.exchange_code(&code, &pending.verifier, &redirect_uri(&state)).await.map_err(refused)?;
    let id_token = tokens.id_token.ok_or_else(|| ApiError::unauthorized("sign-in failed: the provider sent no ID token"))?;
    let identity = oidc.verify_with_nonce(&id_token, Some(&pending.nonce)).await.map_err(refused)?;
    principal_of(&state, &identity).await;
    tracing::info!(user = %identity.username, "signed in");
    let cookie = start_session(&state, &Session::Identity { identity }, oidc.config.session_hours * 3600).await?;
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, crate::web::local_path(Some(&pending.return_to)))]).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", "/auth", 0));
    Ok(response)
}

/// `POST /auth/logout`: ends the session here (and sends the browser to
/// the provider's logout, if it has one).
pub async fn logout(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    crate::web::check_origin(&state, &Method::POST, &uri, &headers)?;
    let cleared = end_session(&state, &headers).await;
    let mut location = "/".to_string();
    if let Some(oidc) = &state.oidc
        && let Ok(discovery) = oidc.discovery().await
        && let Some(end) = discovery.end_session_endpoint
        && let Ok(mut url) = reqwest::Url::parse(&end)
    {
        url.query_pairs_mut().append_pair("client_id", &oidc.config.client_id);
        location = url.to_string();
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    response.headers_mut().append(header::SET_COOKIE, cleared);
    Ok(response)
}

/// What `heimdall login` needs to sign in: the identity provider and the CLI's client id.
#[utoipa::path(get, path = "/api/v1/auth/config", tag = "auth", security(), responses((status = 200, body = AuthConfig)))]
pub async fn auth_config(State(state): State<AppState>) -> Json<AuthConfig> {
    Json(AuthConfig {
        oidc: state.oidc.as_ref().map(|o| PublicOidc {
            issuer: o.config.issuer.clone(),
            client_id: o.config.cli_client_id().to_string(),
            scopes: o.config.scopes.clone(),
        }),
    })
}

/// Who the caller is: name, groups and roles.
#[utoipa::path(get, path = "/api/v1/auth/whoami", tag = "auth", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(axum::extract::Extension(principal): axum::extract::Extension<Principal>) -> Json<WhoAmI> {
    let tenants = principal
        .roles
        .iter()
        .filter_map(|r| match r {
            Role::Tenant { tenant, role } => Some((tenant.clone(), role.as_str().to_string())),
            _ => None,
        })
        .collect();
    Json(WhoAmI { name: principal.name.clone(), platform_admin: principal.is_platform_admin(), tenants, groups: principal.groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_become_resource_names() {
        assert_eq!(resource_name("alice"), "alice");
        assert_eq!(resource_name("Alice@Example.com"), "alice-example.com");
        assert_eq!(resource_name("/shop devs/"), "shop-devs");
        assert!(resource_name("@@@").starts_with("id-"));
    }
}
