//! History, diff and rollback of an application: what the audit trail and
//! the cluster repositories know about it, and a way back (as a new change
//! through admission). `api::history` serves these; the portal calls them too.

use std::collections::BTreeMap;

use heimdall_model::ResourceKey;
use heimdall_store::{ApplyMode, AuditQuery};

use crate::admission;
use crate::auth::Principal;
use crate::state::AppState;
use heimdall_api::history::{ClusterCommit, ClusterDiff, Diff, History, Revision};

/// Why a history, diff or rollback could not be given.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// `field` names neither a revision number nor a commit of the application.
    #[error("{message}")]
    UnknownRevision { field: &'static str, message: String },
    #[error("revision {revision} is not one of application {namespace}/{name}'s: see heimdall history application {namespace}/{name}")]
    NotYet { revision: i64, namespace: String, name: String },
    #[error("application {namespace}/{name} did not exist at revision {revision}")]
    DidNotExist { revision: i64, namespace: String, name: String },
    #[error(transparent)]
    Store(#[from] heimdall_store::StoreError),
    #[error("cannot diff the repository of cluster {cluster}: {source}")]
    Repository { cluster: String, source: heimdall_gitops::GitopsError },
    /// Admission refused the rolled-back spec (it says why, field by field).
    #[error(transparent)]
    Refused(#[from] crate::rejection::Rejection),
}

fn app_key(namespace: &str, name: &str) -> ResourceKey {
    ResourceKey::new("Application", namespace, name)
}

/// Folders of the application in a cluster's repository, now and by default.
fn folders(state: &AppState, cluster: &str, namespace: &str, name: &str) -> Vec<String> {
    let this = [(namespace.to_string(), name.to_string())];
    let mut folders: Vec<String> = crate::delivery::folders_of(state, cluster, &this).unwrap_or_default().into_iter().collect();
    let own = format!("{namespace}/{name}");
    if !folders.contains(&own) {
        folders.push(own);
    }
    folders
}

/// Per cluster, the commits that touched the application, newest first.
fn commits(state: &AppState, namespace: &str, name: &str, limit: usize) -> BTreeMap<String, Vec<heimdall_gitops::CommitInfo>> {
    state
        .repos
        .clusters()
        .into_iter()
        .filter_map(|cluster| {
            let history = state.repos.history(&cluster, &folders(state, &cluster, namespace, name), limit).ok()?;
            (!history.is_empty()).then_some((cluster, history))
        })
        .collect()
}

/// The application's own revision in a commit: its `Heimdall-Resource`
/// trailer when the commit names it (a batch commit names each resource), else
/// the change's `Heimdall-Event`.
fn event_of(commit: &heimdall_gitops::CommitInfo, namespace: &str, name: &str) -> Option<i64> {
    let prefix = format!("Application/{namespace}/{name}=");
    commit
        .trailers
        .iter()
        .filter(|(k, _)| k == "Heimdall-Resource")
        .find_map(|(_, v)| v.strip_prefix(&prefix)?.parse().ok())
        .or_else(|| commit.trailer("Heimdall-Event")?.parse().ok())
}

/// The revisions that changed an application or what it delivers, newest
/// first (default 50, at most 500).
pub async fn history(state: &AppState, namespace: &str, name: &str, limit: Option<usize>) -> Result<History, HistoryError> {
    let (namespace, name) = (namespace.to_string(), name.to_string());
    let limit = limit.unwrap_or(50).clamp(1, 500);
    let events = state
        .store
        .audit(&AuditQuery {
            kind: Some("Application".into()),
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            limit,
            ..Default::default()
        })
        .await?;
    // Statuses the hub derives itself are not revisions of the application.
    let mut revisions: BTreeMap<i64, Revision> = events
        .into_iter()
        .filter(|e| !(e.verb == "update-status" && e.actor == crate::actors::RENDERER))
        .map(|e| (e.revision, Revision { revision: e.revision, at: e.at, actor: e.actor, summary: e.verb, commits: Vec::new() }))
        .collect();
    for (cluster, list) in commits(state, &namespace, &name, limit) {
        for commit in list {
            let Some(revision) = event_of(&commit, &namespace, &name) else { continue };
            let entry = revisions.entry(revision).or_insert_with(|| Revision {
                revision,
                at: chrono::DateTime::from_timestamp(commit.time, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                actor: commit.author.name.clone(),
                summary: commit.summary.clone(),
                commits: Vec::new(),
            });
            entry.commits.push(ClusterCommit { cluster: cluster.clone(), commit: commit.id.clone() });
        }
    }
    let mut items: Vec<Revision> = revisions.into_values().rev().take(limit).collect();
    for item in &mut items {
        item.commits.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    }
    Ok(History { items })
}

/// A revision number, or a commit id (prefix) that one of the repositories knows.
fn resolve(state: &AppState, field: &'static str, revision: &str, namespace: &str, name: &str) -> Result<i64, HistoryError> {
    if let Ok(number) = revision.parse::<i64>() {
        return Ok(number);
    }
    for (_, list) in commits(state, namespace, name, 500) {
        if let Some(commit) = list.iter().find(|c| c.id.starts_with(revision)) {
            return event_of(commit, namespace, name)
                .ok_or_else(|| HistoryError::UnknownRevision { field, message: format!("commit {revision} carries no Heimdall-Event") });
        }
    }
    Err(HistoryError::UnknownRevision {
        field,
        message: format!("{revision:?} is neither a revision number nor a commit of this application"),
    })
}

/// The manifest diff of an application between two revisions, per cluster.
pub fn diff(state: &AppState, namespace: &str, name: &str, from: &str, to: Option<&str>) -> Result<Diff, HistoryError> {
    let from = resolve(state, "from", from, namespace, name)?;
    let to = to.map(|r| resolve(state, "to", r, namespace, name)).transpose()?;
    let mut clusters = Vec::new();
    for (cluster, list) in commits(state, namespace, name, 500) {
        // The newest commit at or before a revision is how the cluster looked then.
        let at = |revision: Option<i64>| -> Option<String> {
            match revision {
                None => state.repos.head(&cluster).ok().flatten(),
                Some(revision) => list.iter().find(|c| event_of(c, namespace, name).is_some_and(|e| e <= revision)).map(|c| c.id.clone()),
            }
        };
        let (old, new) = (at(Some(from)), at(to));
        let mut text = String::new();
        for folder in folders(state, &cluster, namespace, name) {
            text.push_str(
                &state
                    .repos
                    .diff_folder(&cluster, old.as_deref(), new.as_deref(), &folder)
                    .map_err(|source| HistoryError::Repository { cluster: cluster.clone(), source })?,
            );
        }
        if !text.is_empty() {
            clusters.push(ClusterDiff { cluster, from: old, to: new, diff: text });
        }
    }
    Ok(Diff { clusters })
}

/// Restore the application's spec, labels and annotations as of a revision,
/// as a new change: admitted, stored, audited and committed like any other.
pub async fn rollback(
    state: &AppState,
    principal: &Principal,
    namespace: &str,
    name: &str,
    to: &str,
) -> Result<heimdall_model::Resource, HistoryError> {
    let revision = resolve(state, "to", to, namespace, name)?;
    let key = app_key(namespace, name);
    // A revision that has not happened yet would name today's object.
    if revision > state.store.revision().await? {
        return Err(HistoryError::NotYet { revision, namespace: namespace.into(), name: name.into() });
    }
    let Some(mut old) = state.store.object_at(&key, revision).await? else {
        return Err(HistoryError::DidNotExist { revision, namespace: namespace.into(), name: name.into() });
    };
    let meta = &mut old.metadata;
    meta.resource_version = None;
    meta.uid = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    old.status = None;
    let verb = format!("roll back to revision {revision}:");
    let mut written =
        admission::write(state, principal, &verb, vec![(format!("revision {revision}"), old)], ApplyMode::Apply, false).await?;
    Ok(written.remove(0).resource)
}
