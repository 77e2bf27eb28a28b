//! The one way a change gets in: admit it (it renders, policies allow it),
//! store it, record each application's rendered status, and deliver the
//! result to the cluster repositories as one commit per cluster.

use std::collections::HashMap;

use heimdall_api::resources::{ApplyOptions, ApplyResponse, ApplyResult};
use heimdall_model::status::{self, AppStatus, Approvals};
use heimdall_model::{Document, DocumentError, Problem, Resource, ResourceKey};
use heimdall_store::{ApplyMode, ApplyOutcome, WriteResult};
use serde_json::Value;

use crate::auth::Principal;
use crate::delivery::settle;
use crate::delivery::{self, ChangeNote, Desired};
use heimdall_api::ErrorDetail;

use crate::rejection::Rejection;
use crate::rendering::{approvals, is_app_kind, is_platform_kind, status_of};
use crate::state::AppState;

fn describe(kind: &str, key: &ResourceKey) -> String {
    let kind = heimdall_model::kinds::by_kind(kind).map_or(kind.to_ascii_lowercase(), |k| k.singular.to_string());
    if key.namespace.is_empty() { format!("{kind} {}", key.name) } else { format!("{kind} {}/{}", key.namespace, key.name) }
}

/// `apply application shop/web`, or `apply 3 resources: ...` for a batch.
fn summary(verb: &str, keys: &[ResourceKey]) -> String {
    match keys {
        [one] => format!("{verb} {}", describe(&one.kind, one)),
        many => {
            let mut names: Vec<String> = many.iter().take(5).map(|k| describe(&k.kind, k)).collect();
            if many.len() > 5 {
                names.push(format!("and {} more", many.len() - 5));
            }
            format!("{verb} {} resources: {}", many.len(), names.join(", "))
        }
    }
}

/// Writes `batch` all-or-nothing (or previews it) after admission. `verb`
/// names the change in commit messages (`apply`, `create`, `rollback`...).
pub async fn write(
    state: &AppState,
    principal: &Principal,
    verb: &str,
    batch: Vec<(String, Resource)>,
    mode: ApplyMode,
    dry_run: bool,
) -> Result<Vec<WriteResult>, Rejection> {
    for (source, resource) in &batch {
        if crate::secrets::is_secret(resource) {
            return Err(Rejection::invalid_field(
                "kind",
                "a Secret's values are set one key at a time: heimdall secret set NAMESPACE/NAME KEY (PUT /api/v1/namespaces/{namespace}/secrets/{name}/keys/{key})",
            )
            .in_document(source));
        }
    }
    crate::auth::authorize_documents(state, principal, &batch).await?;
    let actor = principal.name.as_str();
    let held = if dry_run { None } else { Some(state.delivery.lock().await) };
    let candidate = state.rendering.admit(&state.store, &batch, principal).await?;
    let (sources, resources): (Vec<String>, Vec<Resource>) = batch.into_iter().unzip();
    let written =
        if dry_run { state.store.preview_all(actor, resources, mode).await } else { state.store.write_all(actor, resources, mode).await };
    let written =
        written.map_err(|(index, source)| Rejection::Write { document: sources.get(index).cloned().unwrap_or_default(), source })?;
    let Some(held) = held else { return Ok(written) };
    let platform_changed = written.iter().any(|w| is_platform_kind(&w.resource.kind) && w.outcome != ApplyOutcome::Unchanged);
    if let (true, Some(platform)) = (platform_changed, candidate) {
        state.rendering.install(platform);
    }
    let changed: Vec<&WriteResult> = written.iter().filter(|w| w.outcome != ApplyOutcome::Unchanged).collect();
    // A new cluster gets its repository at once, before anything targets it.
    for cluster in changed.iter().filter(|w| w.resource.kind == "Cluster" && w.outcome == ApplyOutcome::Created) {
        let name = &cluster.resource.metadata.name;
        let change = ChangeNote {
            actor: actor.to_string(),
            summary: format!("create the repository of cluster {name}"),
            revision: cluster.resource.resource_version().unwrap_or_default(),
            resources: Vec::new(),
        }
        .to_change();
        if let Err(e) = state.repos.ensure(name, &change) {
            tracing::error!(cluster = %name, error = %e, "cannot create the cluster repository");
        }
    }
    let note = ChangeNote {
        actor: actor.to_string(),
        summary: summary(verb, &changed.iter().map(|w| w.resource.key()).collect::<Vec<_>>()),
        revision: changed.iter().filter_map(|w| w.resource.resource_version()).max().unwrap_or_default(),
        resources: changed
            .iter()
            .map(|w| format!("{}={}", w.resource.key().to_string().replace(' ', "/"), w.resource.resource_version().unwrap_or_default()))
            .collect(),
    };
    let migrated: std::collections::BTreeSet<String> = changed
        .iter()
        .filter(|w| w.resource.kind == crate::claims::MIGRATION_KIND)
        .filter_map(|w| w.resource.metadata.namespace.clone())
        .collect();
    let mut desired = Desired::default();
    let mut apps = Vec::new();
    let mut results = Vec::with_capacity(written.len());
    for mut result in written {
        if is_app_kind(&result.resource.kind) && result.outcome != ApplyOutcome::Unchanged {
            let (settled, render) = settle(state, result.resource).await;
            desired.add(state, &settled, &render);
            apps.push((settled.metadata.namespace.clone().unwrap_or_default(), settled.metadata.name.clone()));
            result.resource = settled;
        }
        results.push(result);
    }
    if !apps.is_empty() {
        let commits = delivery::deliver(state, &held, desired, &apps, &note).await;
        delivery::publish(state, &commits).await;
    }
    for namespace in migrated {
        crate::migrations::refresh_locked(state, &held, &namespace, &format!("{verb} a claim migration")).await?;
    }
    Ok(results)
}

