//! The agent's side of the hub protocol: plain HTTPS requests the agent
//! makes outwards (so it works behind NAT, firewalls and HTTP proxies, which
//! are honoured from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`). Revisions are
//! learned by long polling: the hub answers as soon as the cluster's
//! revision moves, or after `wait` with the same one.

use std::sync::Arc;

use parking_lot::RwLock;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub refused the credential or join token (revoked, expired, spent).
    #[error("the hub refused the agent: {0}")]
    Refused(String),
    #[error("the hub rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("cannot reach the hub: {0}")]
    Unreachable(String),
}

impl HubError {
    /// Worth retrying later (the hub may be back).
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Unreachable(_) => true,
            HubError::Rejected { status, .. } => *status >= 500 || *status == 429,
            HubError::Refused(_) => false,
        }
    }
}

pub use heimdall_api::agent::{Credential, DesiredRevision, JoinRequest, Manifests, Report};
use heimdall_api::agent::{OLDEST_HUB_PROTOCOL, PROTOCOL_HEADER, PROTOCOL_MIN_HEADER, PROTOCOL_VERSION};

/// Cheap to clone; clones share the credential, so a rotation reaches them all.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    credential: Arc<RwLock<Option<String>>>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl HubClient {
    /// `ca` is an extra PEM root to trust (a hub with a private CA); `proxy`
    /// an HTTP proxy for every request (else the proxy environment variables apply).
    pub fn new(base: &str, ca: Option<&[u8]>, proxy: Option<&str>) -> Result<HubClient, HubError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("heimdall-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|e| HubError::Rejected { status: 0, message: format!("CA certificate: {e}") })?;
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(proxy) = proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| HubError::Rejected { status: 0, message: format!("proxy {proxy}: {e}") })?;
            builder = builder.proxy(proxy);
        }
        let http = builder.build().map_err(|e| HubError::Unreachable(e.to_string()))?;
        Ok(HubClient { http, base: base.trim_end_matches('/').to_string(), credential: Arc::new(RwLock::new(None)) })
    }

    pub fn set_credential(&self, credential: &str) {
        *self.credential.write() = Some(credential.to_string());
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, HubError> {
        let credential = self.credential.read().clone();
        let request =
            request.header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string()).header(PROTOCOL_MIN_HEADER, OLDEST_HUB_PROTOCOL.to_string());
        let request = match credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        };
        let response = request.send().await.map_err(|e| HubError::Unreachable(without_url(&e)))?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|e| HubError::Unreachable(without_url(&e)));
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body.get("message").and_then(Value::as_str).unwrap_or(status.canonical_reason().unwrap_or("error")).to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => HubError::Refused(message),
            _ => HubError::Rejected { status: status.as_u16(), message },
        })
    }

    /// Trades a one-time join token for the cluster's credential.
    pub async fn join(&self, request: &JoinRequest) -> Result<Credential, HubError> {
        self.send(self.http.post(format!("{}/api/v1/agent/join", self.base)).json(request).timeout(Duration::from_secs(30))).await
    }

    /// Replaces the credential with a fresh one; the old one stops working.
    pub async fn rotate(&self) -> Result<Credential, HubError> {
        self.send(self.http.post(format!("{}/api/v1/agent/rotate", self.base)).timeout(Duration::from_secs(30))).await
    }

    /// The cluster's revision: at once if it differs from `known`, else when it changes or after `wait`.
    pub async fn desired(&self, known: Option<&str>, wait: Duration) -> Result<DesiredRevision, HubError> {
        let mut query = vec![("wait", wait.as_secs().to_string())];
        if let Some(known) = known {
            query.push(("known", known.to_string()));
        }
        let request = self.http.get(format!("{}/api/v1/agent/desired", self.base)).query(&query).timeout(wait + Duration::from_secs(15));
        self.send(request).await
    }

    /// The repository at `revision`: whole, or what changed since `since`.
    pub async fn manifests(&self, revision: &str, since: Option<&str>) -> Result<Manifests, HubError> {
        let mut query = vec![("revision", revision.to_string())];
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        self.send(self.http.get(format!("{}/api/v1/agent/manifests", self.base)).query(&query).timeout(Duration::from_secs(120))).await
    }

    /// Heartbeat, facts and health. Returns the hub's answer (the desired revision).
    pub async fn report(&self, report: &Report) -> Result<DesiredRevision, HubError> {
        self.send(self.http.post(format!("{}/api/v1/agent/report", self.base)).json(report).timeout(Duration::from_secs(30))).await
    }
}

/// reqwest's errors name the URL; ours never carry query strings, but keep
/// messages short and free of anything a URL might hold.
fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(start) = message.find(" for url (") {
        message.truncate(start);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
