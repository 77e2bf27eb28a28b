//! The hub's repositories over git's smart HTTP protocol, read-only, with a
//! token as the password (or a bearer header, or the portal's session):
//!
//! - `git clone http://hub/git/clusters/<cluster>.git`: a cluster's desired
//!   state (platform admins and that cluster's own tokens);
//! - `git clone http://hub/git/services/<tenant>/<name>.git`: a service
//!   repository the scaffolder created (anyone with a role in the tenant),
//!   and its files at `.../<name>.git/raw/<path>`.
//!
//! The hub runs `git upload-pack --stateless-rpc` for each request, as
//! `git http-backend` would.

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::auth::{Principal, may_read_repository};
use crate::error::ApiError;
use crate::state::AppState;

/// A 401 that makes `git` retry with the credentials it has.
fn challenge(message: &str) -> Response {
    let mut response = ApiError::unauthorized(message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"heimdall\""));
    response
}

/// Which repository a request is for.
#[derive(Debug, Clone)]
enum Repo {
    Cluster(String),
    Service { tenant: String, name: String },
}

impl Repo {
    fn may_read(&self, principal: &Principal) -> bool {
        match self {
            Repo::Cluster(cluster) => may_read_repository(principal, cluster),
            Repo::Service { tenant, .. } => crate::auth::may_read_service_repository(principal, tenant),
        }
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repo::Cluster(cluster) => write!(f, "the repository of cluster {cluster}"),
            Repo::Service { tenant, name } => write!(f, "repository {tenant}/{name}"),
        }
    }
}

/// Who asks, then whether they may read `repo`, then whether it exists:
/// nothing is said before the credential is checked, and a refusal comes
/// whether the repository exists or not, so names cannot be probed.
async fn open(state: &AppState, request: &RequestHead, repo: Option<Repo>, asked: &str) -> Result<(Principal, Repo, PathBuf), Response> {
    let (method, uri, headers) = request;
    let found = crate::authentication::authenticate(state, method, uri, headers).await.map_err(IntoResponse::into_response)?;
    let Some((principal, _)) = found else {
        return Err(challenge(if crate::authentication::token_of(headers).is_some() {
            "invalid or expired token"
        } else {
            "the repositories need a token: use it as the password, or send Authorization: Bearer <token>"
        }));
    };
    let not_found = || ApiError::not_found(format!("no repository {asked}")).into_response();
    let Some(repo) = repo else { return Err(not_found()) };
    // Refused whether it exists or not, so a refusal says nothing of what exists.
    if !repo.may_read(&principal) {
        return Err(ApiError::forbidden(format!("{} may not read {repo}", principal.name)).into_response());
    }
    let path = match &repo {
        Repo::Cluster(cluster) => state.repos.path(cluster).ok().filter(|_| state.repos.exists(cluster)),
        Repo::Service { tenant, name } => state.services.path(tenant, name).ok().filter(|_| state.services.exists(tenant, name)),
    };
    let Some(path) = path else { return Err(not_found()) };
    Ok((principal, repo, path))
}

/// What authentication reads of a request (the body, which is not `Sync`, stays behind).
type RequestHead = (axum::http::Method, axum::http::Uri, HeaderMap);

fn head(request: &Request) -> RequestHead {
    (request.method().clone(), request.uri().clone(), request.headers().clone())
}

/// `/git/clusters/<cluster>.git`.
fn cluster_repository(repo: &str) -> Option<Repo> {
    repo.strip_suffix(".git").map(|cluster| Repo::Cluster(cluster.to_string()))
}

/// `/git/services/<tenant>/<name>.git`.
fn service_repository(tenant: &str, repo: &str) -> Option<Repo> {
    repo.strip_suffix(".git").map(|name| Repo::Service { tenant: tenant.to_string(), name: name.to_string() })
}

fn protocol(headers: &HeaderMap) -> Option<String> {
    headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || "=:.-".contains(c)))
        .map(String::from)
}

fn pkt_line(text: &str) -> Vec<u8> {
    format!("{:04x}{text}", text.len() + 4).into_bytes()
}

#[derive(Deserialize)]
pub struct InfoRefs {
    service: Option<String>,
}

/// `GET .../info/refs?service=git-upload-pack`: the ref advertisement.
pub async fn info_refs(
    State(state): State<AppState>,
    Path(repo): Path<String>,
    Query(query): Query<InfoRefs>,
    request: Request,
) -> Response {
    match open(&state, &head(&request), cluster_repository(&repo), &format!("clusters/{repo}")).await {
        Ok((_, repo, path)) => advertise(repo, path, query, request).await,
        Err(response) => response,
    }
}

