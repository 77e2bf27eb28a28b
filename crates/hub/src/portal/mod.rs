//! The developer portal: server-rendered pages (askama templates under
//! `crates/hub/templates/portal`, compiled into the binary) with htmx for
//! live search and the task log; every page works without JavaScript.
//! Assets are embedded: no CDN.
//!
//! Sign-in is the single sign-on of the API (`/auth/login`) or, on a hub
//! without it, an API token (the admin token of `heimdall up`) kept in an
//! HttpOnly cookie. Every page asks [`crate::auth`] the question the API
//! route it mirrors would ask, so the portal never shows what the API
//! would refuse.

mod pages;
pub mod view;

pub use pages::entity_page;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{self, Need, Principal};
use crate::state::AppState;

const HTMX: &str = include_str!("../../assets/htmx.min.js");
const CSS: &str = include_str!("../../assets/portal.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/catalog", get(pages::catalog))
        .route("/catalog/{namespace}/{kind}/{name}", get(pages::entity))
        .route("/catalog/{namespace}/{kind}/{name}/rollback", post(pages::rollback))
        .route("/create", get(pages::templates))
        .route("/create/{namespace}/{name}", get(pages::wizard).post(pages::start_task))
        .route("/tasks/{id}", get(pages::task))
        .route("/tasks/{id}/log", get(pages::task_log))
        .route("/clusters", get(pages::clusters))
        .route("/tenants", get(pages::tenants))
        .route("/tenants/{name}", get(pages::tenant))
        .route("/tenants/{name}/secrets", post(pages::set_secret))
        .route("/audit", get(pages::audit))
        .route("/assets/htmx.min.js", get(|| asset(HTMX, "text/javascript; charset=utf-8")))
        .route("/assets/portal.css", get(|| asset(CSS, "text/css; charset=utf-8")))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// The signed-in person of a page; pages without one send the browser to sign in.
pub struct Viewer(pub Principal);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        match signed_in(state, parts).await {
            Ok(Some(principal)) if auth::require(&principal, &Need::Anyone).is_ok() => Ok(Viewer(principal)),
            Ok(_) => {
                let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let to = format!("/sign-in?returnTo={}", view::url_encode(here));
                Err(Redirect::to(&to).into_response())
            }
            Err(error) => Err(view::error_page(None, error.status_code(), &error.message)),
        }
    }
}

/// The person signed in to the portal (a session cookie), if any.
pub async fn signed_in(state: &AppState, parts: &Parts) -> Result<Option<Principal>, crate::error::ApiError> {
    if crate::web::session_id(state, &parts.headers).is_none() {
        return Ok(None);
    }
    Ok(crate::authentication::authenticate(state, &parts.method, &parts.uri, &parts.headers).await?.map(|(principal, _)| principal))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInParams {
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn sign_in_page(State(state): State<AppState>, Query(params): Query<SignInParams>) -> Response {
    let page = view::SignIn {
        sso: state.oidc.is_some(),
        return_to: crate::web::local_path(params.return_to.as_deref()),
        error: params.error.unwrap_or_default(),
    };
    view::render(&page)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /sign-in`: an API token starts a portal session. The cookie holds
/// the session's id, never the token; the session ends when the token is
/// revoked, replaced or expires, at sign-out, or after twelve hours.
async fn sign_in(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    if let Err(error) = crate::web::check_origin(&state, &axum::http::Method::POST, &uri, &headers) {
        return view::error_page(None, error.status_code(), &error.message);
    }
    let return_to = crate::web::local_path(form.return_to.as_deref());
    let token = form.token.trim().to_string();
    let refused = |message: &str| {
        let to = format!("/sign-in?returnTo={}&error={}", view::url_encode(&return_to), view::url_encode(message));
        Redirect::to(&to).into_response()
    };
    let info = match state.store.authenticate_token(&token).await {
        Ok(Some(info)) => info,
        Ok(None) if state.auth_failures.failed(&headers) => return refused("too many failed sign-ins from this address; wait a minute"),
        Ok(None) => return refused("invalid or expired token"),
        Err(error) => return refused(&crate::error::ApiError::from(error).message),
    };
    match auth::principal_of_token(&state, info.clone()) {
        Ok(principal) if auth::require(&principal, &Need::Anyone).is_ok() => {
            let session = crate::identity::Session::Token { id: info.id, name: info.name };
            let seconds = 12 * 3600;
            match crate::identity::start_session(&state, &session, seconds).await {
                Ok(id) => {
                    let cookie = crate::web::session_cookie_for(&state, &id, seconds);
                    tracing::info!(actor = %principal.name, "portal sign-in with a token");
                    let mut response = Redirect::to(&return_to).into_response();
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                    response
                }
                Err(error) => refused(&crate::error::ApiError::from(error).message),
            }
        }
        Ok(_) => refused("this token is a cluster's: use a person's or the admin token"),
        Err(error) => refused(&error.message),
    }
}

/// `POST /sign-out`: ends the session (from the hub's own pages only).
async fn sign_out(State(state): State<AppState>, uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    if let Err(error) = crate::web::check_origin(&state, &axum::http::Method::POST, &uri, &headers) {
        return view::error_page(None, error.status_code(), &error.message);
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(header::SET_COOKIE, crate::web::end_session(&state, &headers).await);
    response
}

/// 404 for portal pages, as a page.
pub fn not_found(viewer: &Principal, what: &str) -> Response {
    view::error_page(Some(viewer), StatusCode::NOT_FOUND, what)
}
