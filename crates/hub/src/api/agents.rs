//! The agent protocol: everything a spoke agent asks of the hub, always
//! as an outward HTTPS request from the spoke.
//!
//! - `POST /api/v1/agent/join` (join token in the body): the credential;
//! - `POST /api/v1/agent/rotate`: a fresh credential;
//! - `GET  /api/v1/agent/desired?known=&wait=`: long poll for the revision;
//! - `GET  /api/v1/agent/manifests?revision=&since=`: the repository's files;
//! - `POST /api/v1/agent/report`: heartbeat, facts, drift, health.
//!
//! Admin routes for clusters' agents live under `/api/v1/clusters/{name}/`.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::fleet::{self, AgentReport, Credential, JoinRequest, JoinToken};
use crate::install::{self, InstallOptions};
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode};
pub use heimdall_api::agent::{DesiredRevision, Manifests};
use heimdall_api::agent::{PROTOCOL_HEADER, PROTOCOL_MIN_HEADER, PROTOCOL_VERSION, negotiate};
pub use heimdall_api::clusters::{InstallRequest, JoinTokenRequest, Revoked};

/// The protocol version an agent's request speaks, if this hub serves it:
/// otherwise 426, naming both sides' versions.
fn protocol(headers: &HeaderMap) -> Result<u32, ApiError> {
    let version = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u32>().ok());
    negotiate(version(PROTOCOL_HEADER), version(PROTOCOL_MIN_HEADER))
        .map_err(|message| ApiError::new(StatusCode::UPGRADE_REQUIRED, "UpgradeRequired", message))
}

/// Middleware: every answer of the agent API says which protocol this hub speaks.
pub async fn announce_protocol(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let agent = request.uri().path().starts_with("/api/v1/agent/");
    let mut response = next.run(request).await;
    if agent {
        response.headers_mut().insert(PROTOCOL_HEADER, axum::http::HeaderValue::from(PROTOCOL_VERSION));
    }
    response
}

fn own_cluster(principal: &Principal) -> Result<&str, ApiError> {
    match principal.cluster() {
        Some(cluster) if principal.name == fleet::credential_name(cluster) => Ok(cluster),
        _ => Err(ApiError::forbidden("only a cluster's agent credential may use the agent API")),
    }
}

#[utoipa::path(post, path = "/api/v1/agent/join", tag = "agents", request_body = JoinRequest,
    responses((status = 200, body = Credential), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
pub async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<JoinRequest>,
) -> Result<Json<Credential>, ApiError> {
    protocol(&headers)?;
    Ok(Json(fleet::join(&state, &request).await?))
}

