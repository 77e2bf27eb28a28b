//! Delivery: rendered targets become folders in the cluster repositories,
//! one commit per cluster per accepted change.
//!
//! An application's folder in a cluster is `<namespace>/<app>`, or
//! `<namespace>/<app-namespace>--<app>` when it deploys outside its own
//! namespace (so two applications of the same name never collide). A target
//! held behind an approval gate, or blocked by a policy, keeps what is
//! delivered now; a render that fails keeps everything as it is, so a broken
//! change never removes a running application.

use heimdall_api::labels as well_known;
use std::collections::{BTreeMap, BTreeSet};

use heimdall_gitops::{Author, Change, FolderUpdate};
use heimdall_model::spec::platform::Enforcement;
use heimdall_model::status::{ClusterStatus, MirrorStatus};
use heimdall_model::{DocumentError, Resource};
use heimdall_render::Rendered;
use serde_json::Value;

use crate::actors::RENDERER;
use crate::rendering::status_of;
use crate::state::AppState;
use heimdall_store::{ListQuery, StoreError};

/// The git author for `actor`: a person's email when the name is one.
pub fn author(actor: &str) -> Author {
    Author { name: actor.to_string(), email: if actor.contains('@') { actor.to_string() } else { format!("{actor}@heimdall.invalid") } }
}

/// What a commit says about the change that caused it.
#[derive(Debug, Clone)]
pub struct ChangeNote {
    pub actor: String,
    /// `apply application shop/web`
    pub summary: String,
    /// The store revision of the change (the audit event id).
    pub revision: i64,
    /// `Application/shop/web=42`
    pub resources: Vec<String>,
}

impl ChangeNote {
    pub fn to_change(&self) -> Change {
        let mut trailers = vec![("Heimdall-Event".to_string(), self.revision.to_string())];
        trailers.extend(self.resources.iter().map(|r| ("Heimdall-Resource".to_string(), r.clone())));
        Change { author: author(&self.actor), message: format!("{} by {}", self.summary, self.actor), trailers }
    }
}

/// Where tenants' own manifests live (the agent applies them with its own rights).
pub use heimdall_api::labels::TENANTS_FOLDER;

/// The folder an application's objects for `namespace` live in (a
/// tenant's: `heimdall.tenants/<tenant>`).
pub fn folder(app: &Resource, namespace: &str) -> String {
    let app_namespace = app.metadata.namespace.as_deref().unwrap_or_default();
    if app.kind == "Tenant" {
        return format!("{TENANTS_FOLDER}/{}", app.metadata.name);
    }
    if app_namespace == namespace {
        format!("{namespace}/{}", app.metadata.name)
    } else {
        format!("{namespace}/{app_namespace}--{}", app.metadata.name)
    }
}

/// Whether `folder` (as `folder()` names them) belongs to the application `namespace/name`.
pub fn belongs_to(folder: &str, namespace: &str, name: &str) -> bool {
    if namespace.is_empty() {
        return folder.strip_prefix(TENANTS_FOLDER).and_then(|rest| rest.strip_prefix('/')) == Some(name);
    }
    match folder.split_once('/') {
        Some((ns, rest)) => (ns == namespace && rest == name) || rest == format!("{namespace}--{name}"),
        None => false,
    }
}

/// The folders of a cluster's repository that belong to `apps`, found by
/// looking each possible name up (an application's own folder, and its
/// folder in each namespace it may deploy into), so a change's cost follows
/// its applications, not the size of the repository.
pub fn folders_of(state: &AppState, cluster: &str, apps: &[(String, String)]) -> Result<BTreeSet<String>, heimdall_gitops::GitopsError> {
    // One snapshot: the namespaces and the folders are of the same commit.
    let folders = state.repos.folder_set(cluster)?;
    let mut found = BTreeSet::new();
    for (namespace, name) in apps {
        let own = if namespace.is_empty() { format!("{TENANTS_FOLDER}/{name}") } else { format!("{namespace}/{name}") };
        if folders.contains(&own) {
            found.insert(own);
        }
        if !namespace.is_empty() {
            for target in folders.namespaces() {
                let elsewhere = format!("{target}/{namespace}--{name}");
                if folders.contains(&elsewhere) {
                    found.insert(elsewhere);
                }
            }
        }
    }
    debug_assert!(found.iter().all(|f| apps.iter().any(|(ns, name)| belongs_to(f, ns, name))));
    Ok(found)
}

