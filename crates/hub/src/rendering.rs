//! The renderer inside the hub: the compiled platform, admission of changes
//! (a change that does not render, or that a denying policy rejects, is
//! refused before anything is stored), and each application's `status`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use heimdall_model::spec::platform::Enforcement;
use heimdall_model::status::{self, AppStatus, Approvals, TargetStatus};
use heimdall_model::{DocumentError, Problem, Resource, ResourceKey};
use heimdall_render::{Platform, RenderOptions, Rendered, render};
use heimdall_store::{ListQuery, Store, StoreError};
use serde_json::{Value, json};

use heimdall_api::ErrorDetail;

use crate::rejection::Rejection;

/// Whether `kind` changes how applications render (the kind registry says).
pub fn is_platform_kind(kind: &str) -> bool {
    heimdall_model::kinds::is_platform(kind)
}

/// Whether resources of `kind` render into cluster repositories (the kind registry says).
pub fn is_app_kind(kind: &str) -> bool {
    heimdall_model::kinds::renders(kind)
}

/// The compiled platform, rebuilt when a platform kind changes.
pub struct Rendering {
    platform: ArcSwap<Platform>,
    /// The secrets that exist (no values), for reference checks.
    secrets: ArcSwap<heimdall_render::SecretCatalog>,
    /// Claim migrations under way, by (namespace, claim).
    migrations: ArcSwap<crate::claims::Migrations>,
}

impl std::fmt::Debug for Rendering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendering")
    }
}

impl Default for Rendering {
    fn default() -> Self {
        Self { platform: ArcSwap::from_pointee(Platform::builtin()), secrets: ArcSwap::default(), migrations: ArcSwap::default() }
    }
}

/// Every stored resource of every platform kind.
pub async fn platform_resources(store: &Store) -> Result<Vec<Resource>, StoreError> {
    let mut resources = Vec::new();
    for kind in heimdall_model::kinds::platform_kinds() {
        resources.extend(store.list(&ListQuery { kind: kind.to_string(), ..Default::default() }).await?.items);
    }
    Ok(resources)
}

fn platform_errors(errors: Vec<DocumentError>, sources: &BTreeMap<String, String>) -> Rejection {
    // Name the document of this request a platform error comes from, when it does.
    let errors: Vec<DocumentError> =
        errors.into_iter().map(|e| DocumentError::new(sources.get(&e.document).cloned().unwrap_or(e.document), e.problems)).collect();
    Rejection::Invalid(errors)
}

impl Rendering {
    pub fn platform(&self) -> Arc<Platform> {
        self.platform.load_full()
    }

    pub fn secrets(&self) -> Arc<heimdall_render::SecretCatalog> {
        self.secrets.load_full()
    }

    pub fn set_secrets(&self, catalog: heimdall_render::SecretCatalog) {
        self.secrets.store(Arc::new(catalog));
    }

    pub fn migrations(&self) -> Arc<crate::claims::Migrations> {
        self.migrations.load_full()
    }

    pub fn set_migrations(&self, migrations: crate::claims::Migrations) {
        self.migrations.store(Arc::new(migrations));
    }

    fn set(&self, platform: Platform) {
        self.platform.store(Arc::new(platform));
    }

    /// Rebuilds the platform from the store. A stored platform that does not
    /// compile (written before a check existed) is logged, and the last good
    /// one stays.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        self.set_secrets(crate::secrets::catalog(store).await?);
        self.set_migrations(crate::claims::load_migrations(store).await?);
        let resources = platform_resources(store).await?;
        match Platform::from_resources(&resources) {
            Ok(platform) => self.set(platform),
            Err(errors) => {
                tracing::error!(errors = %errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "), "stored platform does not compile; keeping the previous one")
            }
        }
        Ok(())
    }

