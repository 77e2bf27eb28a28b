//! Locations the platform team registers (`CatalogLocation`, or Backstage's
//! `POST /api/catalog/locations`): each is read (a URL or a file on the
//! hub), the files its Location entities name are followed, and what it
//! provides replaces what it provided before, so entities dropped from a
//! file become orphans. Problems are recorded on the location's status, one
//! per document, never swallowed. Every replica reads locations itself, at
//! start, when one changes, on demand and every five minutes.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use heimdall_catalog::location::{LocationError, Target, read_file};
use heimdall_catalog::{Entity, EntityRef};
use heimdall_model::{Resource, ResourceKey};
use heimdall_store::{ApplyMode, ListQuery, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::actors::CATALOG_ACTOR;
use crate::auth::Principal;
use crate::state::AppState;

pub const LOCATION_KIND: &str = "CatalogLocation";
/// Locations are read again this often.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// A refresh someone asks for reads a location at most this often.
const REFRESH_AT_MOST: Duration = Duration::from_secs(10);
/// At most this many files per location (Location entities naming each other).
const MAX_FILES: usize = 200;
/// At most this many bytes per file.
const MAX_BYTES: usize = 1024 * 1024;

pub fn source(name: &str) -> String {
    format!("location:{name}")
}

fn target_of(resource: &Resource) -> Result<Target, String> {
    let text = |field: &str| resource.spec.get(field).and_then(Value::as_str).unwrap_or_default().to_string();
    Target::new(&text("type"), &text("target"))
}

async fn fetch(state: &AppState, http: &Fetchers, target: &Target) -> Result<String, String> {
    let bytes = match target {
        // Files of the hub's own service repositories are read from disk, not over HTTP with a token.
        Target::Url(url) if let Some((tenant, repo, file)) = parse_repository_file_url(state, url) => {
            let (services, tenant, repo, file) = (state.services.clone(), tenant.to_string(), repo.to_string(), file.to_string());
            match tokio::task::spawn_blocking(move || services.read_file(&tenant, &repo, &file)).await {
                Ok(Ok(Some(bytes))) if bytes.len() <= MAX_BYTES => bytes,
                Ok(Ok(Some(bytes))) => return Err(format!("{url} is {} bytes; at most {MAX_BYTES}", bytes.len())),
                Ok(Ok(None)) => return Err(format!("{url}: no such repository or file")),
                Ok(Err(e)) => return Err(format!("{url}: {e}")),
                Err(e) => return Err(format!("{url}: {e}")),
            }
        }
        Target::File(path) => {
            let metadata = tokio::fs::metadata(path).await.map_err(|e| format!("cannot read {path}: {e}"))?;
            if metadata.len() as usize > MAX_BYTES {
                return Err(format!("{path} is {} bytes; at most {MAX_BYTES}", metadata.len()));
            }
            tokio::fs::read(path).await.map_err(|e| format!("cannot read {path}: {e}"))?
        }
        Target::Url(url) => {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
            // The allowed hosts are the root's: a file read there may not name another internal host.
            let (policy, client) = if parsed.host_str() == http.root_host.as_deref() {
                (state.fetch.as_ref().clone(), &http.root)
            } else {
                (state.fetch.without_allowed_hosts(), &http.elsewhere)
            };
            policy.check_url(&parsed)?;
            // The error names the URL and what failed, never what was answered.
            let response = client.get(parsed).send().await.map_err(|e| format!("cannot fetch {url}: {}", fetch_error(&e)))?;
            if !response.status().is_success() {
                return Err(format!("{url} answered {}", response.status()));
            }
            let bytes = response.bytes().await.map_err(|e| format!("cannot fetch {url}: {}", fetch_error(&e)))?;
            if bytes.len() > MAX_BYTES {
                return Err(format!("{url} is {} bytes; at most {MAX_BYTES}", bytes.len()));
            }
            bytes.to_vec()
        }
    };
    String::from_utf8(bytes).map_err(|_| format!("{target} is not UTF-8 text"))
}

/// Why a fetch failed, in words that hold nothing the server sent.
fn fetch_error(error: &reqwest::Error) -> String {
    use std::error::Error;
    let mut cause: Option<&dyn Error> = Some(error);
    let mut deepest = error.to_string();
    while let Some(current) = cause {
        deepest = current.to_string();
        cause = current.source();
    }
    if error.is_timeout() { "timed out".to_string() } else { deepest }
}

/// The tenant a location belongs to: one read from a tenant's service
/// repository in this hub. Such a location may name files of that tenant's
/// repositories only, and provide no Templates (those run with the hub's
/// actions for anyone who picks them: they are the platform team's).
fn tenant_of(state: &AppState, target: &Target) -> Option<String> {
    match target {
        Target::Url(url) => parse_repository_file_url(state, url).map(|(tenant, _, _)| tenant.to_string()),
        Target::File(_) => None,
    }
}

/// The clients one location is read with: its root's host may be one the
/// platform allows; anywhere else only the public internet.
struct Fetchers {
    root_host: Option<String>,
    root: reqwest::Client,
    elsewhere: reqwest::Client,
}

/// What reading a location found.
#[derive(Debug, Default)]
pub struct Read {
    pub entities: Vec<Entity>,
    pub errors: Vec<LocationError>,
    pub files: usize,
}

/// Reads a location and every file its Location entities name (each once).
pub async fn read(state: &AppState, root: Target) -> Read {
    let root_host = match &root {
        Target::Url(url) => reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(String::from)),
        Target::File(_) => None,
    };
    let http = Fetchers {
        root_host,
        root: state.fetch.client(Duration::from_secs(10)),
        elsewhere: std::sync::Arc::new(state.fetch.without_allowed_hosts()).client(Duration::from_secs(10)),
    };
    let owner = tenant_of(state, &root);
    let mut found = Read::default();
    let mut seen = BTreeSet::new();
    let mut pending = VecDeque::from([root]);
    while let Some(target) = pending.pop_front() {
        if !seen.insert(target.clone()) {
            continue;
        }
        if found.files == MAX_FILES {
            found.errors.push(LocationError {
                document: target.to_string(),
                path: String::new(),
                message: format!("not read: a location reads at most {MAX_FILES} files"),
            });
            break;
        }
        if let Some(tenant) = &owner
            && tenant_of(state, &target).as_ref() != Some(tenant)
        {
            found.errors.push(LocationError {
                document: target.to_string(),
                path: "spec.targets".into(),
                message: format!(
                    "not read: a catalog file of tenant {tenant}'s repositories may name only files of its repositories in this hub"
                ),
            });
            continue;
        }
        found.files += 1;
        match fetch(state, &http, &target).await {
            Ok(text) => {
                let contents = read_file(&target, &text);
                for entity in contents.entities {
                    // Kinds compare as Backstage compares them: without case.
                    if owner.is_some() && entity.kind.eq_ignore_ascii_case("Template") {
                        found.errors.push(LocationError {
                            document: format!("{target}, {}", entity.entity_ref()),
                            path: "kind".into(),
                            message: "a tenant's repository may not provide software templates: they are the platform team's".into(),
                        });
                    } else {
                        found.entities.push(entity);
                    }
                }
                found.errors.extend(contents.errors);
                pending.extend(contents.targets);
            }
            Err(message) => found.errors.push(LocationError { document: target.to_string(), path: String::new(), message }),
        }
    }
    found
}

