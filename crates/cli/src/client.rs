//! A small typed client of the hub's REST API.

use anyhow::{Context as _, Result, anyhow, bail};
use heimdall_hub::ApiError;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::{ClientConfig, config_path};

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

impl Client {
    /// Finds the hub and the token: flags and environment first, then the current context.
    pub fn from_options(hub: Option<String>, token: Option<String>) -> Result<Client> {
        let config = ClientConfig::load(&config_path())?;
        let context = config.current();
        let hub = hub.or_else(|| context.map(|c| c.hub.clone())).unwrap_or_else(|| DEFAULT_HUB.to_string());
        let token = match token {
            Some(token) => Some(token),
            None => context.map(|c| c.resolve_token()).transpose()?.flatten(),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("heimdall/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building HTTP client")?;
        Ok(Client { http, hub: hub.trim_end_matches('/').to_string(), token })
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
                "the hub refused the credentials: pass --token, set HEIMDALL_TOKEN, or run heimdall up to write the local context",
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

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.request(Method::POST, path).json(body), &format!("POST {path}")).await
    }
}
