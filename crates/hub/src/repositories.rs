//! Cluster repositories as a whole: their health, recorded in each
//! Cluster's status, and rebuilding one from the store.

use heimdall_model::ResourceKey;
use heimdall_model::status::{ClusterStatus, RepositoryStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::actors::RENDERER;
use crate::delivery::ChangeNote;
use crate::state::AppState;
use heimdall_api::clusters::Rebuilt;
use heimdall_store::StoreError;

/// Why a repository could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set the repository of cluster {cluster} aside: {source}")]
    SetAside { cluster: String, source: heimdall_gitops::GitopsError },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepositoryHealth {
    pub cluster: String,
    /// `Healthy`, `Missing` or `Corrupt`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The health of every cluster's repository.
pub async fn health(state: &AppState) -> Result<Vec<RepositoryHealth>, StoreError> {
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
pub async fn record_health(state: &AppState) -> Result<(), StoreError> {
    for report in health(state).await? {
        let key = ResourceKey::new("Cluster", "", &report.cluster);
        let repository =
            RepositoryStatus { state: report.state, message: report.message, path: format!("/git/clusters/{}.git", report.cluster) };
        state.store.modify_status(RENDERER, &key, |_, status: &mut ClusterStatus| status.repository = Some(repository.clone())).await?;
    }
    Ok(())
}

/// Rebuilds a cluster's repository from the store: the old one (if any) is
/// moved aside, a new one is created, and the cluster's current desired
/// state is committed with a message that says so.
pub async fn rebuild(state: &AppState, actor: &str, name: &str) -> Result<Rebuilt, RepositoryError> {
    let name = name.to_string();
    state.store.get(&ResourceKey::new("Cluster", "", &name)).await?;
    let held = state.delivery.lock().await;
    let set_aside = state.repos.set_aside(&name).map_err(|source| RepositoryError::SetAside { cluster: name.clone(), source })?;
    let revision = state.store.revision().await?;
    let note = ChangeNote {
        actor: actor.to_string(),
        summary: format!("rebuild the repository of cluster {name} from the store at revision {revision}"),
        revision,
        resources: Vec::new(),
    };
    let apps = crate::delivery::all_apps(state).await?;
    let commits = crate::delivery::reconcile(state, &held, &apps, &note, Some(&name)).await;
    crate::delivery::publish(state, &commits).await;
    let commits = commits.into_iter().map(|(_, commit)| commit).collect();
    record_health(state).await?;
    tracing::info!(cluster = %name, by = %actor, "repository rebuilt");
    Ok(Rebuilt { cluster: name, set_aside: set_aside.map(|p| p.display().to_string()), commits })
}