/// A tenant's applications would silently become the platform team's:
/// deleting a tenant that still has some is refused.
async fn refuse_if_tenant_has_apps(state: &AppState, tenant: &str) -> Result<(), Rejection> {
    let mut names = Vec::new();
    for kind in ["Application", "Workload"] {
        let query = heimdall_store::ListQuery { kind: kind.into(), namespace: Some(tenant.into()), limit: Some(5), ..Default::default() };
        names.extend(state.store.list(&query).await?.items.into_iter().map(|r| format!("{kind} {}", r.metadata.name)));
    }
    if names.is_empty() {
        return Ok(());
    }
    Err(Rejection::TenantHasApplications { tenant: tenant.to_string(), applications: names })
}

/// Deletes a resource; deleting part of the platform takes effect at once,
/// and a deleted application's folders leave every cluster repository.
pub async fn delete(state: &AppState, principal: &Principal, key: &ResourceKey, expected: Option<i64>) -> Result<Resource, Rejection> {
    crate::auth::require(principal, &crate::auth::document_need(key))?;
    if key.kind == "Tenant" {
        crate::auth::require(principal, &crate::auth::Need::delete_tenant())?;
    }
    if key.kind == "Tenant" {
        refuse_if_tenant_has_apps(state, &key.name).await?;
    }
    let actor = principal.name.as_str();
    let held = state.delivery.lock().await;
    let deleted = state.store.delete(actor, key, expected).await?;
    if key.kind == "Tenant" {
        // Its tokens go with it: a tenant made again under the name is not given them.
        let prefix = format!("tenant:{}:", key.name);
        let names: Vec<String> =
            state.store.list_tokens().await?.into_iter().filter(|t| t.role.starts_with(&prefix)).map(|t| t.name).collect();
        if !names.is_empty() {
            let revoked = state.store.delete_tokens(&names).await?;
            tracing::info!(tenant = %key.name, revoked, "the tenant's tokens were revoked with it");
        }
    }
    if is_platform_kind(&key.kind) {
        state.rendering.reload(&state.store).await?;
    }
    if key.kind == heimdall_store::SECRET_KIND {
        state.rendering.set_secrets(crate::secrets::catalog(&state.store).await?);
        let note = ChangeNote {
            actor: actor.to_string(),
            summary: summary("delete", std::slice::from_ref(key)),
            revision: state.store.revision().await?,
            resources: vec![format!("Secret/{}/{}={}", key.namespace, key.name, deleted.resource_version().unwrap_or_default())],
        };
        delivery::redeliver_namespace(state, &held, &key.namespace, Some(&key.name), &note).await?;
    }
    if key.kind == crate::claims::MIGRATION_KIND {
        crate::migrations::refresh_locked(state, &held, &key.namespace, "delete a claim migration").await?;
    }
    if is_app_kind(&key.kind) {
        let note = ChangeNote {
            actor: actor.to_string(),
            summary: summary("delete", std::slice::from_ref(key)),
            revision: state.store.revision().await?,
            resources: vec![format!("{}/{}/{}={}", key.kind, key.namespace, key.name, deleted.resource_version().unwrap_or_default())],
        };
        let commits = delivery::deliver(state, &held, Desired::default(), &[(key.namespace.clone(), key.name.clone())], &note).await;
        delivery::publish(state, &commits).await;
    }
    Ok(deleted)
}

fn details(error: &DocumentError) -> impl Iterator<Item = ErrorDetail> + '_ {
    error.problems.iter().map(|p| ErrorDetail { document: Some(error.document.clone()), path: p.path.clone(), message: p.message.clone() })
}

fn result(document: &str, resource: &Resource, outcome: ApplyOutcome) -> ApplyResult {
    ApplyResult {
        document: document.to_string(),
        kind: resource.kind.clone(),
        namespace: resource.metadata.namespace.clone(),
        name: resource.metadata.name.clone(),
        outcome,
        resource_version: resource.metadata.resource_version.clone().unwrap_or_default(),
    }
}

