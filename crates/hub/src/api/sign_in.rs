//! Signing in and who one is: the browser's authorization code flow
//! (`/auth/login`, `/auth/callback`, `/auth/logout`), and what the CLI asks
//! (`/api/v1/auth/config`, `/api/v1/auth/whoami`). `identity` does the work.

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::identity::{self, SignInError};
use crate::state::AppState;
use crate::web::{cookie, set_cookie};
pub use heimdall_api::auth::{AuthConfig, PublicOidc, WhoAmI};

/// Holds the sign-in's state in the browser that started it.
const LOGIN_COOKIE: &str = "heimdall_login";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginParams {
    #[serde(default)]
    return_to: Option<String>,
}

/// `GET /auth/login`: starts the authorization code flow with PKCE.
pub async fn login(State(state): State<AppState>, Query(params): Query<LoginParams>) -> Result<Response, ApiError> {
    // Sign-in never sends anyone to another site: only local paths are returned to.
    let started = identity::begin_sign_in(&state, &crate::web::local_path(params.return_to.as_deref())).await?;
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, started.authorization_url)]).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, &started.login_state, "/auth", 600));
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
    let started_here = cookie(&headers, LOGIN_COOKIE);
    let signed_in = identity::finish_sign_in(&state, params.code, params.state, params.error, started_here).await?;
    let location = crate::web::local_path(Some(&signed_in.return_to));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    response.headers_mut().append(header::SET_COOKIE, crate::web::session_cookie_for(&state, &signed_in.session_id, signed_in.seconds));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", "/auth", 0));
    Ok(response)
}

/// `POST /auth/logout`: ends the session here (and sends the browser to
/// the provider's logout, if it has one).
pub async fn logout(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    crate::web::check_origin(&state, &Method::POST, &uri, &headers)?;
    let cleared = crate::web::end_session(&state, &headers).await;
    let location = identity::sign_out_location(&state).await;
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
pub async fn whoami(Extension(principal): Extension<Principal>) -> Json<WhoAmI> {
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

/// What a failed sign-in means to the browser.
impl From<SignInError> for ApiError {
    fn from(err: SignInError) -> Self {
        match err {
            SignInError::NotConfigured => ApiError::not_found(err.to_string()),
            SignInError::Provider(message) => ApiError::new(StatusCode::BAD_GATEWAY, "IdentityProvider", message),
            SignInError::Refused(message) => ApiError::unauthorized(message),
            SignInError::Incomplete => ApiError::bad_request(err.to_string()),
            SignInError::Store(e) => e.into(),
        }
    }
}