/// Reads a registered location into the catalog and records what happened on its status.
pub async fn ingest(state: &AppState, location: &Resource) -> Result<Read, StoreError> {
    let name = &location.metadata.name;
    let mut found = match target_of(location) {
        Ok(target) => read(state, target).await,
        Err(message) => Read { errors: vec![LocationError { document: name.clone(), path: "spec".into(), message }], ..Default::default() },
    };
    let change = state.catalog.write(|catalog| catalog.replace_source(&source(name), found.entities.clone()));
    for (entity, owner) in &change.conflicts {
        found.errors.push(LocationError {
            document: entity.to_string(),
            path: String::new(),
            message: format!("{entity} is already provided by {owner}; not replaced"),
        });
    }
    let read = [
        ("entities", json!(found.entities.len() - change.conflicts.len())),
        ("files", json!(found.files)),
        ("errors", json!(found.errors.iter().take(50).collect::<Vec<_>>())),
    ];
    // Only a change is written: a refresh that finds the same is not an audit event.
    let key = location.key();
    let recorded = state.store.modify_status(CATALOG_ACTOR, &key, |_, status: &mut serde_json::Map<String, Value>| {
        status.extend(read.iter().map(|(field, value)| (field.to_string(), value.clone())));
    });
    match recorded.await {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    tracing::info!(location = %name, entities = found.entities.len(), errors = found.errors.len(), "catalog location read");
    Ok(found)
}

/// Reads every registered location.
pub async fn refresh_all(state: &AppState) -> Result<(), StoreError> {
    let locations = state.store.list(&ListQuery { kind: LOCATION_KIND.into(), ..Default::default() }).await?.items;
    for location in &locations {
        if let Err(e) = ingest(state, location).await {
            tracing::warn!(location = %location.metadata.name, error = %e, "cannot read catalog location");
        }
    }
    Ok(())
}

/// Reads every location again every [`REFRESH_INTERVAL`].
pub async fn refresh_every_interval(state: AppState) {
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = refresh_all(&state).await {
            tracing::warn!(error = %e, "cannot refresh catalog locations");
        }
    }
}