#[utoipa::path(post, path = "/api/v1/agent/rotate", tag = "agents", responses((status = 200, body = Credential)))]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Json<Credential>, ApiError> {
    protocol(&headers)?;
    Ok(Json(fleet::rotate(&state, own_cluster(&principal)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DesiredQuery {
    /// The revision the agent has; the answer waits while it is still current.
    pub known: Option<String>,
    /// Seconds to wait for a change (at most 60).
    pub wait: Option<u64>,
}

/// How often a waiting long poll looks at the repository even without a
/// local commit notice (another hub replica may have committed).
const RECHECK: Duration = Duration::from_secs(5);

#[utoipa::path(get, path = "/api/v1/agent/desired", tag = "agents", params(DesiredQuery), responses((status = 200, body = DesiredRevision)))]
pub async fn desired(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<DesiredQuery>,
    headers: HeaderMap,
) -> Result<Json<DesiredRevision>, ApiError> {
    protocol(&headers)?;
    let cluster = own_cluster(&principal)?.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait.unwrap_or(0).min(60));
    let mut commits = state.commits.subscribe();
    loop {
        let head = state.repos.head(&cluster).map_err(ApiError::from)?;
        if head != query.known || tokio::time::Instant::now() >= deadline {
            return Ok(Json(DesiredRevision { revision: head }));
        }
        let wake = (tokio::time::Instant::now() + RECHECK).min(deadline);
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ManifestsQuery {
    /// A full commit id of the cluster's repository.
    pub revision: String,
    /// Only what changed since this commit.
    pub since: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/agent/manifests", tag = "agents", params(ManifestsQuery),
    responses((status = 200, body = Manifests), (status = 404, body = ApiError)))]
pub async fn manifests(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ManifestsQuery>,
    headers: HeaderMap,
) -> Result<Json<Manifests>, ApiError> {
    protocol(&headers)?;
    let cluster = own_cluster(&principal)?.to_string();
    let repos = state.repos.clone();
    let since = query.since.clone();
    let revision = query.revision.clone();
    let changes = tokio::task::spawn_blocking(move || repos.changes(&cluster, &revision, since.as_deref()))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(ApiError::from)?;
    Ok(Json(Manifests { revision: query.revision, complete: query.since.is_none(), files: changes.files, removed: changes.removed }))
}

#[utoipa::path(post, path = "/api/v1/agent/report", tag = "agents", request_body = AgentReport, responses((status = 200, body = DesiredRevision)))]
pub async fn report(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Json(report): Json<AgentReport>,
) -> Result<Json<DesiredRevision>, ApiError> {
    protocol(&headers)?;
    let cluster = own_cluster(&principal)?.to_string();
    let revision = fleet::record_report(&state, &cluster, report).await?;
    Ok(Json(DesiredRevision { revision }))
}

const DAY: u64 = 24 * 3600;

fn ttl(seconds: Option<u64>) -> Result<Duration, ApiError> {
    match seconds.unwrap_or(DAY) {
        s if s == 0 || s > 30 * DAY => Err(ApiError::invalid_field("ttlSeconds", "expected 1 to 2592000 seconds (30 days)")),
        s => Ok(Duration::from_secs(s)),
    }
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/join-tokens", tag = "clusters", params(("name" = String, Path)),
    request_body = JoinTokenRequest, responses((status = 200, body = JoinToken), (status = 404, body = ApiError)))]
pub async fn issue_join_token(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<Json<JoinTokenRequest>>,
) -> Result<Json<JoinToken>, ApiError> {
    let request = body.map(|Json(b)| b).unwrap_or_default();
    Ok(Json(fleet::issue_join_token(&state, &name, ttl(request.ttl_seconds)?).await?))
}

#[utoipa::path(post, path = "/api/v1/clusters/{name}/revoke", tag = "clusters", params(("name" = String, Path)),
    responses((status = 200, body = Revoked), (status = 404, body = ApiError)))]
pub async fn revoke(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Revoked>, ApiError> {
    let revoked = fleet::revoke(&state, &name).await?;
    Ok(Json(Revoked { cluster: name, revoked }))
}

/// A fresh join token inside everything the spoke needs, as YAML. Any
/// earlier unspent join token of the cluster stops working.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/install-manifest", tag = "clusters", params(("name" = String, Path)),
    request_body = InstallRequest, responses((status = 200, content_type = "application/yaml", body = String), (status = 404, body = ApiError)))]
pub async fn install_manifest(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<InstallRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if !(request.hub_url.starts_with("https://") || request.hub_url.starts_with("http://")) {
        return Err(ApiError::invalid_field("hubUrl", "expected an http:// or https:// URL"));
    }
    let namespace = request.namespace.unwrap_or_else(|| "heimdall-system".into());
    for (path, ns) in std::iter::once(("namespace".to_string(), &namespace))
        .chain(request.namespaces.iter().flatten().enumerate().map(|(i, ns)| (format!("namespaces[{i}]"), ns)))
    {
        if heimdall_model::validation::check_dns_label(ns).is_err() {
            return Err(ApiError::invalid_field(&path, format!("{ns:?} is not a valid namespace name")));
        }
    }
    let token = fleet::issue_join_token(&state, &name, ttl(request.ttl_seconds)?).await?;
    let options = InstallOptions {
        cluster: name,
        hub_url: request.hub_url,
        join_token: token.token,
        image: request.image.unwrap_or_else(|| concat!("ghcr.io/heimdall-dev/heimdall:", env!("CARGO_PKG_VERSION")).to_string()),
        namespace,
        namespaces: request.namespaces,
        hub_ca: request.hub_ca,
    };
    Ok(([(header::CONTENT_TYPE, "application/yaml")], install::render(&options)))
}

/// What a fleet failure means to an agent or an admin; store failures are logged by their own mapping.
impl From<fleet::FleetError> for ApiError {
    fn from(err: fleet::FleetError) -> Self {
        use fleet::FleetError;
        match err {
            FleetError::JoinRefused => ApiError::unauthorized(err.to_string()),
            FleetError::WrongCluster { .. } => ApiError::invalid_field("clusterName", err.to_string()),
            FleetError::BadPublicKey => ApiError::invalid_field("publicKey", err.to_string()),
            FleetError::Store(e) => e.into(),
        }
    }
}
