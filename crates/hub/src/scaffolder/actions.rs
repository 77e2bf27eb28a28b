//! The scaffolder actions that reach outside the workspace, each run as
//! the person who started the task and checked as their own API call
//! would be:
//!
//! - `publish:heimdall` creates a service repository in the hub (developer
//!   of the tenant).
//! - `catalog:register` registers a catalog file as a location. Locations
//!   are the platform team's, so a developer may register only a file of
//!   their own tenant's service repositories.
//! - `heimdall:apply` applies the workspace's manifests through admission,
//!   like `heimdall apply`.
//!
//! And where a template's files come from: the folder next to the template
//! file it was read from.

use std::path::{Path, PathBuf};

use heimdall_catalog::location::{MANAGED_BY_LOCATION, Target};
use heimdall_catalog::{Entity, EntityRef};
use heimdall_model::{ResourceKey, parse_documents};
use heimdall_scaffolder::{Actions, Sources, Template, Workspace};
use serde_json::{Value, json};

use crate::auth::{Need, Principal, require};
use crate::state::AppState;

/// The actions this module provides.
pub const HUB_ACTIONS: &[(&str, &str)] = &[
    ("publish:heimdall", "Creates a git repository in the hub (services/<tenant>/<name>.git) with the workspace's files."),
    ("catalog:register", "Registers a catalog-info file (of a repository the hub holds, for developers) as a catalog location."),
    ("heimdall:apply", "Applies the workspace's Heimdall manifests (an Application, say) as `heimdall apply` does."),
];

/// Files a template may fetch: at most this many, this many bytes in all.
const MAX_SOURCE_FILES: usize = 2000;
const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;

/// The hub's URL of a service repository.
pub fn repository_url(state: &AppState, tenant: &str, name: &str) -> String {
    format!("{}/git/services/{tenant}/{name}.git", state.public_url.trim_end_matches('/'))
}

/// The fetch steps' literal `url`s, read from the folder of the template's file.
pub fn sources_of(entity: &Entity, template: &Template) -> Result<Sources, String> {
    let mut sources = Sources::new();
    let Some(location) = entity.metadata.annotations.get(MANAGED_BY_LOCATION) else { return Ok(sources) };
    let base = match location.strip_prefix("file:") {
        Some(path) => Target::File(path.to_string()),
        // Files next to a template read from a URL would need a listing of that folder, which plain HTTP lacks.
        None => return Ok(sources),
    };
    let mut total = (0usize, 0u64);
    for step in &template.steps {
        if !matches!(step.action.as_str(), "fetch:template" | "fetch:plain") {
            continue;
        }
        let Some(url) = step.input.get("url").and_then(Value::as_str) else { continue };
        if url.contains("${{") || url.contains("://") || sources.contains_key(url) {
            continue;
        }
        let Target::File(folder) = base.resolve(url.trim_end_matches('/'))? else { continue };
        let mut files = Workspace::new();
        read_folder(Path::new(&folder), Path::new(&folder), &mut files, &mut total)
            .map_err(|e| format!("spec.steps[{}].input.url: cannot read {url} next to the template: {e}", step.id))?;
        sources.insert(url.to_string(), files);
    }
    Ok(sources)
}

fn read_folder(root: &Path, dir: &Path, files: &mut Workspace, total: &mut (usize, u64)) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        // Links could point anywhere on the hub's disk: never followed.
        let metadata = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if metadata.is_dir() {
            read_folder(root, &path, files, total)?;
        } else if metadata.is_file() {
            total.0 += 1;
            total.1 += metadata.len();
            if total.0 > MAX_SOURCE_FILES || total.1 > MAX_SOURCE_BYTES {
                return Err(format!("more than {MAX_SOURCE_FILES} files or {MAX_SOURCE_BYTES} bytes"));
            }
            let relative = path.strip_prefix(root).map_err(|e| e.to_string())?.to_string_lossy().replace('\\', "/");
            files.insert(relative, std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    Ok(())
}

/// The files under `folder` (`./skeleton`, `skeleton/`; `.` or empty: all), relative to it.
fn under(files: &Workspace, folder: &str) -> Workspace {
    let folder = folder.trim_start_matches("./").trim_matches('/');
    files
        .iter()
        .filter_map(|(path, content)| {
            let path = path.trim_start_matches("./");
            let inner = if folder.is_empty() || folder == "." { Some(path) } else { path.strip_prefix(folder)?.strip_prefix('/') };
            inner.map(|inner| (inner.to_string(), content.clone()))
        })
        .collect()
}

/// Sources from a dry run's `directoryContents` (the template's folder, as Backstage's editor sends it).
pub fn sources_from_contents(template: &Template, contents: &Workspace) -> Sources {
    template
        .steps
        .iter()
        .filter_map(|step| step.input.get("url").and_then(Value::as_str))
        .map(|url| (url.to_string(), under(contents, url)))
        .collect()
}

/// The actions of one task, run as `principal`.
pub struct HubActions {
    pub state: AppState,
    pub principal: Principal,
    /// What this task made, to be undone if a later step fails.
    made: parking_lot::Mutex<Vec<Made>>,
}

#[derive(Debug, Clone)]
enum Made {
    Repository { tenant: String, name: String },
    Location(String),
}

fn input_text<'a>(input: &'a Value, field: &str) -> Result<&'a str, String> {
    input.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| format!("input.{field}: expected a string"))
}

