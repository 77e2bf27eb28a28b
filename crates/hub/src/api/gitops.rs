//! Cluster repositories: health, rebuild, and the manifests that point Argo
//! CD or Flux at them.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use heimdall_model::ResourceKey;
use heimdall_model::spec::platform::{ClusterSpec, Delivery};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::admission::RENDERER;
use crate::auth::Principal;
use crate::delivery::{self, ChangeNote};
use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::clusters::{BootstrapRequest, Rebuilt};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryHealth {
    pub cluster: String,
    /// `Healthy`, `Missing` or `Corrupt`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The health of every cluster's repository.
pub async fn health(state: &AppState) -> Result<Vec<RepositoryHealth>, ApiError> {
    let clusters = state.store.list(&heimdall_store::ListQuery { kind: "Cluster".into(), ..Default::default() }).await?;
    Ok(clusters
        .items
        .iter()
        .map(|cluster| {
            let name = cluster.metadata.name.clone();
            match state.repos.verify(&name) {
                Ok(()) => RepositoryHealth { cluster: name, state: "Healthy".into(), message: None },
                Err(heimdall_gitops::GitopsError::Missing { .. }) => RepositoryHealth {
                    cluster: name,
                    state: "Missing".into(),
                    message: Some("no repository on disk: heimdall gitops rebuild".into()),
                },
                Err(e) => {
                    RepositoryHealth { cluster: name, state: "Corrupt".into(), message: Some(format!("{e}; heimdall gitops rebuild")) }
                }
            }
        })
        .collect())
}

/// Records each cluster's repository health in its status (only when it changed).
pub async fn record_health(state: &AppState) -> Result<(), ApiError> {
    for report in health(state).await? {
        let key = ResourceKey::new("Cluster", "", &report.cluster);
        let cluster = state.store.get(&key).await?;
        let mut status = cluster.status.clone().unwrap_or_else(|| json!({}));
        let repository = json!({"state": report.state, "message": report.message, "path": format!("/git/clusters/{}.git", report.cluster)});
        if status.get("repository") != Some(&repository) {
            status["repository"] = repository;
            state.store.update_status(RENDERER, &key, status, None).await?;
        }
    }
    Ok(())
}

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
    state.store.get(&ResourceKey::new("Cluster", "", &name)).await?;
    let _delivery = state.delivery.lock().await;
    let set_aside = state.repos.set_aside(&name).map_err(|e| {
        tracing::error!(cluster = %name, error = %e, "cannot set the repository aside");
        ApiError::internal()
    })?;
    let revision = state.store.revision().await?;
    let note = ChangeNote {
        actor: principal.name.clone(),
        summary: format!("rebuild the repository of cluster {name} from the store at revision {revision}"),
        revision,
        resources: Vec::new(),
    };
    let apps = crate::reconcile::all_apps(&state).await?;
    let commits = delivery::reconcile(&state, &apps, &note, Some(&name)).await;
    delivery::publish(&state, &commits).await;
    let commits = commits.into_iter().map(|(_, commit)| commit).collect();
    record_health(&state).await?;
    tracing::info!(cluster = %name, by = %principal.name, "repository rebuilt");
    Ok(Json(Rebuilt { cluster: name, set_aside: set_aside.map(|p| p.display().to_string()), commits }))
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