/// The application (`namespace`, `name`) a folder name implies; `None` for a tenant's folder.
pub fn owner(folder: &str) -> Option<(String, String)> {
    let (namespace, rest) = folder.split_once('/')?;
    if namespace == TENANTS_FOLDER {
        return None;
    }
    match rest.split_once("--") {
        Some((app_namespace, name)) => Some((app_namespace.to_string(), name.to_string())),
        None => Some((namespace.to_string(), rest.to_string())),
    }
}

fn file_name(object: &Value, target_namespace: &str) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("object").to_ascii_lowercase();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("unnamed");
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if ns != target_namespace => format!("{kind}-{ns}-{name}.yaml"),
        _ => format!("{kind}-{name}.yaml"),
    }
}

/// A folder's files in apply order: `(file name, content)`.
pub type Files = Vec<(String, Vec<u8>)>;

/// What a render means for each cluster: folders to write and folders to keep.
#[derive(Debug, Default)]
pub struct Desired {
    /// cluster -> folder -> files
    pub write: BTreeMap<String, BTreeMap<String, Files>>,
    pub keep: BTreeMap<String, BTreeSet<String>>,
    /// Secrets to seal into folders before committing: (cluster, folder, secret, labels).
    pub secrets: Vec<(String, String, heimdall_render::SecretUse, BTreeMap<String, String>)>,
}

/// The labels a sealed secret carries: the agent lists and prunes only
/// what is marked as Heimdall's, and people find the application by them.
fn secret_labels(app: &Resource) -> BTreeMap<String, String> {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    [
        (well_known::MANAGED_BY.0, well_known::MANAGED_BY.1.to_string()),
        (well_known::OAM_NAME, app.metadata.name.clone()),
        (well_known::OAM_NAMESPACE, namespace.clone()),
        (well_known::APP, app.metadata.name.clone()),
        (well_known::TENANT, namespace),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Desired {
    /// Adds one application's render (or, for a failed render, keeps what it has).
    pub fn add(&mut self, state: &AppState, app: &Resource, result: &Result<Rendered, DocumentError>) {
        let platform = state.rendering.platform();
        let Ok(rendered) = result else {
            let this = [(app.metadata.namespace.clone().unwrap_or_default(), app.metadata.name.clone())];
            for cluster in state.repos.clusters() {
                if let Ok(folders) = folders_of(state, &cluster, &this) {
                    self.keep.entry(cluster).or_default().extend(folders);
                }
            }
            return;
        };
        let blocked: BTreeSet<(&str, &str)> = rendered
            .findings
            .iter()
            .filter(|f| f.finding.enforcement == Enforcement::Deny && platform.defaults().policy_enforcement == Enforcement::Deny)
            .map(|f| (f.cluster.as_str(), f.namespace.as_str()))
            .collect();
        for target in &rendered.targets {
            if !platform.has_cluster(&target.cluster) {
                continue;
            }
            let folder = folder(app, &target.namespace);
            if target.held_by.is_some() || blocked.contains(&(target.cluster.as_str(), target.namespace.as_str())) {
                self.keep.entry(target.cluster.clone()).or_default().insert(folder);
                continue;
            }
            let files = target
                .objects
                .iter()
                .map(|object| (file_name(object, &target.namespace), serde_saphyr::to_string(object).unwrap_or_default().into_bytes()))
                .collect();
            for secret in &target.secrets {
                self.secrets.push((target.cluster.clone(), folder.clone(), secret.clone(), secret_labels(app)));
            }
            self.write.entry(target.cluster.clone()).or_default().insert(folder, files);
        }
    }

    /// Folder updates for `cluster`, given the folders it has now and which
    /// of them this change is about (`in_scope`).
    pub fn updates(&self, cluster: &str, existing: &BTreeSet<String>, in_scope: impl Fn(&str) -> bool) -> Vec<FolderUpdate> {
        let mut updates: Vec<FolderUpdate> = self
            .write
            .get(cluster)
            .into_iter()
            .flatten()
            .map(|(folder, files)| FolderUpdate { folder: folder.clone(), files: Some(files.clone()) })
            .collect();
        let keep = self.keep.get(cluster);
        let written = self.write.get(cluster);
        for folder in existing {
            let wanted = written.is_some_and(|w| w.contains_key(folder)) || keep.is_some_and(|k| k.contains(folder));
            if !wanted && in_scope(folder) {
                updates.push(FolderUpdate { folder: folder.clone(), files: None });
            }
        }
        updates
    }

    /// Seals the pending secrets into their folders. A secret that cannot be
    /// sealed now keeps the sealed file the repository has, so nothing running
    /// loses its Secret because of a hub-side problem.
    pub async fn seal_secrets(&mut self, state: &AppState) {
        let mut sealer = crate::secrets::Sealer::new(state);
        let mut existing: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
        for (cluster, folder, secret, labels) in std::mem::take(&mut self.secrets) {
            let files = existing.entry((cluster.clone(), folder.clone())).or_insert_with(|| {
                let head = state.repos.head(&cluster).ok().flatten();
                head.and_then(|head| state.repos.files_at(&cluster, &head, &folder).ok()).unwrap_or_default()
            });
            let sealed = match sealer.seal(&cluster, files, &secret, &labels).await {
                Some(sealed) => Some(sealed),
                None => ["encryptedsecret", "sealedsecret"]
                    .iter()
                    .map(|kind| format!("{kind}-{}.yaml", secret.name))
                    .find_map(|name| files.get(&name).map(|content| (name, content.clone().into_bytes()))),
            };
            if let Some(file) = sealed
                && let Some(folder_files) = self.write.get_mut(&cluster).and_then(|w| w.get_mut(&folder))
            {
                // Secrets first: the pods that read them come after.
                folder_files.insert(0, file);
            }
        }
    }
}

/// Held from reading the store until the commits are made, by every path that
/// delivers: a reconcile that rendered what it read can then never commit
/// over a newer change made meanwhile. The functions that commit take the
/// proof of holding it, [`Delivering`], so no caller can forget it.
#[derive(Debug, Default)]
pub struct DeliveryLock(tokio::sync::Mutex<()>);

impl DeliveryLock {
    /// Waits for the lock; it is held until the returned guard is dropped.
    pub async fn lock(&self) -> Delivering<'_> {
        Delivering { _held: self.0.lock().await }
    }
}

/// Proof that the delivery lock is held.
#[derive(Debug)]
#[must_use = "the delivery lock is released when this is dropped"]
pub struct Delivering<'a> {
    _held: tokio::sync::MutexGuard<'a, ()>,
}

