//! What keeps a browser session safe, in one place: the session cookie
//! (HttpOnly, SameSite, `__Host-` under TLS), the same-origin check every
//! cookie-carried change passes, the only redirect targets sign-in
//! accepts, the security headers on every answer, and the API's one error
//! shape for the framework's own refusals.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "heimdall_session";
/// Its name under TLS: `__Host-` keeps a sibling subdomain from setting it (cookie tossing).
pub const SECURE_SESSION_COOKIE: &str = "__Host-heimdall_session";

/// The session cookie's name on this hub.
pub fn session_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies { SECURE_SESSION_COOKIE } else { SESSION_COOKIE }
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

/// A `Set-Cookie` value: HttpOnly and SameSite=Lax always, Secure under TLS.
pub fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookie that carries a session id for `seconds`.
pub fn session_cookie_for(state: &AppState, session_id: &str, seconds: u64) -> HeaderValue {
    set_cookie(state, session_cookie(state), session_id, "/", seconds)
}

/// The session id of a request's cookie.
pub fn session_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, session_cookie(state)).filter(|id| !id.is_empty())
}

/// Ends the portal session of these headers, if any; returns the cookie that clears it.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = session_id(state, headers) {
        crate::identity::end_session(state, &id).await;
    }
    set_cookie(state, session_cookie(state), "", "/", 0)
}

/// `scheme://host[:port]`, lowercased, the default port left out.
fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// The origins the hub's own pages are served from: its public URL, and
/// the authority this request was sent to (HTTP/2's `:authority`, else
/// `Host`) on either scheme.
fn own_origins(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Vec<String> {
    let mut origins: Vec<String> = origin_of(&state.public_url).into_iter().collect();
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(String::from));
    if let Some(authority) = authority {
        for scheme in ["https", "http"] {
            origins.extend(origin_of(&format!("{scheme}://{authority}/")));
        }
    }
    origins
}

/// A change carried by a cookie must come from the hub's own pages: its
/// `Origin` (or, without one, its `Referer`) must be one of the hub's own.
/// Reads pass; a change that says nothing of where it comes from does not.
pub fn check_origin(state: &AppState, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return Ok(());
    }
    let header_text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let claimed = match (header_text(header::ORIGIN), header_text(header::REFERER)) {
        (Some(origin), _) => origin_of(origin),
        (None, Some(referer)) => origin_of(referer),
        (None, None) => None,
    };
    match claimed {
        Some(origin) if own_origins(state, uri, headers).contains(&origin) => Ok(()),
        Some(_) => Err(ApiError::forbidden("a signed-in change must come from the hub's own pages (cross-site Origin)")),
        None => Err(ApiError::forbidden("a signed-in change must come from the hub's own pages (no Origin or Referer)")),
    }
}

/// Only a path on this hub: never another site, however a browser would
/// read it (`//evil`, `/\evil`, `/<tab>/evil`), and nothing that would
/// not fit in a `Location` header.
pub fn local_path(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.chars().any(|c| c.is_control() || c == '\\' || c.is_whitespace()) && !p.starts_with("//") => {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The Content Security Policy of the portal's pages: nothing inline, no
/// other site, no framing. htmx and the stylesheet are the hub's own files.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";
/// Everything else (JSON, YAML, text) runs nothing at all.
pub const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: the security headers of every answer; `no-store` unless the
/// answer says how to cache it (only the portal's static assets do); HSTS
/// when the hub is served over HTTPS.
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
    let headers = response.headers_mut();
    let policy = if html { PAGE_POLICY } else { DATA_POLICY };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.secure_cookies {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}

/// Middleware: a refusal the framework writes as plain text (a body that is
/// not JSON, a missing query parameter, a path that does not parse) gets
/// the API's error shape on API routes, like every other error.
pub async fn api_error_shape(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let text = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_none_or(|t| t.starts_with("text/plain"));
    if !api || !(status.is_client_error() || status.is_server_error()) || !text {
        return response;
    }
    let bytes = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::new(status, reason(status), status.canonical_reason().unwrap_or("error")).into_response(),
    };
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { message };
    let mut answer = ApiError::new(status, reason(status), message).into_response();
    *answer.status_mut() = status;
    answer
}

fn reason(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        _ if status.is_server_error() => "InternalError",
        _ => "BadRequest",
    }
}

/// Middleware: the address the connection came from, for the limit on
/// failed sign-ins; a client cannot choose it (any such header it sent is dropped).
pub async fn client_address(mut request: Request, next: Next) -> Response {
    let address = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip().to_string());
    request.headers_mut().remove(crate::web::CLIENT_ADDRESS);
    if let Some(value) = address.and_then(|a| HeaderValue::from_str(&a).ok()) {
        request.headers_mut().insert(crate::web::CLIENT_ADDRESS, value);
    }
    next.run(request).await
}

/// The header the server puts the client's address in (any such header a client sent is replaced).
pub const CLIENT_ADDRESS: &str = "x-heimdall-client-address";

/// The largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/apps/shop?x=1")), "/apps/shop?x=1");
        for outside in
            ["//evil.example", "https://evil.example", "/\\evil", "apps", "/\t/evil.com", "/\n/evil.com", "/ /evil", "/a\r\nSet-Cookie: x"]
        {
            assert_eq!(local_path(Some(outside)), "/", "{outside:?}");
        }
    }

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        assert_eq!(origin_of("https://Hub.Example.com:443/x").as_deref(), Some("https://hub.example.com"));
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("null"), None);
    }
}