/// A tenant from `group:default/shop`, `shop` or `group:shop`.
fn tenant_of(owner: &str) -> &str {
    owner.rsplit(['/', ':']).next().unwrap_or(owner)
}

impl HubActions {
    pub fn new(state: AppState, principal: Principal) -> HubActions {
        HubActions { state, principal, made: Default::default() }
    }

    fn made(&self, made: Made) {
        self.made.lock().push(made);
    }

    /// Undoes what the task made, newest first, so a failed task leaves no
    /// repository or catalog location behind; returns a line per undo.
    pub async fn undo(&self) -> Vec<String> {
        let made: Vec<Made> = std::mem::take(&mut *self.made.lock());
        let mut lines = Vec::new();
        for item in made.into_iter().rev() {
            match item {
                Made::Location(name) => {
                    let key = ResourceKey::new(crate::catalog::locations::LOCATION_KIND, "", &name);
                    let system = Principal::system(&self.principal.name);
                    match crate::admission::delete(&self.state, &system, &key, None).await {
                        Ok(_) => {
                            self.state.catalog.write(|catalog| catalog.remove_source(&crate::catalog::locations::source(&name)));
                            if let Err(e) = crate::catalog::sync_all(&self.state).await {
                                tracing::warn!(error = %e, "catalog resync after undo failed");
                            }
                            lines.push(format!("undone: catalog location {name} removed"));
                        }
                        Err(e) => lines.push(format!("could not remove catalog location {name}: {}", e.report())),
                    }
                }
                Made::Repository { tenant, name } => {
                    let services = self.state.services.clone();
                    let (t, n) = (tenant.clone(), name.clone());
                    match tokio::task::spawn_blocking(move || services.remove(&t, &n)).await {
                        Ok(Ok(())) => lines.push(format!("undone: repository {tenant}/{name} removed")),
                        Ok(Err(e)) => lines.push(format!("could not remove repository {tenant}/{name}: {e}")),
                        Err(e) => lines.push(format!("could not remove repository {tenant}/{name}: {e}")),
                    }
                }
            }
        }
        lines
    }

    async fn publish(&self, input: &Value, workspace: &Workspace) -> Result<Value, String> {
        let tenant = tenant_of(
            input
                .get("tenant")
                .or_else(|| input.get("owner"))
                .and_then(Value::as_str)
                .ok_or("input.tenant: expected the tenant that owns the repository (or input.owner: group:default/<tenant>)")?,
        )
        .to_string();
        let name = input_text(input, "repoName").or_else(|_| input_text(input, "name"))?.to_string();
        require(&self.principal, &Need::publish_repository(&tenant)).map_err(|e| e.message)?;
        match self.state.store.get(&ResourceKey::new("Tenant", "", &tenant)).await {
            Ok(_) => {}
            Err(heimdall_store::StoreError::NotFound { .. }) => return Err(format!("input.tenant: no tenant {tenant:?}")),
            Err(e) => return Err(format!("cannot read tenant {tenant}: {}", store_failure(e))),
        }
        let files = under(workspace, input.get("sourcePath").and_then(Value::as_str).unwrap_or(""));
        let description = input.get("description").and_then(Value::as_str).unwrap_or("created from a template");
        let change = heimdall_gitops::Change {
            author: crate::delivery::author(&self.principal.name),
            message: format!("Initial commit: {description}"),
            trailers: vec![("Created-By".into(), "heimdall scaffolder".into())],
        };
        let services = self.state.services.clone();
        let (tenant_c, name_c) = (tenant.clone(), name.clone());
        let commit = tokio::task::spawn_blocking(move || services.create(&tenant_c, &name_c, &files, &change))
            .await
            .map_err(|e| format!("publishing stopped: {e}"))?
            .map_err(|e| e.to_string())?;
        tracing::info!(%tenant, repository = %name, actor = %self.principal.name, "service repository created");
        self.made(Made::Repository { tenant: tenant.clone(), name: name.clone() });
        let remote = repository_url(&self.state, &tenant, &name);
        Ok(json!({"remoteUrl": remote, "repoContentsUrl": format!("{remote}/raw/"), "commitHash": commit}))
    }