/// Commits the folders of `apps` (just rendered, or deleted) to every
/// cluster they touch. Returns `(cluster, commit)` for each commit made.
pub async fn deliver(
    state: &AppState,
    _held: &Delivering<'_>,
    mut desired: Desired,
    apps: &[(String, String)],
    note: &ChangeNote,
) -> Vec<(String, String)> {
    desired.seal_secrets(state).await;
    let platform = state.rendering.platform();
    let mut clusters: BTreeSet<String> = state.repos.clusters().into_iter().filter(|c| platform.has_cluster(c)).collect();
    clusters.extend(desired.write.keys().cloned());
    let change = note.to_change();
    let mut commits = Vec::new();
    for cluster in clusters {
        if let Err(e) =
            state.repos.ensure(&cluster, &Change { message: format!("create the repository of cluster {cluster}"), ..change.clone() })
        {
            tracing::error!(%cluster, error = %e, "cannot create the cluster repository");
            continue;
        }
        // Only these applications' folders are in scope: only they are read.
        let existing = match folders_of(state, &cluster, apps) {
            Ok(folders) => folders,
            Err(e) => {
                tracing::error!(%cluster, error = %e, "cannot read the cluster repository");
                continue;
            }
        };
        let updates = desired.updates(&cluster, &existing, |folder| apps.iter().any(|(ns, name)| belongs_to(folder, ns, name)));
        if updates.is_empty() {
            continue;
        }
        match state.repos.apply(&cluster, &updates, &change) {
            Ok(Some(commit)) => {
                tracing::info!(%cluster, %commit, summary = %note.summary, "committed");
                commits.push((cluster, commit));
            }
            Ok(None) => {}
            Err(e) => tracing::error!(%cluster, error = %e, "cannot commit"),
        }
    }
    commits
}