    /// Checks a batch before it is stored: platform changes must compile,
    /// applications must render and pass the denying policies. Returns the
    /// platform the batch would produce, if it changes the platform.
    /// Each application renders with its writer's role in its tenant: what
    /// kinds its objects may be (a platform admin's change has the owners').
    pub async fn admit(
        &self,
        store: &Store,
        batch: &[(String, Resource)],
        writer: &crate::auth::Principal,
    ) -> Result<Option<Platform>, Rejection> {
        let platform_changes: Vec<&(String, Resource)> = batch.iter().filter(|(_, r)| is_platform_kind(&r.kind)).collect();
        let candidate = if platform_changes.is_empty() {
            None
        } else {
            let mut resources: BTreeMap<ResourceKey, Resource> =
                platform_resources(store).await?.into_iter().map(|r| (r.key(), r)).collect();
            let mut sources = BTreeMap::new();
            for (source, resource) in &platform_changes {
                sources.insert(format!("{} {}", resource.kind, resource.metadata.name), source.clone());
                resources.insert(resource.key(), resource.clone());
            }
            Some(Platform::from_resources(resources.values()).map_err(|errors| platform_errors(errors, &sources))?)
        };
        let current = self.platform();
        let platform = candidate.as_ref().unwrap_or(&current);
        let mut invalid = Vec::new();
        let mut denied = Vec::new();
        let migrations = crate::claims::admit_migrations(store, batch, &self.migrations()).await?;
        let mut renders = Vec::new();
        // Owners of claims a migration in the batch moves must render with it.
        let owners = crate::claims::owners_of_migrations(store, batch).await?;
        let in_batch = batch.iter().filter(|(_, r)| is_app_kind(&r.kind)).map(|entry| (entry, true));
        for ((source, app), written) in in_batch.chain(owners.iter().map(|entry| (entry, false))) {
            let stored = match store.get(&app.key()).await {
                Ok(stored) => stored.status,
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let claims = crate::claims::catalog(app, stored.as_ref(), &migrations);
            // Owners a migration re-renders keep what was admitted for them.
            let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
            let tenant_role = if written { crate::auth::confinement_of(writer, namespace) } else { None };
            let options =
                RenderOptions { secrets: Some(self.secrets()), claims: Some(Arc::new(claims)), tenant_role, ..Default::default() };
            match render(app, source, platform, &options) {
                Ok(rendered) => {
                    renders.push((app.key(), rendered.clone()));
                    let globally_warn = platform.defaults().policy_enforcement == Enforcement::Warn;
                    for finding in rendered.violations().filter(|_| !globally_warn) {
                        denied.push(ErrorDetail {
                            document: Some(source.clone()),
                            path: String::new(),
                            message: format!(
                                "policy {} ({}/{}): {}",
                                finding.finding.policy, finding.cluster, finding.namespace, finding.finding.message
                            ),
                        });
                    }
                }
                Err(error) => invalid.push(error),
            }
        }
        if !invalid.is_empty() {
            return Err(Rejection::Invalid(invalid));
        }
        if !denied.is_empty() {
            return Err(Rejection::PolicyViolation(denied));
        }
        crate::claims::check_budgets(store, platform, &renders).await?;
        Ok(candidate)
    }

    /// Makes `platform` the current one. The reconciler re-renders every
    /// application when it sees the change in the event log.
    pub fn install(&self, platform: Platform) {
        self.set(platform);
    }

    /// The status an application should have under the current platform.
    /// Renders a stored application under the current platform, with its approvals.
    pub fn render_app(&self, app: &Resource) -> Result<Rendered, DocumentError> {
        let claims = crate::claims::catalog(app, app.status.as_ref(), &self.migrations());
        let options = RenderOptions {
            approvals: approvals(app),
            secrets: Some(self.secrets()),
            claims: Some(Arc::new(claims)),
            ..Default::default()
        };
        let source = format!("{} {}/{}", app.kind, app.metadata.namespace.as_deref().unwrap_or_default(), app.metadata.name);
        render(app, &source, &self.platform(), &options)
    }

    /// The status an application should have under the current platform.
    pub fn status(&self, app: &Resource) -> Value {
        status_of(app, &self.render_app(app))
    }
}

/// The status a render result gives an application.
pub fn status_of(app: &Resource, result: &Result<Rendered, DocumentError>) -> Value {
    let approved = approvals(app);
    let generation = app.metadata.generation.unwrap_or(1);
    let mut status = match result {
        Ok(rendered) => rendered_status(rendered),
        Err(error) => AppStatus {
            phase: Some("Failed".into()),
            messages: Some(error.problems.iter().map(Problem::to_string).collect()),
            ..Default::default()
        },
    };
    status.observed_generation = Some(generation);
    // What agents report (sync and health per cluster) is theirs, not the renderer's.
    status.clusters = status::status_of::<AppStatus>(app).clusters;
    if !approved.is_empty() {
        status.approvals = Some(Approvals { generation: Some(generation), steps: approved });
    }
    status::to_value(&status)
}

/// Suspend steps approved for the application's current generation. A new
/// generation starts its workflow afresh, as in KubeVela.
pub fn approvals(app: &Resource) -> BTreeSet<String> {
    match status::status_of::<AppStatus>(app).approvals {
        Some(recorded) if recorded.generation == app.metadata.generation => recorded.steps,
        _ => BTreeSet::new(),
    }
}

fn rendered_status(rendered: &Rendered) -> AppStatus {
    let denied: BTreeSet<(String, String)> = rendered.violations().map(|f| (f.cluster.clone(), f.namespace.clone())).collect();
    let targets: Vec<TargetStatus> = rendered
        .targets
        .iter()
        .map(|t| {
            let state = if t.held_by.is_some() {
                "Held"
            } else if denied.contains(&(t.cluster.clone(), t.namespace.clone())) {
                "Blocked"
            } else {
                "Ready"
            };
            let messages: Vec<String> = rendered
                .findings
                .iter()
                .filter(|f| f.cluster == t.cluster && f.namespace == t.namespace)
                .map(|f| format!("{} ({:?}): {}", f.finding.policy, f.finding.enforcement, f.finding.message))
                .chain(t.held_by.iter().map(|step| format!("waiting for approval of step {step}")))
                .collect();
            TargetStatus {
                cluster: t.cluster.clone(),
                namespace: t.namespace.clone(),
                environment: t.environment.clone(),
                state: state.into(),
                objects: t.objects.len(),
                revision: t.revision.clone(),
                messages,
            }
        })
        .collect();
    let phase = if !denied.is_empty() {
        "Blocked"
    } else if rendered.targets.iter().any(|t| t.held_by.is_some()) {
        "Suspended"
    } else {
        "Rendered"
    };
    let claims: Vec<Value> = rendered
        .targets
        .iter()
        .flat_map(|t| {
            t.claims.iter().map(move |c| {
                let mut claim = json!(c);
                claim["cluster"] = json!(t.cluster);
                claim["environment"] = json!(t.environment);
                claim
            })
        })
        .collect();
    AppStatus {
        phase: Some(phase.into()),
        targets: Some(targets),
        workflow: Some(json!(rendered.workflow)),
        claims: (!claims.is_empty()).then_some(claims),
        messages: (!rendered.warnings.is_empty()).then(|| rendered.warnings.clone()),
        ..Default::default()
    }
}