    async fn register(&self, input: &Value) -> Result<Value, String> {
        let url = match input.get("catalogInfoUrl").and_then(Value::as_str) {
            Some(url) => url.to_string(),
            None => {
                let contents = input_text(input, "repoContentsUrl")?;
                let path = input.get("catalogInfoPath").and_then(Value::as_str).unwrap_or("/catalog-info.yaml");
                format!("{}/{}", contents.trim_end_matches('/'), path.trim_start_matches('/'))
            }
        };
        let target = Target::new("url", &url)?;
        let name: String = match crate::catalog::locations::parse_repository_file_url(&self.state, &url) {
            Some((tenant, repo, _)) => {
                require(&self.principal, &Need::register_tenant_location(tenant)).map_err(|e| e.message)?;
                format!("{tenant}-{repo}")
            }
            None => {
                require(&self.principal, &Need::register_external_location())
                    .map_err(|e| format!("{}; developers register catalog files of their tenant's repositories in this hub", e.message))?;
                format!("url-{}", &heimdall_store::generate_token()[4..16].to_ascii_lowercase())
            }
        };
        let document = heimdall_model::Document {
            source: "catalog:register".into(),
            value: json!({"apiVersion": heimdall_model::spec::platform::GROUP_VERSION, "kind": crate::catalog::locations::LOCATION_KIND,
                "metadata": {"name": name}, "spec": {"type": "url", "target": url}}),
        };
        // The check above is the person's; the location is written for them, under their name.
        let acting = self.principal.on_behalf_of();
        crate::admission::apply_documents(&self.state, &acting, vec![document], &Default::default()).await.map_err(|e| e.report())?;
        self.made(Made::Location(name.clone()));
        let location =
            self.state.store.get(&ResourceKey::new(crate::catalog::locations::LOCATION_KIND, "", &name)).await.map_err(store_failure)?;
        let read = crate::catalog::locations::ingest(&self.state, &location).await.map_err(store_failure)?;
        if let Some(error) = read.errors.first() {
            return Err(format!("{target}: {} {}: {}", error.document, error.path, error.message));
        }
        let entity = read.entities.iter().find(|e| e.kind == "Component").or(read.entities.first()).map(Entity::entity_ref);
        Ok(json!({"entityRef": entity.as_ref().map(EntityRef::to_string), "catalogInfoUrl": url}))
    }

    async fn apply(&self, input: &Value, workspace: &Workspace) -> Result<Value, String> {
        let folder = input.get("path").and_then(Value::as_str).unwrap_or(".heimdall").trim_matches('/').trim_start_matches("./");
        let mut documents = Vec::new();
        for (path, content) in workspace {
            let inside = folder.is_empty() || folder == "." || path.starts_with(&format!("{folder}/"));
            if !inside || !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            let text = std::str::from_utf8(content).map_err(|_| format!("{path} is not UTF-8 text"))?;
            documents.extend(parse_documents(text, path).map_err(|e| e.to_string())?);
        }
        if documents.is_empty() {
            return Err(format!("input.path: no .yaml manifests under {folder:?} in the workspace"));
        }
        // A template makes new things: it never replaces what someone already runs.
        for document in &documents {
            let Ok(decoded) = heimdall_model::decode(&document.value, &document.source, "default") else { continue };
            let key = decoded.resource.key();
            match self.state.store.get(&key).await {
                Ok(_) => {
                    let at = if key.namespace.is_empty() { key.name.clone() } else { format!("{}/{}", key.namespace, key.name) };
                    return Err(format!("{}: {} {at} exists; a template only creates (choose another name)", document.source, key.kind));
                }
                Err(heimdall_store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(store_failure(e)),
            }
        }
        let response = crate::admission::apply_documents(&self.state, &self.principal, documents, &Default::default())
            .await
            .map_err(|e| e.report())?;
        let applied: Vec<String> = response
            .results
            .iter()
            .map(|r| match &r.namespace {
                Some(namespace) => format!("{}/{namespace}/{}", r.kind, r.name),
                None => format!("{}/{}", r.kind, r.name),
            })
            .collect();
        Ok(json!({"applied": applied}))
    }
}

/// A store failure as the task's log says it: the hub's own failures are
/// logged and not described.
fn store_failure(error: heimdall_store::StoreError) -> String {
    crate::rejection::Rejection::Store(error).report()
}

impl Actions for HubActions {
    fn provides(&self, action: &str) -> bool {
        HUB_ACTIONS.iter().any(|(id, _)| *id == action)
    }

    async fn run(&self, action: &str, input: &Value, workspace: &Workspace) -> Result<Value, String> {
        match action {
            "publish:heimdall" => self.publish(input, workspace).await,
            "catalog:register" => self.register(input).await,
            "heimdall:apply" => self.apply(input, workspace).await,
            other => Err(format!("action {other} is not provided by the hub")),
        }
    }
}