pub async fn service_info_refs(
    State(state): State<AppState>,
    Path((tenant, repo)): Path<(String, String)>,
    Query(query): Query<InfoRefs>,
    request: Request,
) -> Response {
    match open(&state, &head(&request), service_repository(&tenant, &repo), &format!("{tenant}/{repo}")).await {
        Ok((_, repo, path)) => advertise(repo, path, query, request).await,
        Err(response) => response,
    }
}

/// `GET /git/services/{tenant}/{repo}/raw/{*file}`: one file of `main`.
pub async fn service_raw(
    State(state): State<AppState>,
    Path((tenant, repo, file)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let found = match open(&state, &head(&request), service_repository(&tenant, &repo), &format!("{tenant}/{repo}")).await {
        Ok((_, found, _)) => found,
        Err(response) => return response,
    };
    let Repo::Service { tenant, name } = found else { return ApiError::internal().into_response() };
    let services = state.services.clone();
    let read = tokio::task::spawn_blocking(move || services.read_file(&tenant, &name, &file)).await;
    match read {
        Ok(Ok(Some(content))) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], content).into_response(),
        Ok(Ok(None)) => ApiError::not_found("no such file on main").into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => ApiError::internal().into_response(),
    }
}

async fn advertise(repo: Repo, path: PathBuf, query: InfoRefs, request: Request) -> Response {
    let protocol = protocol(request.headers());
    drop(request);
    let cluster = repo.to_string();
    match query.service.as_deref() {
        Some("git-upload-pack") => {}
        Some("git-receive-pack") => {
            return ApiError::forbidden("the repositories are read-only: change what runs through the API").into_response();
        }
        _ => return ApiError::bad_request("only the smart protocol is served: expected ?service=git-upload-pack").into_response(),
    }
    let mut command = tokio::process::Command::new("git");
    command
        .args(["upload-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(protocol) = &protocol {
        command.env("GIT_PROTOCOL", protocol);
    }
    let output = match command.output().await {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            tracing::error!(%cluster, stderr = %String::from_utf8_lossy(&output.stderr), "git upload-pack failed");
            return ApiError::internal().into_response();
        }
        Err(e) => {
            tracing::error!(%cluster, error = %e, "cannot run git");
            return ApiError::internal().into_response();
        }
    };
    // Protocol v2 starts with its capability advertisement; v0 with the service line.
    let mut body = Vec::new();
    if !protocol.as_deref().is_some_and(|p| p.contains("version=2")) {
        body.extend(pkt_line("# service=git-upload-pack\n"));
        body.extend(b"0000");
    }
    body.extend(output.stdout);
    ([(header::CONTENT_TYPE, "application/x-git-upload-pack-advertisement"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `POST .../git-upload-pack`: negotiation and the pack.
pub async fn upload_pack(State(state): State<AppState>, Path(repo): Path<String>, request: Request) -> Response {
    match open(&state, &head(&request), cluster_repository(&repo), &format!("clusters/{repo}")).await {
        Ok((_, repo, path)) => pack(repo, path, request).await,
        Err(response) => response,
    }
}

pub async fn service_upload_pack(
    State(state): State<AppState>,
    Path((tenant, repo)): Path<(String, String)>,
    request: Request,
) -> Response {
    match open(&state, &head(&request), service_repository(&tenant, &repo), &format!("{tenant}/{repo}")).await {
        Ok((_, repo, path)) => pack(repo, path, request).await,
        Err(response) => response,
    }
}

async fn pack(repo: Repo, path: PathBuf, request: Request) -> Response {
    let cluster = repo.to_string();
    let protocol = protocol(request.headers());
    let gzipped = request.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = match axum::body::to_bytes(request.into_body(), crate::web::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", "request body too large").into_response(),
    };
    let input: Bytes = if gzipped {
        let mut decoded = Vec::new();
        if flate2::read::GzDecoder::new(&body[..]).take(crate::web::MAX_BODY_BYTES as u64).read_to_end(&mut decoded).is_err() {
            return ApiError::bad_request("the gzip request body does not decode").into_response();
        }
        Bytes::from(decoded)
    } else {
        body
    };
    let mut command = tokio::process::Command::new("git");
    command
        .args(["upload-pack", "--stateless-rpc"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(protocol) = &protocol {
        command.env("GIT_PROTOCOL", protocol);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(%cluster, error = %e, "cannot run git");
            return ApiError::internal().into_response();
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Feeding input while the pack streams out avoids a full pipe on either side.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let Some(stdout) = child.stdout.take() else { return ApiError::internal().into_response() };
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    (
        [(header::CONTENT_TYPE, "application/x-git-upload-pack-result"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(tokio_util::io::ReaderStream::new(stdout)),
    )
        .into_response()
}

/// Pushing is refused: what runs in a cluster changes through the API.
pub async fn receive_pack() -> ApiError {
    ApiError::forbidden("the repositories are read-only: change what runs through the API")
}