/// Decodes, validates and stores `documents` as `actor`: `POST /api/v1/apply`,
/// the scaffolder's actions and `heimdall up`'s example organization.
pub async fn apply_documents(
    state: &AppState,
    actor: &Principal,
    documents: Vec<Document>,
    options: &ApplyOptions,
) -> Result<ApplyResponse, Rejection> {
    if documents.is_empty() {
        return Err(Rejection::NoDocuments);
    }
    if documents.len() > heimdall_model::limits::MAX_DOCUMENTS {
        return Err(Rejection::Invalid(vec![heimdall_model::document::too_many_documents("request body", Some(documents.len()))]));
    }
    let namespace = options.namespace.as_deref().unwrap_or("default");
    let mut valid: Vec<(String, Resource)> = Vec::new();
    let mut invalid: Vec<DocumentError> = Vec::new();
    let mut seen: HashMap<heimdall_model::ResourceKey, String> = HashMap::new();
    for document in documents {
        match heimdall_model::decode(&document.value, &document.source, namespace) {
            Ok(decoded) => {
                let key = decoded.resource.key();
                if let Some(first) = seen.get(&key) {
                    invalid.push(DocumentError::new(
                        &document.source,
                        vec![Problem::new("metadata.name", format!("{key} is also defined in {first}; each object may appear once"))],
                    ));
                } else {
                    seen.insert(key, document.source.clone());
                    valid.push((document.source, decoded.resource));
                }
            }
            Err(error) => invalid.push(error),
        }
    }

    if !options.continue_on_error {
        if !invalid.is_empty() {
            return Err(Rejection::Invalid(invalid));
        }
        let sources: Vec<String> = valid.iter().map(|(source, _)| source.clone()).collect();
        let written = write(state, actor, "apply", valid, ApplyMode::Apply, options.dry_run).await?;
        return Ok(ApplyResponse {
            dry_run: options.dry_run,
            results: sources.iter().zip(&written).map(|(source, w)| result(source, &w.resource, w.outcome)).collect(),
            errors: Vec::new(),
        });
    }

    let mut response = ApplyResponse { dry_run: options.dry_run, results: Vec::new(), errors: invalid.iter().flat_map(details).collect() };
    for (source, resource) in valid {
        match write(state, actor, "apply", vec![(source.clone(), resource)], ApplyMode::Apply, options.dry_run).await {
            Ok(mut written) => {
                let w = written.remove(0);
                response.results.push(result(&source, &w.resource, w.outcome));
            }
            Err(e) => {
                if let Some(failure) = e.internal_failure() {
                    tracing::error!(document = %source, error = %failure, "store failure");
                }
                let details = e.details();
                if details.is_empty() {
                    response.errors.push(ErrorDetail { document: Some(source), path: String::new(), message: e.public_message() });
                } else {
                    response.errors.extend(details);
                }
            }
        }
    }
    Ok(response)
}

/// Approves a suspended workflow step of an application's current
/// generation: recorded in its status (who, in the audit trail) and
/// delivered, under the delivery lock like every other write.
pub async fn approve(state: &AppState, principal: &Principal, namespace: &str, name: &str, step: &str) -> Result<Resource, Rejection> {
    let key = ResourceKey::new("Application", namespace, name);
    let held = state.delivery.lock().await;
    let app = state.store.get(&key).await?;
    let current: AppStatus = serde_json::from_value(state.rendering.status(&app)).unwrap_or_default();
    let waiting: Vec<&str> = current
        .workflow
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("phase").and_then(Value::as_str) == Some("suspended"))
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    if !waiting.contains(&step) {
        let waiting = if waiting.is_empty() { "no step is waiting".to_string() } else { format!("waiting: {}", waiting.join(", ")) };
        return Err(Rejection::invalid_field("step", format!("step {:?} is not waiting for approval ({waiting})", step)));
    }
    let mut steps = approvals(&app);
    steps.insert(step.to_string());
    let mut approved = app.clone();
    let mut status: AppStatus = status::status_of(&app);
    status.approvals = Some(Approvals { generation: app.metadata.generation, steps });
    approved.status = Some(status::to_value(&status));
    let result = state.rendering.render_app(&approved);
    let status = status_of(&approved, &result);
    let updated = state.store.update_status(&principal.name, &key, status, app.resource_version()).await?;
    tracing::info!(app = %key, step = %step, by = %principal.name, "workflow step approved");
    let mut desired = Desired::default();
    desired.add(state, &updated, &result);
    let note = ChangeNote {
        actor: principal.name.clone(),
        summary: format!("approve step {} of application {}/{}", step, key.namespace, key.name),
        revision: updated.resource_version().unwrap_or_default(),
        resources: vec![format!("Application/{}/{}={}", key.namespace, key.name, updated.resource_version().unwrap_or_default())],
    };
    let commits = delivery::deliver(state, &held, desired, &[(key.namespace.clone(), key.name.clone())], &note).await;
    delivery::publish(state, &commits).await;
    Ok(updated)
}
