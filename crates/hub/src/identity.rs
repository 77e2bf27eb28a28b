//! People: from a verified identity to a [`Principal`] (roles from the
//! tenants' members and the platform-admin groups), the portal's sign-in
//! (authorization code flow with PKCE, served by `api::sign_in`), the
//! server-side sessions whose ids `web` carries in a cookie, and the
//! `User`/`Group` records of who signed in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use heimdall_model::Resource;
use heimdall_store::{ApplyMode, StoreError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::actors::IDENTITY_ACTOR;
use crate::auth::AuthorizeError;
use crate::auth::{Principal, Role};
use crate::oidc::Identity;
use crate::state::AppState;

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
    let first_sight = state.seen_identities.lock().insert(fingerprint);
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

/// Starts a session for `seconds`; returns its id (the cookie's value).
pub async fn start_session(state: &AppState, session: &Session, seconds: u64) -> Result<String, StoreError> {
    let id = random_token();
    let data = serde_json::to_string(session).map_err(|e| StoreError::Corrupt(format!("a session does not encode: {e}")))?;
    state.store.put_auth_record(SESSION, &session_key(&id), &data, &expires_in(seconds)).await?;
    Ok(id)
}

/// The principal of a session id, if the session and what it stands for are still valid.
pub async fn session_id_principal(state: &AppState, id: &str) -> Result<Option<Principal>, AuthorizeError> {
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
            Ok(Some(crate::auth::principal_of_token(state, info)?))
        }
    }
}

/// Ends a session (signing out); a session that is gone already is fine.
pub async fn end_session(state: &AppState, id: &str) {
    if let Err(e) = state.store.take_auth_record(SESSION, &session_key(id)).await {
        tracing::warn!(error = %e, "cannot end a portal session");
    }
}

/// Why a sign-in with the identity provider did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("single sign-on is not configured on this hub (oidc in its config)")]
    NotConfigured,
    /// The identity provider could not be asked.
    #[error("{0}")]
    Provider(String),
    /// The sign-in is not valid: refused by the provider, expired, or not this browser's.
    #[error("{0}")]
    Refused(String),
    #[error("expected code and state from the identity provider")]
    Incomplete,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    verifier: String,
    nonce: String,
    return_to: String,
}

/// A sign-in begun: where to send the browser, and the state it must bring back.
pub struct SignInStart {
    pub authorization_url: String,
    pub login_state: String,
}

/// A sign-in completed: the session begun, for how long, and the page to return to.
pub struct SignedIn {
    pub session_id: String,
    pub seconds: u64,
    pub return_to: String,
}

fn sso(state: &AppState) -> Result<&crate::oidc::Oidc, SignInError> {
    state.oidc.as_deref().ok_or(SignInError::NotConfigured)
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/auth/callback", state.public_url.trim_end_matches('/'))
}

/// Starts the authorization code flow with PKCE; `return_to` is where the
/// browser goes once signed in (the HTTP layer keeps it a local path).
pub async fn begin_sign_in(state: &AppState, return_to: &str) -> Result<SignInStart, SignInError> {
    let oidc = sso(state)?;
    let discovery = oidc.discovery().await.map_err(|e| SignInError::Provider(e.to_string()))?;
    let (login_state, nonce, verifier) = (random_token(), random_token(), random_token());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let pending = PendingLogin { verifier, nonce: nonce.clone(), return_to: return_to.to_string() };
    let data = serde_json::to_string(&pending).map_err(|e| StoreError::Corrupt(format!("a sign-in does not encode: {e}")))?;
    state.store.put_auth_record(PENDING_LOGIN, &login_state, &data, &expires_in(600)).await?;
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
        .map_err(|e| SignInError::Provider(format!("authorization endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &redirect_uri(state))
        .append_pair("scope", &oidc.config.scopes.join(" "))
        .append_pair("state", &login_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(SignInStart { authorization_url: url.to_string(), login_state })
}

/// Completes a sign-in: `code` and `login_state` from the provider,
/// `started_here` the state this browser's cookie holds (the flow must end
/// in the browser that started it).
pub async fn finish_sign_in(
    state: &AppState,
    code: Option<String>,
    login_state: Option<String>,
    refused_by_provider: Option<String>,
    started_here: Option<String>,
) -> Result<SignedIn, SignInError> {
    let oidc = sso(state)?;
    if let Some(error) = refused_by_provider {
        return Err(SignInError::Refused(format!("the identity provider refused the sign-in: {error}")));
    }
    let (Some(code), Some(login_state)) = (code, login_state) else { return Err(SignInError::Incomplete) };
    if started_here.as_deref() != Some(login_state.as_str()) {
        return Err(SignInError::Refused("this sign-in was not started in this browser; start again at /auth/login".into()));
    }
    let pending = state
        .store
        .take_auth_record(PENDING_LOGIN, &login_state)
        .await?
        .and_then(|data| serde_json::from_str::<PendingLogin>(&data).ok())
        .ok_or_else(|| SignInError::Refused("this sign-in expired or was already used; start again at /auth/login".into()))?;
    let refused = |e: crate::oidc::OidcError| SignInError::Refused(format!("sign-in failed: {e}"));
    let tokens = oidc.exchange_code(&code, &pending.verifier, &redirect_uri(state)).await.map_err(refused)?;
    let id_token = tokens.id_token.ok_or_else(|| SignInError::Refused("sign-in failed: the provider sent no ID token".into()))?;
    let identity = oidc.verify_with_nonce(&id_token, Some(&pending.nonce)).await.map_err(refused)?;
    principal_of(state, &identity).await;
    tracing::info!(user = %identity.username, "signed in");
    let seconds = oidc.config.session_hours * 3600;
    let session_id = start_session(state, &Session::Identity { identity }, seconds).await?;
    Ok(SignedIn { session_id, seconds, return_to: pending.return_to })
}

/// Where the browser goes after signing out here: the provider's logout, if it has one.
pub async fn sign_out_location(state: &AppState) -> String {
    if let Some(oidc) = &state.oidc
        && let Ok(discovery) = oidc.discovery().await
        && let Some(end) = discovery.end_session_endpoint
        && let Ok(mut url) = reqwest::Url::parse(&end)
    {
        url.query_pairs_mut().append_pair("client_id", &oidc.config.client_id);
        return url.to_string();
    }
    "/".to_string()
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
