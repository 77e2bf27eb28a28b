//! The reconciler: keeps every application's `status` true to the current
//! platform. It follows the store's event log, so changes made by another
//! hub replica reach it too. A platform change re-renders every application;
//! an application change re-renders that one.

use std::time::Duration;

use futures::StreamExt;
use std::collections::HashMap;

use heimdall_model::status::{self, AppStatus};
use heimdall_model::{Resource, ResourceKey};
use heimdall_store::{StoreError, WatchFilter};

use crate::delivery::all_apps;
use crate::delivery::settle;
use crate::delivery::{self, ChangeNote, Desired};
use crate::rendering::{is_app_kind, is_platform_kind};
use crate::state::AppState;

/// Events that arrive this close together are handled as one batch, so a
/// folder of platform documents re-renders the fleet once.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Re-renders every application, records the statuses that changed, and
/// brings every cluster repository in line. Returns how many statuses changed.
pub async fn render_all(state: &AppState) -> Result<usize, StoreError> {
    let held = state.delivery.lock().await;
    let revision = state.store.revision().await?;
    let mut changed = 0;
    let mut apps = Vec::new();
    for app in all_apps(state).await? {
        let before = app.status.clone();
        let (settled, _) = settle(state, app).await;
        if settled.status != before {
            changed += 1;
        }
        apps.push(settled);
    }
    let note = ChangeNote {
        actor: "heimdall".into(),
        summary: format!("reconcile every cluster with the store at revision {revision}"),
        revision,
        resources: Vec::new(),
    };
    let commits = delivery::reconcile_all(state, &held, &apps, &note).await;
    delivery::publish(state, &commits).await;
    if !commits.is_empty() {
        tracing::info!(commits = commits.len(), revision, "repositories reconciled with the store");
    }
    Ok(changed)
}

fn observed(app: &Resource) -> bool {
    status::status_of::<AppStatus>(app).observed_generation == app.metadata.generation
}

/// Rebuilds the platform under the delivery lock: a reload that read the
/// store before a concurrent platform write must not install its older
/// platform after that write installed the newer one.
async fn reload(state: &AppState) -> Result<(), StoreError> {
    let _delivery = state.delivery.lock().await;
    state.rendering.reload(&state.store).await
}

/// Runs until the store fails; the caller restarts it.
pub async fn run(state: AppState) -> Result<(), StoreError> {
    let from = state.store.revision().await?;
    // Generations of platform objects seen: a status update (same generation)
    // changes nothing that renders, so it must not re-render the fleet. Read
    // before the platform is loaded: a platform write landing in between then
    // shows up as a new generation and re-renders, instead of being taken for
    // one the first render already saw (a cluster added at start-up never got
    // its tenants' folders that way).
    let mut seen: HashMap<ResourceKey, i64> = crate::rendering::platform_resources(&state.store)
        .await?
        .into_iter()
        .map(|r| (r.key(), r.metadata.generation.unwrap_or_default()))
        .collect();
    reload(&state).await?;
    let changed = render_all(&state).await?;
    tracing::info!(changed, "rendered every application");
    if let Err(e) = crate::repositories::record_health(&state).await {
        tracing::warn!(error = %e, "cannot record repository health");
    }
    let mut events = Box::pin(state.store.watch(WatchFilter::default(), from));
    while let Some(first) = events.next().await {
        let mut batch = vec![first?];
        while let Ok(Some(next)) = tokio::time::timeout(BATCH_WINDOW, events.next()).await {
            batch.push(next?);
        }
        let mut platform_changed = false;
        for event in batch.iter().filter(|e| is_platform_kind(&e.object.kind)) {
            let key = event.object.key();
            let generation = event.object.metadata.generation.unwrap_or_default();
            if event.type_ == heimdall_store::WatchEventType::Deleted {
                seen.remove(&key);
                platform_changed = true;
            } else if seen.insert(key, generation) != Some(generation) {
                platform_changed = true;
            }
        }
        if platform_changed {
            reload(&state).await?;
            let changed = render_all(&state).await?;
            tracing::info!(changed, "platform changed; re-rendered applications");
            if let Err(e) = crate::repositories::record_health(&state).await {
                tracing::warn!(error = %e, "cannot record repository health");
            }
            continue;
        }
        // Migrations another replica wrote (or marked ready) move consumers here too.
        let migrated: std::collections::BTreeSet<String> = batch
            .iter()
            .filter(|e| e.object.kind == crate::claims::MIGRATION_KIND)
            .filter_map(|e| e.object.metadata.namespace.clone())
            .collect();
        if !migrated.is_empty() {
            let held = state.delivery.lock().await;
            if *state.rendering.migrations() != crate::claims::load_migrations(&state.store).await? {
                for namespace in &migrated {
                    if let Err(e) = crate::migrations::refresh_locked(&state, &held, namespace, "follow a claim migration").await {
                        tracing::warn!(%namespace, error = %e, "cannot follow a claim migration");
                    }
                }
            }
        }
        for event in batch {
            let app = event.object;
            if event.type_ == heimdall_store::WatchEventType::Deleted || !is_app_kind(&app.kind) || observed(&app) {
                continue;
            }
            // The event carries the object as it was; render what is stored now.
            let held = state.delivery.lock().await;
            match state.store.get(&app.key()).await {
                Ok(current) if !observed(&current) => {
                    // A change another replica stored: render, record and deliver it here too.
                    let (settled, render) = settle(&state, current).await;
                    let mut desired = Desired::default();
                    desired.add(&state, &settled, &render);
                    let note = ChangeNote {
                        actor: "heimdall".into(),
                        summary: format!("render {}", settled.key()),
                        revision: settled.resource_version().unwrap_or_default(),
                        resources: Vec::new(),
                    };
                    let apps = [(settled.metadata.namespace.clone().unwrap_or_default(), settled.metadata.name.clone())];
                    let commits = delivery::deliver(&state, &held, desired, &apps, &note).await;
                    delivery::publish(&state, &commits).await;
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Keeps the reconciler running, restarting it after a store failure.
pub async fn supervise(state: AppState) {
    loop {
        match run(state.clone()).await {
            Ok(()) => tracing::warn!("reconciler stopped; restarting"),
            Err(e) => tracing::warn!(error = %e, "reconciler failed; restarting"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
