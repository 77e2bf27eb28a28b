//! The software catalog in the hub: the platform's own resources as
//! Backstage entities (each Tenant a Group, each person and identity-provider
//! group seen at sign-in a User or Group, each Application and Score
//! workload a Component owned by its tenant and linked to it by the
//! `heimdall.dev/application` annotation), kept current from the event log,
//! for Backstage's catalog REST API (`api::catalog`) to serve.

pub mod locations;

use std::sync::Arc;

use parking_lot::RwLock;

use futures::StreamExt;
use heimdall_catalog::{Catalog, Entity, validate};
use heimdall_model::Resource;
use heimdall_store::{ListQuery, StoreError, WatchEventType, WatchFilter};
use serde_json::{Value, json};

use crate::identity::resource_name;
use crate::state::AppState;

/// The annotation linking a catalog Component to the Heimdall application it is.
pub const APPLICATION_ANNOTATION: &str = "heimdall.dev/application";

/// `(kind, namespace, name)` of the resource an entity's [`APPLICATION_ANNOTATION`] names.
pub fn application_of(entity: &Entity) -> Option<(&str, &str, &str)> {
    let mut parts = entity.metadata.annotations.get(APPLICATION_ANNOTATION)?.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}
/// Kinds of the store that become catalog entities.
const SOURCE_KINDS: &[&str] = &["Tenant", "Application", "Workload", "User", "Group"];

/// The catalog shared by the API handlers and the follower that keeps it current.
#[derive(Debug, Default, Clone)]
pub struct SoftwareCatalog(Arc<RwLock<Catalog>>);

impl SoftwareCatalog {
    pub fn read<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        read(&self.0.read())
    }

    pub(crate) fn write<T>(&self, write: impl FnOnce(&mut Catalog) -> T) -> T {
        write(&mut self.0.write())
    }
}

/// The catalog source of a stored resource: `heimdall:Application/shop/web`.
fn source_of(resource: &Resource) -> String {
    format!(
        "{}heimdall:{}/{}/{}",
        heimdall_catalog::catalog::GENERATED_SOURCE_PREFIX,
        resource.kind,
        resource.metadata.namespace.as_deref().unwrap_or_default(),
        resource.metadata.name
    )
}

fn text(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(String::from)
}

/// The entity a stored resource is in the catalog, if it is one.
pub fn entity_of(resource: &Resource) -> Option<Value> {
    let name = &resource.metadata.name;
    let spec = &resource.spec;
    let mut document = match resource.kind.as_str() {
        "Tenant" => {
            let members = spec.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
            let of_kind = |kind: &str| -> Vec<String> {
                members
                    .iter()
                    .filter(|m| m.get("kind").and_then(Value::as_str) == Some(kind))
                    .filter_map(|m| m.get("name").and_then(Value::as_str))
                    .map(|n| format!("{}:default/{}", kind.to_ascii_lowercase(), resource_name(n)))
                    .collect()
            };
            json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                "metadata": {"name": name, "title": text(spec, "displayName"), "description": text(spec, "description")},
                "spec": {"type": "team", "profile": {"displayName": text(spec, "displayName")}, "children": of_kind("Group"), "members": of_kind("User")}})
        }
        "User" => json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": name},
            "spec": {"profile": {"displayName": text(spec, "displayName"), "email": text(spec, "email")},
                "memberOf": spec.get("memberOf").and_then(Value::as_array).map(|groups| groups.iter().filter_map(Value::as_str).map(resource_name).collect::<Vec<_>>()).unwrap_or_default()}}),
        "Group" => json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": name, "title": text(spec, "group")}, "spec": {"type": "identity-provider-group", "children": []}}),
        "Application" | "Workload" => {
            let namespace = resource.metadata.namespace.clone().unwrap_or_else(|| "default".into());
            let annotations = &resource.metadata.annotations;
            let mut entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": name, "namespace": namespace,
                    "description": annotations.get("description").cloned(),
                    "annotations": {APPLICATION_ANNOTATION: format!("{}/{namespace}/{name}", resource.kind)},
                    "labels": resource.metadata.labels},
                "spec": {"type": "service", "lifecycle": "production", "owner": format!("group:default/{namespace}")}});
            if let Some(system) = resource.metadata.labels.get("app.kubernetes.io/part-of") {
                entity["spec"]["system"] = json!(system);
            }
            entity
        }
        _ => return None,
    };
    strip_nulls(&mut document);
    Some(document)
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Puts a stored resource's entity in the catalog (or takes it out).
fn sync_resource(catalog: &mut Catalog, resource: &Resource) {
    let source = source_of(resource);
    match entity_of(resource).map(|document| validate(&document)) {
        Some(Ok(entity)) => {
            catalog.replace_source(&source, vec![entity]);
        }
        Some(Err(problems)) => {
            tracing::warn!(%source, problems = ?problems, "resource does not make a valid catalog entity");
            catalog.remove_source(&source);
        }
        None => {
            catalog.remove_source(&source);
        }
    }
}

/// Loads every platform entity into the catalog.
pub async fn sync_all(state: &AppState) -> Result<(), StoreError> {
    let mut resources = Vec::new();
    for kind in SOURCE_KINDS {
        resources.extend(state.store.list(&ListQuery { kind: kind.to_string(), ..Default::default() }).await?.items);
    }
    state.catalog.write(|catalog| {
        for resource in &resources {
            sync_resource(catalog, resource);
        }
    });
    Ok(())
}

/// Keeps the catalog current with the store until the store fails.
pub async fn follow(state: AppState) {
    loop {
        let result: Result<(), StoreError> = async {
            let from = state.store.revision().await?;
            sync_all(&state).await?;
            locations::refresh_all(&state).await?;
            let mut events = Box::pin(state.store.watch(WatchFilter::default(), from));
            let mut read_generations: std::collections::HashMap<String, i64> = state
                .store
                .list(&ListQuery { kind: locations::LOCATION_KIND.into(), ..Default::default() })
                .await?
                .items
                .into_iter()
                .map(|l| (l.metadata.name, l.metadata.generation.unwrap_or_default()))
                .collect();
            while let Some(event) = events.next().await {
                let event = event?;
                if event.object.kind == locations::LOCATION_KIND {
                    let name = event.object.metadata.name.clone();
                    match event.type_ {
                        WatchEventType::Deleted => {
                            read_generations.remove(&name);
                            state.catalog.write(|catalog| catalog.remove_source(&locations::source(&name)));
                            // Entities made from Applications come back where the location's replaced them.
                            sync_all(&state).await?;
                        }
                        // A status update (same generation) is the result of a read; reading again would loop.
                        _ if read_generations.get(&name) == event.object.metadata.generation.as_ref() => {}
                        _ => {
                            read_generations.insert(name.clone(), event.object.metadata.generation.unwrap_or_default());
                            let (state, location) = (state.clone(), event.object.clone());
                            tokio::spawn(async move {
                                if let Err(e) = locations::ingest(&state, &location).await {
                                    tracing::warn!(location = %name, error = %e, "cannot read catalog location");
                                }
                            });
                        }
                    }
                    continue;
                }
                if !SOURCE_KINDS.contains(&event.object.kind.as_str()) {
                    continue;
                }
                state.catalog.write(|catalog| match event.type_ {
                    WatchEventType::Deleted => {
                        catalog.remove_source(&source_of(&event.object));
                    }
                    _ => sync_resource(catalog, &event.object),
                });
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "catalog follower failed; restarting");
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