/// Brings every cluster repository in line with the store: each
/// application's current render, and no folder of an application that is
/// gone. Run at start (a crash between a store write and its commit loses
/// nothing) and after every platform change.
pub async fn reconcile_all(state: &AppState, held: &Delivering<'_>, apps: &[Resource], note: &ChangeNote) -> Vec<(String, String)> {
    reconcile(state, held, apps, note, None).await
}

/// [`reconcile_all`] for every cluster, or only for `only`.
pub async fn reconcile(
    state: &AppState,
    _held: &Delivering<'_>,
    apps: &[Resource],
    note: &ChangeNote,
    only: Option<&str>,
) -> Vec<(String, String)> {
    let mut desired = Desired::default();
    for app in apps {
        desired.add(state, app, &state.rendering.render_app(app));
    }
    desired.seal_secrets(state).await;
    let platform = state.rendering.platform();
    let mut clusters: BTreeSet<String> = state.repos.clusters().into_iter().filter(|c| platform.has_cluster(c)).collect();
    clusters.extend(platform.cluster_names());
    clusters.extend(desired.write.keys().cloned());
    clusters.retain(|c| only.is_none_or(|only| only == c));
    let change = note.to_change();
    let mut commits = Vec::new();
    for cluster in clusters {
        let created = match state
            .repos
            .ensure(&cluster, &Change { message: format!("create the repository of cluster {cluster}"), ..change.clone() })
        {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(%cluster, error = %e, "cannot create the cluster repository");
                continue;
            }
        };
        if created && only.is_some() {
            commits.push((cluster.clone(), state.repos.head(&cluster).ok().flatten().unwrap_or_default()));
        }
        let Ok(existing) = state.repos.folders(&cluster) else { continue };
        // Every folder is in scope: one whose application is gone is removed.
        let updates = desired.updates(&cluster, &existing, |_| true);
        if updates.is_empty() {
            continue;
        }
        match state.repos.apply(&cluster, &updates, &change) {
            Ok(Some(commit)) => commits.push((cluster, commit)),
            Ok(None) => {}
            Err(e) => tracing::error!(%cluster, error = %e, "cannot reconcile the repository"),
        }
    }
    commits
}