/// Why a location was not registered, removed or read.
#[derive(Debug, thiserror::Error)]
pub enum LocationsError {
    #[error("no location {0}")]
    NoLocation(String),
    #[error("no entity {0}")]
    NoEntity(String),
    #[error("location {target} is already registered as {name}")]
    AlreadyRegistered { target: String, name: String },
    /// A field of the request (`target`, `entityRef`).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Denied(#[from] crate::auth::Denied),
    #[error(transparent)]
    Rejected(#[from] crate::rejection::Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored location by its id.
pub async fn location(state: &AppState, id: &str) -> Result<Resource, LocationsError> {
    match state.store.get(&ResourceKey::new(LOCATION_KIND, "", id)).await {
        Ok(resource) => Ok(resource),
        Err(StoreError::NotFound { .. }) => Err(LocationsError::NoLocation(id.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Every registered location.
pub async fn all(state: &AppState) -> Result<Vec<Resource>, StoreError> {
    Ok(state.store.list(&ListQuery { kind: LOCATION_KIND.into(), ..Default::default() }).await?.items)
}

/// What registering a location made (or, as a dry run, would make).
pub struct Registered {
    pub location: Resource,
    pub entities: Vec<Entity>,
    pub exists: bool,
}

/// Registers a location as a `CatalogLocation` (so it is in the audit trail
/// and the store) and reads it; a dry run only reads it.
pub async fn register(
    state: &AppState,
    principal: &Principal,
    type_: &str,
    target: &str,
    dry_run: bool,
) -> Result<Registered, LocationsError> {
    let target = Target::new(type_, target).map_err(|message| LocationsError::Invalid { field: "target", message })?;
    let digest = Sha256::digest(target.to_string().as_bytes());
    let name = format!("location-{}", &digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..16]);
    let document = json!({
        "apiVersion": heimdall_model::spec::platform::GROUP_VERSION, "kind": LOCATION_KIND,
        "metadata": {"name": name}, "spec": {"type": target.type_(), "target": target.target()},
    });
    let resource =
        heimdall_model::decode(&document, "location", "default").map_err(|e| crate::rejection::Rejection::Invalid(vec![e]))?.resource;
    // Who may register is decided before anything is said about what is registered.
    crate::auth::require(principal, &crate::auth::document_need(&resource.key()))?;
    let exists = location(state, &name).await.is_ok();
    if dry_run {
        let found = read(state, target).await;
        return Ok(Registered { location: resource, entities: found.entities, exists });
    }
    if exists {
        return Err(LocationsError::AlreadyRegistered { target: target.to_string(), name });
    }
    let written =
        crate::admission::write(state, principal, "register", vec![("location".into(), resource.clone())], ApplyMode::Create, false)
            .await?;
    let stored = written
        .into_iter()
        .next()
        .map(|w| w.resource)
        .ok_or_else(|| StoreError::Corrupt(format!("writing location {name} returned nothing")))?;
    let found = ingest(state, &stored).await?;
    Ok(Registered { location: stored, entities: found.entities, exists: false })
}

/// Removes a location and the entities it provided.
pub async fn unregister(state: &AppState, principal: &Principal, id: &str) -> Result<(), LocationsError> {
    crate::admission::delete(state, principal, &ResourceKey::new(LOCATION_KIND, "", id), None).await?;
    state.catalog.write(|catalog| catalog.remove_source(&source(id)));
    super::sync_all(state).await?;
    Ok(())
}

/// Reads an entity's source again now. Anyone may ask; a location is read
/// at most once per [`REFRESH_AT_MOST`] however often they do.
pub async fn refresh_entity(state: &AppState, entity_ref: &str) -> Result<(), LocationsError> {
    let reference =
        EntityRef::parse(entity_ref, None, "default").map_err(|message| LocationsError::Invalid { field: "entityRef", message })?;
    let source = state.catalog.read(|catalog| catalog.source_of(&reference).map(String::from));
    let Some(source) = source else { return Err(LocationsError::NoEntity(reference.to_string())) };
    if let Some(name) = source.strip_prefix("location:") {
        let due = {
            let mut reads = state.location_reads.lock();
            let due = reads.get(name).is_none_or(|at| at.elapsed() >= REFRESH_AT_MOST);
            if due {
                reads.insert(name.to_string(), std::time::Instant::now());
            }
            due
        };
        if due {
            ingest(state, &location(state, name).await?).await?;
        }
    } else {
        super::sync_all(state).await?;
    }
    Ok(())
}

/// `(tenant, repository, file)` of a URL that names a file of one of the hub's service repositories.
pub fn parse_repository_file_url<'a>(state: &AppState, url: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let prefix = format!("{}/git/services/", state.public_url.trim_end_matches('/'));
    let rest = url.strip_prefix(&prefix)?;
    let (tenant, rest) = rest.split_once('/')?;
    let (repo, file) = rest.split_once(".git/raw/")?;
    Some((tenant, repo, file))
}
