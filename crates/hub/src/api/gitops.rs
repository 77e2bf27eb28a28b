//! Cluster repositories: health, rebuild, and the manifests that point Argo
//! CD or Flux at them.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use heimdall_model::ResourceKey;
use heimdall_model::spec::platform::{ClusterSpec, Delivery};
use serde_json::json;

use crate::auth::Principal;
use crate::error::ApiError;
pub use crate::repositories::{RepositoryHealth, health, record_health};
use crate::state::AppState;
pub use heimdall_api::clusters::{BootstrapRequest, Rebuilt};

/// Rebuild a cluster's repository from the store: the old one (if any) is
/// moved aside, a new one is created, and the cluster's current desired
/// state is committed with a message that says so.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/rebuild", tag = "clusters", params(("name" = String, Path)),
    responses((status = 200, body = Rebuilt), (status = 404, body = ApiError)))]
pub async fn rebuild(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Rebuilt>, ApiError> {
    Ok(Json(crate::repositories::rebuild(&state, &principal.name, &name).await?))
}

/// The manifests that make Argo CD or Flux deliver a cluster's repository.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/bootstrap", tag = "clusters", params(("name" = String, Path)), request_body = BootstrapRequest,
    responses((status = 200, content_type = "application/yaml", body = String), (status = 422, body = ApiError)))]
pub async fn bootstrap(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<BootstrapRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let cluster = state.store.get(&ResourceKey::new("Cluster", "", &name)).await?;
    let spec: ClusterSpec =
        heimdall_model::spec::deserialize_at(&if cluster.spec.is_null() { json!({}) } else { cluster.spec.clone() }, "spec")
            .map_err(|p| ApiError::invalid_field(&p.path, p.message))?;
    let url = format!("{}/git/clusters/{name}.git", request.hub_url.trim_end_matches('/'));
    let password = request.token.unwrap_or_else(|| format!("REPLACE-WITH-THE-OUTPUT-OF: heimdall cluster token {name}"));
    let credentials = |namespace: &str, labels: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": format!("heimdall-{name}"), "namespace": namespace, "labels": labels},
               "stringData": {"type": "git", "url": url, "username": "heimdall", "password": password}})
    };
    let documents = match spec.delivery {
        Delivery::Argocd => vec![
            credentials("argocd", json!({"argocd.argoproj.io/secret-type": "repository"})),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": format!("heimdall-{name}"), "namespace": "argocd"},
                   "spec": {"project": "default", "source": {"repoURL": url, "targetRevision": "main", "path": "."},
                            "destination": {"server": "https://kubernetes.default.svc"},
                            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["ServerSideApply=true"]}}}),
        ],
        Delivery::Flux => vec![
            credentials("flux-system", json!({})),
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": format!("heimdall-{name}"), "namespace": "flux-system"},
                   "spec": {"url": url, "ref": {"branch": "main"}, "interval": "1m", "secretRef": {"name": format!("heimdall-{name}")}}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": format!("heimdall-{name}"), "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": format!("heimdall-{name}")}, "path": "./", "prune": true, "interval": "5m"}}),
        ],
        Delivery::Agent => {
            return Err(ApiError::invalid_field(
                "spec.delivery",
                format!("cluster {name} delivers through the Heimdall agent; bootstrap manifests are for delivery: argocd or flux"),
            ));
        }
    };
    let mut yaml = String::new();
    for document in documents {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&document).map_err(|_| ApiError::internal())?);
    }
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml))
}

/// What a failed rebuild means to a client; the internal cause is logged here.
impl From<crate::repositories::RepositoryError> for ApiError {
    fn from(err: crate::repositories::RepositoryError) -> Self {
        use crate::repositories::RepositoryError;
        match err {
            RepositoryError::Store(e) => e.into(),
            RepositoryError::SetAside { .. } => {
                tracing::error!(error = %err, "repository rebuild failed");
                ApiError::internal()
            }
        }
    }
}