/// Wakes the agents waiting for these clusters, pushes each committed
/// cluster's repository to its mirror, if it has one, and records the
/// outcome in the Cluster's status.
pub async fn publish(state: &AppState, commits: &[(String, String)]) {
    if !commits.is_empty() {
        state.commits.send_modify(|n| *n += 1);
    }
    for (cluster, commit) in commits {
        let key = heimdall_model::ResourceKey::new("Cluster", "", cluster);
        let Ok(resource) = state.store.get(&key).await else { continue };
        let spec: Option<heimdall_model::spec::platform::ClusterSpec> = serde_json::from_value(resource.spec.clone()).ok();
        let Some(mirror) = spec.and_then(|s| s.mirror) else { continue };
        let Ok(path) = state.repos.path(cluster) else { continue };
        let pushed = tokio::process::Command::new("git")
            .arg("--git-dir")
            .arg(&path)
            .args(["push", "--quiet", "--force", "--", &mirror.url, "refs/heads/main:refs/heads/main"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .await;
        let outcome = match pushed {
            Ok(output) if output.status.success() => MirrorStatus { state: "Synced".into(), commit: commit.to_string(), message: None },
            Ok(output) => {
                // git's message names the remote URL; it carries no credentials of ours.
                let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
                tracing::warn!(%cluster, %message, "mirror push failed");
                MirrorStatus { state: "Failed".into(), commit: commit.to_string(), message: Some(message) }
            }
            Err(e) => MirrorStatus { state: "Failed".into(), commit: commit.to_string(), message: Some(format!("cannot run git: {e}")) },
        };
        let recorded =
            state.store.modify_status(crate::actors::RENDERER, &key, |_, status: &mut ClusterStatus| status.mirror = Some(outcome.clone()));
        if let Err(e) = recorded.await {
            tracing::warn!(%cluster, error = %e, "cannot record the mirror state");
        }
    }
}

/// Re-renders and delivers the applications of `namespace` after one of its
/// secrets changed; returns those that read `secret`.
pub async fn redeliver_namespace(
    state: &AppState,
    held: &Delivering<'_>,
    namespace: &str,
    secret: Option<&str>,
    note: &ChangeNote,
) -> Result<Vec<String>, heimdall_store::StoreError> {
    let mut desired = Desired::default();
    let mut apps = Vec::new();
    let mut readers = Vec::new();
    for app in crate::delivery::apps_in(state, Some(namespace)).await? {
        let (settled, render) = crate::delivery::settle(state, app).await;
        if let Ok(rendered) = &render
            && rendered.targets.iter().any(|t| t.secrets.iter().any(|s| secret.is_none_or(|name| s.name == name)))
        {
            readers.push(format!("{}/{}/{}", settled.kind, namespace, settled.metadata.name));
        }
        desired.add(state, &settled, &render);
        apps.push((namespace.to_string(), settled.metadata.name.clone()));
    }
    let commits = deliver(state, held, desired, &apps, note).await;
    publish(state, &commits).await;
    Ok(readers)
}

/// Re-seals a cluster's secrets for its agent's current key (after a join).
pub async fn reseal_cluster(state: &AppState, cluster: &str) {
    let held = state.delivery.lock().await;
    // Every rendered kind, Tenants included: a reconcile removes the folders of what it is not given.
    let apps = match crate::delivery::all_apps(state).await {
        Ok(apps) => apps,
        Err(e) => {
            tracing::error!(%cluster, error = %e, "cannot list applications to re-seal secrets");
            return;
        }
    };
    // Most joins are of clusters with no secrets yet: then there is nothing to do.
    let reads_secrets = |app: &Resource| {
        state.rendering.render_app(app).is_ok_and(|r| r.targets.iter().any(|t| t.cluster == cluster && !t.secrets.is_empty()))
    };
    if !apps.iter().any(reads_secrets) {
        return;
    }
    let note = ChangeNote {
        actor: "heimdall".into(),
        summary: format!("seal secrets for the agent of cluster {cluster}"),
        revision: state.store.revision().await.unwrap_or_default(),
        resources: Vec::new(),
    };
    let commits = reconcile(state, &held, &apps, &note, Some(cluster)).await;
    publish(state, &commits).await;
}

/// Renders `app` under the current platform and stores the status if it
/// changed. A failure to store leaves the change in place; the reconciler retries.
pub async fn settle(state: &AppState, app: Resource) -> (Resource, Result<Rendered, DocumentError>) {
    let mut result = state.rendering.render_app(&app);
    // Claims that need generated credentials get them, then render with them.
    if let Ok(rendered) = &result
        && !rendered.generate.is_empty()
    {
        match crate::secrets::generate(state, &rendered.generate).await {
            Ok(()) => result = state.rendering.render_app(&app),
            Err(e) => tracing::warn!(app = %app.key(), error = %e, "cannot generate claim credentials"),
        }
    }
    // What agents wrote into the status meanwhile (health per cluster) is kept: status_of
    // builds on the status as it is when written. A newer spec is the reconciler's to
    // render; then nothing is written here.
    let generation = app.metadata.generation;
    let written = state
        .store
        .modify_status_from(RENDERER, app.clone(), |current, status: &mut Value| {
            if current.metadata.generation == generation {
                *status = status_of(current, &result);
            }
        })
        .await;
    match written {
        Ok(settled) if settled.metadata.generation == generation => (settled, result),
        Ok(_) => (app, result),
        Err(e) => {
            tracing::warn!(app = %app.key(), error = %e, "cannot record rendered status");
            (app, result)
        }
    }
}

/// Every stored resource of a rendered kind (applications, Score workloads, tenants).
pub async fn all_apps(state: &AppState) -> Result<Vec<Resource>, StoreError> {
    apps_in(state, None).await
}

/// [`all_apps`] of one namespace (`None`: every namespace).
pub async fn apps_in(state: &AppState, namespace: Option<&str>) -> Result<Vec<Resource>, StoreError> {
    let mut apps = Vec::new();
    for kind in heimdall_model::kinds::rendered_kinds() {
        let mut continue_token = None;
        loop {
            let query = ListQuery {
                kind: kind.to_string(),
                namespace: namespace.map(String::from),
                limit: Some(500),
                continue_token,
                ..Default::default()
            };
            let page = state.store.list(&query).await?;
            apps.extend(page.items);
            continue_token = page.continue_token;
            if continue_token.is_none() {
                break;
            }
        }
    }
    Ok(apps)
}
