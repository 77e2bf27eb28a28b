//! Claim migrations as operations: their plan, following them as agents
//! report new instances ready, and re-rendering the consumers that switch.
//! The claim model they act on (migrations, catalogs, budgets) is in
//! [`crate::claims`], below the renderer.

use std::collections::BTreeSet;
use std::sync::Arc;

use heimdall_model::{DocumentError, Resource, ResourceKey};
use heimdall_render::{Migration, RenderOptions, Rendered};
use heimdall_store::StoreError;
use serde_json::{Value, json};

use crate::claims::{
    ClaimView, InstanceHealth, MIGRATION_KIND, MigrationPlan, PlanRequest, PlanStep, catalog, has_claim, load_migrations, migration_of,
    owners_in, status_claims, views,
};
use crate::delivery::Delivering;
use crate::state::AppState;

/// Why a migration could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("no claim named {claim} in namespace {namespace}")]
    NoClaim { claim: String, namespace: String },
    #[error("claim {claim} already uses composition {composition} wherever the migration applies; nothing to do")]
    NothingToDo { claim: String, composition: String },
    /// The owner does not render as it is or as it would be migrated.
    #[error("{0}")]
    Render(DocumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks migrations whose new instance an agent reported ready in `cluster`,
/// and re-renders their namespaces so consumers switch.
pub async fn record_readiness(state: &AppState, cluster: &str, namespace: &str, instances: &[InstanceHealth]) -> Result<(), StoreError> {
    let mut changed = false;
    for instance in instances.iter().filter(|i| i.ready) {
        let key = ResourceKey::new(MIGRATION_KIND, namespace, &instance.claim);
        let resource = match state.store.get(&key).await {
            Ok(resource) => resource,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let Some(migration) = migration_of(&resource).filter(|m| m.composition == instance.composition) else { continue };
        if migration.ready.contains(cluster) {
            continue;
        }
        // Agents of several clusters report at once; each adds its own cluster, to the
        // migration as it is when written (it may have moved to another composition meanwhile).
        let mut added = false;
        let written = state
            .store
            .modify_status(crate::actors::AGENT_ACTOR, &key, |current, status: &mut serde_json::Map<String, Value>| {
                added = false;
                let Some(mut ready) = migration_of(current).filter(|m| m.composition == instance.composition).map(|m| m.ready) else {
                    return;
                };
                added = ready.insert(cluster.to_string());
                let message =
                    format!("{} reported ready in {}", instance.composition, ready.iter().cloned().collect::<Vec<_>>().join(", "));
                status.insert("ready".into(), json!(ready));
                status.insert("message".into(), json!(message));
            })
            .await;
        match written {
            Ok(_) => changed |= added,
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if changed {
        refresh(state, namespace, "switch consumers to the migrated claim").await?;
    }
    Ok(())
}

/// Reloads the migrations and re-renders a namespace's owners.
pub async fn refresh(state: &AppState, namespace: &str, why: &str) -> Result<(), StoreError> {
    let held = state.delivery.lock().await;
    refresh_locked(state, &held, namespace, why).await
}

/// [`refresh`] for a caller that holds the delivery lock.
pub async fn refresh_locked(state: &AppState, held: &Delivering<'_>, namespace: &str, why: &str) -> Result<(), StoreError> {
    state.rendering.set_migrations(load_migrations(&state.store).await?);
    let note = crate::delivery::ChangeNote {
        actor: crate::actors::RENDERER.to_string(),
        summary: format!("{why} in {namespace}"),
        revision: state.store.revision().await?,
        resources: Vec::new(),
    };
    crate::delivery::redeliver_namespace(state, held, namespace, None, &note).await?;
    Ok(())
}

/// Every claim instance of a namespace, per cluster, in (claim, cluster, role) order.
pub async fn instances(state: &AppState, namespace: &str) -> Result<Vec<ClaimView>, StoreError> {
    let mut all: Vec<ClaimView> = owners_in(&state.store, namespace).await?.iter().flat_map(views).collect();
    all.sort_by(|a, b| (&a.claim, &a.cluster, &a.role).cmp(&(&b.claim, &b.cluster, &b.role)));
    Ok(all)
}

/// Renders an owner as it is, or as it would be with a migration of `claim`.
fn render_with(state: &AppState, owner: &Resource, claim: &str, migration: Option<Migration>) -> Result<Rendered, MigrationError> {
    let namespace = owner.metadata.namespace.clone().unwrap_or_default();
    let mut migrations = (*state.rendering.migrations()).clone();
    if let Some(migration) = migration {
        migrations.insert((namespace, claim.to_string()), migration);
    }
    let catalog = catalog(owner, owner.status.as_ref(), &migrations);
    let options = RenderOptions {
        approvals: crate::rendering::approvals(owner),
        secrets: Some(state.rendering.secrets()),
        claims: Some(Arc::new(catalog)),
        ..Default::default()
    };
    let source = format!("{}/{}", owner.kind, owner.metadata.name);
    heimdall_render::render(owner, &source, &state.rendering.platform(), &options).map_err(MigrationError::Render)
}

/// What migrating `claim` of `namespace` to another composition would do, per
/// cluster: what is created, who switches, what is deleted, and the cost.
/// Renders only; nothing is written.
pub async fn plan(state: &AppState, namespace: &str, claim: &str, request: &PlanRequest) -> Result<MigrationPlan, MigrationError> {
    let (namespace, claim) = (namespace.to_string(), claim.to_string());
    let owner = owners_in(&state.store, &namespace)
        .await?
        .into_iter()
        .find(|o| has_claim(o, &claim))
        .ok_or_else(|| MigrationError::NoClaim { claim: claim.clone(), namespace: namespace.clone() })?;
    let migration = |ready: bool| Migration {
        composition: request.composition.clone(),
        environment: request.environment.clone(),
        confirm_delete: ready,
        hold: false,
        ready: if ready {
            status_claims(&owner).iter().filter_map(|c| c.get("cluster")?.as_str().map(String::from)).collect()
        } else {
            BTreeSet::new()
        },
    };
    let now = render_with(state, &owner, &claim, None)?;
    let during = render_with(state, &owner, &claim, Some(migration(false)))?;
    let after = render_with(state, &owner, &claim, Some(migration(true)))?;
    let instances = |rendered: &Rendered| -> Vec<(String, heimdall_render::ClaimInstance)> {
        rendered.targets.iter().flat_map(|t| t.claims.iter().filter(|c| c.claim == claim).map(|c| (t.cluster.clone(), c.clone()))).collect()
    };
    let mut steps = Vec::new();
    for (cluster, current) in instances(&now) {
        let Some((_, new)) = instances(&during).into_iter().find(|(c, i)| *c == cluster && i.composition != current.composition) else {
            continue;
        };
        let serving_after = instances(&after).into_iter().find(|(c, i)| *c == cluster && i.serving).map(|(_, i)| i);
        steps.push(PlanStep {
            cluster: cluster.clone(),
            from: current.composition.clone(),
            to: new.composition.clone(),
            create: new.objects.clone(),
            switch: current.consumers.clone(),
            switch_to_secret: serving_after.and_then(|i| i.connection_secret),
            delete: current.objects.clone(),
        });
    }
    if steps.is_empty() {
        return Err(MigrationError::NothingToDo { claim, composition: request.composition.clone() });
    }
    let cost = |rendered: &Rendered| -> f64 { instances(rendered).iter().map(|(_, i)| i.cost).sum() };
    Ok(MigrationPlan {
        namespace,
        claim: claim.clone(),
        owner: format!("{}/{}", owner.kind, owner.metadata.name),
        steps,
        cost_before: cost(&now),
        cost_after: cost(&after),
    })
}
