//! A small typed client of the hub's REST API.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use heimdall_api::ApiError;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::{ClientConfig, ConfigLock, Context, OidcSession, config_path};

pub const DEFAULT_HUB: &str = "http://127.0.0.1:8080";

pub struct Client {
    http: reqwest::Client,
    hub: String,
    token: Option<String>,
}

/// An error the hub answered with, rendered for a terminal.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_api_error(.0))]
pub struct HubRefused(pub ApiError);

pub fn render_api_error(error: &ApiError) -> String {
    let mut out = error.message.clone();
    if let Some(permission) = &error.permission
        && !out.contains(permission.as_str())
    {
        out.push_str(&format!(" (missing permission {permission})"));
    }
    for detail in &error.details {
        out.push_str("\n  - ");
        if let Some(document) = &detail.document {
            out.push_str(document);
            out.push_str(": ");
        }
        if !detail.path.is_empty() {
            out.push_str(&detail.path);
            out.push_str(": ");
        }
        out.push_str(&detail.message);
    }
    out
}

/// Refresh an ID token this long before it expires, so that it cannot
/// expire on the way to the hub.
const REFRESH_MARGIN_SECONDS: i64 = 60;

pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder().user_agent(concat!("heimdall/", env!("CARGO_PKG_VERSION"))).build().context("building HTTP client")
}

/// The ID token of context `name`'s sign-in, refreshed first if it is
/// about to expire (the new tokens are saved: providers rotate refresh tokens).
async fn session_token(http: &reqwest::Client, path: &Path, name: &str, session: &OidcSession) -> Result<String> {
    let now = || chrono::Utc::now().timestamp();
    if session.expires_at - now() > REFRESH_MARGIN_SECONDS {
        return Ok(session.id_token.clone());
    }
    let _lock = ConfigLock::acquire(path).await?;
    let mut config = ClientConfig::load(path)?;
    let Some(session) = config.contexts.get_mut(name).and_then(|c| c.oidc.as_mut()) else {
        bail!("context {name:?} has no sign-in any more: run heimdall login");
    };
    // Another heimdall command may have refreshed while this one waited for the lock.
    if session.expires_at - now() > REFRESH_MARGIN_SECONDS {
        return Ok(session.id_token.clone());
    }
    let refreshed = match &session.refresh_token {
        Some(refresh_token) => crate::oidc::refresh(http, &session.token_endpoint, &session.client_id, refresh_token).await,
        None => Err(anyhow!("the identity provider gave this sign-in no refresh token")),
    };
    match refreshed {
        Ok(tokens) => {
            session.id_token = tokens.id_token.clone();
            session.refresh_token = tokens.refresh_token;
            session.expires_at = tokens.expires_at;
            config.save(path)?;
            Ok(tokens.id_token)
        }
        // The token still works for a moment: a provider outage should not stop this command.
        Err(e) if session.expires_at > now() => {
            eprintln!("warning: cannot refresh the sign-in ({e:#}); it ends in {}s", session.expires_at - now());
            Ok(session.id_token.clone())
        }
        Err(e) => Err(e.context("your session expired: run heimdall login")),
    }
}

impl Client {
    /// Finds the hub and the token: flags and environment first, then the
    /// current context (refreshing its sign-in if it is about to expire).
    pub async fn from_options(hub: Option<String>, token: Option<String>) -> Result<Client> {
        let path = config_path();
        let config = ClientConfig::load(&path)?;
        let context = config.current();
        let hub = hub.or_else(|| context.map(|c| c.hub.clone())).unwrap_or_else(|| DEFAULT_HUB.to_string());
        let http = http_client()?;
        let token = match (token, config.current_context.as_deref(), context) {
            (Some(token), _, _) => Some(token),
            (None, Some(name), Some(Context { oidc: Some(session), .. })) => Some(session_token(&http, &path, name, session).await?),
            (None, _, Some(context)) => context.resolve_token()?,
            (None, _, None) => None,
        };
        Ok(Client { http, hub: hub.trim_end_matches('/').to_string(), token })
    }

    /// A client of `hub` with `token`, reading no configuration.
    pub fn new(hub: &str, token: Option<String>) -> Result<Client> {
        Ok(Client { http: http_client()?, hub: hub.trim_end_matches('/').to_string(), token })
    }

    pub fn hub(&self) -> &str {
        &self.hub
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.hub));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, what: &str) -> Result<T> {
        let response =
            request.send().await.with_context(|| format!("cannot reach the hub at {} ({what}); is it running? (heimdall up)", self.hub))?;
        let status = response.status();
        let bytes = response.bytes().await.with_context(|| format!("reading the hub's answer to {what}"))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).with_context(|| format!("the hub's answer to {what} is not what this CLI expects"));
        }
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(error) if status == StatusCode::UNAUTHORIZED => Err(anyhow!(HubRefused(error)).context(
                "the hub refused the credentials: run heimdall login, pass --token, set HEIMDALL_TOKEN, or run heimdall up to write the local context",
            )),
            Ok(error) => Err(HubRefused(error).into()),
            Err(_) => bail!("{what}: the hub answered {status}: {}", String::from_utf8_lossy(&bytes)),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::GET, path), &format!("GET {path}")).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(Method::DELETE, path), &format!("DELETE {path}")).await
    }

    /// A POST whose answer is text (YAML manifests).
    pub async fn post_text<B: Serialize>(&self, path: &str, body: &B) -> Result<String> {
        let what = format!("POST {path}");
        let response = self
            .request(Method::POST, path)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {} ({what})", self.hub))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the hub's answer to {what}"))?;
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => Err(HubRefused(error).into()),
            Err(_) => bail!("{what}: the hub answered {status}: {text}"),
        }
    }

    pub async fn put_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.request(Method::PUT, path).json(body), &format!("PUT {path}")).await
    }

    /// A GET whose answer is read as it comes (server-sent events).
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response> {
        let what = format!("GET {path}");
        let response = self
            .request(Method::GET, path)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .with_context(|| format!("cannot reach the hub at {} ({what})", self.hub))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => Err(HubRefused(error).into()),
            Err(_) => bail!("{what}: the hub answered {status}: {text}"),
        }
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body), &format!("POST {path}")).await
    }
}
