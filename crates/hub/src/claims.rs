//! Claims in the hub: which composition each instance uses (from its
//! owner's status), migrations (`ClaimMigration` documents, made ready by
//! agents' reports), tenant budgets at admission, and the claim API: the
//! instances of a namespace and the plan of a migration.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_model::spec::capability::ClaimMigrationSpec;
use heimdall_model::status::{self, AppStatus};
use heimdall_model::{Resource, ResourceKey};
use heimdall_render::{ClaimCatalog, Migration, Platform, Rendered};
use heimdall_store::{ListQuery, Store, StoreError};
use serde_json::{Value, json};

use heimdall_api::ErrorDetail;

use crate::rejection::Rejection;

pub const MIGRATION_KIND: &str = "ClaimMigration";
/// Kinds whose status lists claim instances.
const OWNER_KINDS: &[&str] = &["Application", "Workload", "Claim"];

/// Migrations under way, by (namespace, claim).
pub type Migrations = BTreeMap<(String, String), Migration>;

pub(crate) fn migration_of(resource: &Resource) -> Option<Migration> {
    let spec: ClaimMigrationSpec = serde_json::from_value(resource.spec.clone()).ok()?;
    let ready = resource
        .status
        .as_ref()
        .and_then(|s| s.get("ready"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    Some(Migration {
        composition: spec.composition,
        environment: spec.environment,
        confirm_delete: spec.confirm_delete,
        hold: spec.hold,
        ready,
    })
}

pub async fn load_migrations(store: &Store) -> Result<Migrations, StoreError> {
    let all = store.list(&ListQuery { kind: MIGRATION_KIND.into(), ..Default::default() }).await?;
    Ok(all.items.iter().filter_map(|r| Some(((r.metadata.namespace.clone()?, r.metadata.name.clone()), migration_of(r)?))).collect())
}

/// The migrations with the batch's applied: readiness already reported stays.
pub async fn admit_migrations(store: &Store, batch: &[(String, Resource)], current: &Migrations) -> Result<Migrations, Rejection> {
    let mut migrations = current.clone();
    for (_, resource) in batch.iter().filter(|(_, r)| r.kind == MIGRATION_KIND) {
        let key = (resource.metadata.namespace.clone().unwrap_or_default(), resource.metadata.name.clone());
        let Some(mut migration) = migration_of(resource) else { continue };
        let stored = match store.get(&resource.key()).await {
            Ok(stored) => migration_of(&stored),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        // Readiness belongs to the composition it was reported for.
        if let Some(stored) = stored.filter(|s| s.composition == migration.composition) {
            migration.ready = stored.ready;
        }
        migrations.insert(key, migration);
    }
    Ok(migrations)
}

/// Every stored owner (Application, Workload, Claim) in a namespace.
pub(crate) async fn owners_in(store: &Store, namespace: &str) -> Result<Vec<Resource>, StoreError> {
    let mut owners = Vec::new();
    for kind in OWNER_KINDS {
        let query = ListQuery { kind: kind.to_string(), namespace: Some(namespace.into()), ..Default::default() };
        owners.extend(store.list(&query).await?.items);
    }
    Ok(owners)
}

/// The claim instances the renderer recorded in a resource's status.
pub(crate) fn status_claims(resource: &Resource) -> Vec<Value> {
    status::status_of::<AppStatus>(resource).claims.unwrap_or_default()
}

pub(crate) fn has_claim(resource: &Resource, claim: &str) -> bool {
    status_claims(resource).iter().any(|c| c.get("claim").and_then(Value::as_str) == Some(claim))
}

/// The stored owners of the claims a batch's migrations move, each with
/// the migration's source (so a render error names the migration's file).
/// A migration of a claim nobody has is refused.
pub async fn owners_of_migrations(store: &Store, batch: &[(String, Resource)]) -> Result<Vec<(String, Resource)>, Rejection> {
    let in_batch: BTreeSet<ResourceKey> = batch.iter().map(|(_, r)| r.key()).collect();
    let mut owners = Vec::new();
    for (source, migration) in batch.iter().filter(|(_, r)| r.kind == MIGRATION_KIND) {
        let namespace = migration.metadata.namespace.clone().unwrap_or_default();
        let claim = &migration.metadata.name;
        let found: Vec<Resource> = owners_in(store, &namespace).await?.into_iter().filter(|o| has_claim(o, claim)).collect();
        if found.is_empty() && !batch.iter().any(|(_, r)| r.kind != MIGRATION_KIND && r.metadata.namespace.as_deref() == Some(&namespace)) {
            return Err(Rejection::invalid_field(
                "metadata.name",
                format!(
                    "no claim named {claim} in namespace {namespace}: a ClaimMigration is named after the claim it moves (heimdall get claims -n {namespace})"
                ),
            )
            .in_document(source));
        }
        owners.extend(found.into_iter().filter(|o| !in_batch.contains(&o.key())).map(|o| (source.clone(), o)));
    }
    Ok(owners)
}

/// What the renderer needs to know about an owner's claims: the
/// composition each instance uses now (the current one of a migration, else
/// the only one) and the migrations of its namespace.
pub fn catalog(app: &Resource, status: Option<&Value>, migrations: &Migrations) -> ClaimCatalog {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let mut in_use: BTreeMap<(String, String, String), (bool, String)> = BTreeMap::new();
    for claim in status.and_then(|s| s.get("claims")).and_then(Value::as_array).into_iter().flatten() {
        let field = |name: &str| claim.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let current = field("role") == "Current";
        let key = (namespace.clone(), field("claim"), field("cluster"));
        match in_use.get(&key) {
            Some((true, _)) => {}
            _ => {
                in_use.insert(key, (current, field("composition")));
            }
        }
    }
    ClaimCatalog {
        in_use: in_use.into_iter().map(|(key, (_, composition))| (key, composition)).collect(),
        migrations: migrations.iter().filter(|((ns, _), _)| *ns == namespace).map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

fn claim_costs(rendered: &Rendered) -> impl Iterator<Item = (String, f64)> + '_ {
    rendered
        .targets
        .iter()
        .flat_map(|t| t.claims.iter().map(move |c| (format!("{} in {} ({})", c.claim, t.cluster, c.composition), c.cost)))
}

fn money(amount: f64) -> String {
    format!("{amount:.2}")
}

/// Refuses a batch whose claims would take a tenant over its monthly
/// budget: this batch's renders plus what the tenant's other owners cost now.
pub async fn check_budgets(store: &Store, platform: &Platform, renders: &[(ResourceKey, Rendered)]) -> Result<(), Rejection> {
    let namespaces: BTreeSet<&str> = renders.iter().map(|(k, _)| k.namespace.as_str()).filter(|n| !n.is_empty()).collect();
    for namespace in namespaces {
        let Some(budget) = platform.tenant(namespace).and_then(|t| t.budget.as_ref()) else { continue };
        let mut lines: Vec<(String, f64)> = Vec::new();
        let mut seen = BTreeSet::new();
        for (key, rendered) in renders.iter().filter(|(k, _)| k.namespace == namespace) {
            if seen.insert(key.clone()) {
                lines.extend(claim_costs(rendered));
            }
        }
        if lines.is_empty() {
            continue;
        }
        for owner in owners_in(store, namespace).await?.iter().filter(|o| !seen.contains(&o.key())) {
            for claim in status_claims(owner) {
                let field = |name: &str| claim.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
                let cost = claim.get("cost").and_then(Value::as_f64).unwrap_or(0.0);
                lines.push((
                    format!(
                        "{} in {} ({}, {} {})",
                        field("claim"),
                        field("cluster"),
                        field("composition"),
                        owner.kind,
                        owner.metadata.name
                    ),
                    cost,
                ));
            }
        }
        let total: f64 = lines.iter().map(|(_, cost)| cost).sum();
        if total > budget.monthly + 0.005 {
            lines.sort_by(|a, b| b.1.total_cmp(&a.1));
            let message = format!(
                "tenant {namespace}'s claims would cost {} {} a month, over its budget of {} {}; nothing was changed",
                money(total),
                budget.currency,
                money(budget.monthly),
                budget.currency
            );
            let lines = lines
                .into_iter()
                .map(|(what, cost)| ErrorDetail {
                    document: None,
                    path: String::new(),
                    message: format!("{what}: {} {}", money(cost), budget.currency),
                })
                .collect();
            return Err(Rejection::BudgetExceeded { message, lines });
        }
    }
    Ok(())
}

/// What an agent reports of one claim instance in one cluster.
pub use heimdall_api::agent::ClaimHealth as InstanceHealth;
pub use heimdall_api::claims::{ClaimView, MigrationPlan, PlanRequest, PlanStep};

pub(crate) fn views(owner: &Resource) -> Vec<ClaimView> {
    let namespace = owner.metadata.namespace.clone().unwrap_or_default();
    let status: AppStatus = status::status_of(owner);
    status
        .claims
        .iter()
        .flatten()
        .map(|c| {
            let field = |name: &str| c.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
            let strings = |name: &str| {
                c.get(name)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default()
            };
            let (claim, cluster, composition) = (field("claim"), field("cluster"), field("composition"));
            let report = status.clusters.get(&cluster).and_then(|reported| {
                reported.claims.iter().find(|r| r.get("claim") == Some(&json!(claim)) && r.get("composition") == Some(&json!(composition)))
            });
            let state = match report.and_then(|r| r.get("ready")).and_then(Value::as_bool) {
                Some(true) => "Ready",
                Some(false) => "Provisioning",
                None => "Unknown",
            };
            let messages = report
                .and_then(|r| r.get("messages"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                .unwrap_or_default();
            ClaimView {
                namespace: namespace.clone(),
                owner: format!("{}/{}", owner.kind, owner.metadata.name),
                capability: field("capability"),
                environment: c.get("environment").and_then(Value::as_str).map(String::from),
                provider: c.get("provider").and_then(Value::as_str).map(String::from),
                role: field("role"),
                serving: c.get("serving").and_then(Value::as_bool).unwrap_or(false),
                cost: c.get("cost").and_then(Value::as_f64).unwrap_or(0.0),
                outputs: strings("outputs"),
                connection_secret: c.get("connectionSecret").and_then(Value::as_str).map(String::from),
                consumers: strings("consumers"),
                state: state.into(),
                messages,
                claim,
                cluster,
                composition,
            }
        })
        .collect()
}
