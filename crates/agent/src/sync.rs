//! One pass that makes the cluster match the desired state: apply what is
//! missing or different (server-side apply, in order, in parallel within a
//! step), prune what the agent applied earlier and is no longer desired, and
//! judge the health of each application folder.
//!
//! The same pass runs for a new revision and on the drift interval: it lists
//! each kind once (only objects labelled as Heimdall's), so a pass over an
//! unchanged cluster costs one LIST per kind and no writes.

use heimdall_api::labels as well_known;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::desired::{Desired, DesiredObject, GarbageCollect, Identity, MANAGED_BY, ObjectRef, drifted, set_at, value_at};
use crate::health::{self, Health};

/// What the agent applied, so it prunes only its own objects. Stored as a
/// list (JSON maps need string keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "Vec<StoredEntry>", from = "Vec<StoredEntry>")]
pub struct Inventory {
    pub entries: BTreeMap<ObjectRef, InventoryEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    #[serde(flatten)]
    reference: ObjectRef,
    #[serde(flatten)]
    entry: InventoryEntry,
}

impl From<Inventory> for Vec<StoredEntry> {
    fn from(inventory: Inventory) -> Self {
        inventory.entries.into_iter().map(|(reference, entry)| StoredEntry { reference, entry }).collect()
    }
}

impl From<Vec<StoredEntry>> for Inventory {
    fn from(entries: Vec<StoredEntry>) -> Self {
        Inventory { entries: entries.into_iter().map(|e| (e.reference, e.entry)).collect() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub folder: String,
    /// Digest of the desired object last applied.
    pub digest: String,
    /// It existed before the agent applied it (take-over, shared): never deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    #[serde(default)]
    pub gc: GarbageCollect,
    /// The tenant it was applied as, and is pruned as; none: the agent's own rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl InventoryEntry {
    pub fn identity(&self) -> Identity {
        self.tenant.clone().map_or(Identity::Agent, Identity::Tenant)
    }
}

impl FolderStatus {
    /// The folder as the protocol reports it.
    pub fn report(&self) -> heimdall_api::agent::FolderReport {
        use heimdall_api::agent::{HealthState, SyncState};
        heimdall_api::agent::FolderReport {
            sync: if self.sync == "Synced" { SyncState::Synced } else { SyncState::Failed },
            health: match self.health {
                Health::Healthy => HealthState::Healthy,
                Health::Progressing => HealthState::Progressing,
                Health::Missing => HealthState::Missing,
                Health::Degraded => HealthState::Degraded,
            },
            messages: self.messages.clone(),
            objects: self.objects,
            claims: self.claims.clone(),
        }
    }
}

/// The state of one application folder after a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderStatus {
    /// `Synced` or `Failed`.
    pub sync: String,
    pub health: Health,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    pub objects: usize,
    /// Capability instances in the folder, for claims and their migrations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimHealth>,
}

pub use heimdall_api::agent::ClaimHealth;

const CLAIM_LABEL: &str = "capabilities.heimdall.dev/claim";
const COMPOSITION_LABEL: &str = "capabilities.heimdall.dev/composition";

/// The claim instance an object belongs to, from its labels.
fn instance_of(object: &Value) -> Option<(String, String)> {
    let labels = object.pointer("/metadata/labels")?;
    Some((labels.get(CLAIM_LABEL)?.as_str()?.to_string(), labels.get(COMPOSITION_LABEL)?.as_str()?.to_string()))
}

pub use heimdall_api::agent::ObjectError;

#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: Vec<ObjectRef>,
    pub pruned: Vec<ObjectRef>,
    /// Objects that had been changed or deleted underneath and were repaired.
    pub drift: Vec<ObjectRef>,
    pub errors: Vec<ObjectError>,
    pub folders: BTreeMap<String, FolderStatus>,
}

/// How long to wait for an applied CRD to be established.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

enum Step {
    Applied(Value),
    Unchanged,
}

/// What applying one object did.
struct Applied {
    step: Step,
    /// It existed before and a take-over or shared policy adopted it.
    adopted: bool,
    /// It had been changed or deleted underneath and is repaired.
    repaired: bool,
}

/// Runs one pass. `concurrency` bounds parallel requests to the API server.
pub async fn sync(cluster: &Cluster, desired: &Desired, inventory: &mut Inventory, concurrency: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let (mut live, listed) = snapshot(cluster, desired, inventory).await;
    let groups = desired.apply_groups();
    let before_workloads =
        groups.iter().position(|g| g.iter().all(|o| !matches!(o.reference.kind.as_str(), "CustomResourceDefinition" | "Namespace")));
    for (index, group) in groups.into_iter().enumerate() {
        if Some(index) == before_workloads {
            ensure_namespaces(cluster, desired, &mut outcome).await;
        }
        let work: Vec<_> = group
            .into_iter()
            .map(|object| {
                let current = live.get(&object.reference).cloned();
                let entry = inventory.entries.get(&object.reference).cloned();
                apply_one(cluster, object, current, entry).map(move |result| (object, result)).boxed()
            })
            .collect();
        let results: Vec<(&DesiredObject, Result<Applied, ClusterError>)> =
            futures::stream::iter(work).buffer_unordered(concurrency.max(1)).collect().await;
        let mut crds = Vec::new();
        for (object, result) in results {
            match result {
                Ok(Applied { step, adopted, repaired }) => {
                    if let Step::Applied(applied) = step {
                        outcome.applied.push(object.reference.clone());
                        if object.reference.kind == "CustomResourceDefinition" {
                            crds.push(object.reference.clone());
                        }
                        live.insert(object.reference.clone(), applied);
                    }
                    if repaired {
                        outcome.drift.push(object.reference.clone());
                    }
                    let adopted = adopted || inventory.entries.get(&object.reference).is_some_and(|e| e.adopted);
                    inventory.entries.insert(
                        object.reference.clone(),
                        InventoryEntry {
                            folder: object.folder.clone(),
                            digest: object.digest.clone(),
                            adopted,
                            gc: object.hints.gc,
                            tenant: object.identity.tenant().map(String::from),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(object = %object.reference, error = %e, "apply failed");
                    outcome.errors.push(ObjectError {
                        object: object.reference.to_string(),
                        folder: object.folder.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if !crds.is_empty() {
            wait_established(cluster, &crds, &mut outcome).await;
            if let Err(e) = cluster.refresh_discovery().await {
                tracing::warn!(error = %e, "discovery failed after applying CRDs");
            }
        }
    }
    let labelled = Labelled { live: &live, listed: &listed };
    prune(cluster, desired, inventory, &labelled, &mut outcome, concurrency).await;
    for object in desired.objects.values().filter(|o| o.hints.read_only) {
        if let Ok(Some(value)) = cluster.get(&object.reference).await {
            live.insert(object.reference.clone(), value);
        }
    }
    outcome.folders = assess(cluster, desired, &live, &outcome.errors).await;
    outcome
}

/// Creates the namespaces platform objects go into that neither exist nor
/// are desired (as `kubectl create namespace` would before an apply). They
/// are not in the inventory: the agent never deletes a namespace it was not
/// asked for, with whatever else lives in it. A tenant's objects get no
/// namespace this way: tenants own only the namespaces the platform made.
async fn ensure_namespaces(cluster: &Cluster, desired: &Desired, outcome: &mut Outcome) {
    let wanted: BTreeSet<&str> = desired
        .objects
        .values()
        .filter(|o| o.identity == Identity::Agent)
        .map(|o| o.reference.namespace.as_str())
        .filter(|ns| !ns.is_empty())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let existing: BTreeSet<String> = match cluster.list("v1", "Namespace", "").await {
        Ok(namespaces) => namespaces.iter().filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str)).map(String::from).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list namespaces");
            return;
        }
    };
    for namespace in wanted.into_iter().filter(|ns| !existing.contains(*ns)) {
        let reference =
            ObjectRef { api_version: "v1".into(), kind: "Namespace".into(), namespace: String::new(), name: namespace.to_string() };
        if desired.objects.contains_key(&reference) {
            continue;
        }
        let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
            "annotations": {(well_known::CREATED_BY): "agent"}}});
        match cluster.apply(&reference, &object).await {
            Ok(_) => tracing::info!(%namespace, "created namespace"),
            Err(e) => outcome.errors.push(ObjectError { object: reference.to_string(), folder: String::new(), message: e.to_string() }),
        }
    }
}

/// Every object of the kinds involved that carries Heimdall's label (one
/// LIST per kind), and the kinds whose LIST answered.
async fn snapshot(cluster: &Cluster, desired: &Desired, inventory: &Inventory) -> (BTreeMap<ObjectRef, Value>, BTreeSet<(String, String)>) {
    let kinds: BTreeSet<(String, String)> =
        desired.objects.keys().chain(inventory.entries.keys()).map(|r| (r.api_version.clone(), r.kind.clone())).collect();
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let work: Vec<_> = kinds
        .into_iter()
        .map(|(api_version, kind)| {
            let selector = selector.clone();
            async move {
                let list = cluster.list(&api_version, &kind, &selector).await;
                ((api_version, kind), list)
            }
            .boxed()
        })
        .collect();
    let lists: Vec<_> = futures::stream::iter(work).buffer_unordered(8).collect().await;
    let mut live = BTreeMap::new();
    let mut listed = BTreeSet::new();
    for (kind, list) in lists {
        // A kind the cluster does not serve yet (its CRD comes in this pass) has nothing live.
        match list {
            Ok(objects) => {
                listed.insert(kind);
                for object in objects {
                    if let Some(reference) = ObjectRef::of(&object) {
                        live.insert(reference, object);
                    }
                }
            }
            Err(ClusterError::UnknownKind { .. }) => {
                listed.insert(kind);
            }
            Err(e) => tracing::warn!(kind = %kind.1, error = %e, "cannot list; nothing of this kind is pruned this pass"),
        }
    }
    (live, listed)
}

/// What the pass saw labelled as Heimdall's: the objects, and the kinds it could list.
struct Labelled<'a> {
    live: &'a BTreeMap<ObjectRef, Value>,
    listed: &'a BTreeSet<(String, String)>,
}

impl Labelled<'_> {
    /// Whether the pass knows about `reference`: its kind was listed.
    fn knows(&self, reference: &ObjectRef) -> bool {
        self.listed.contains(&(reference.api_version.clone(), reference.kind.clone()))
    }

    fn is_heimdalls(&self, reference: &ObjectRef) -> bool {
        self.live.contains_key(reference)
    }
}

/// Applies one object if it is missing or differs.
async fn apply_one(
    cluster: &Cluster,
    object: &DesiredObject,
    live: Option<Value>,
    entry: Option<InventoryEntry>,
) -> Result<Applied, ClusterError> {
    let reference = &object.reference;
    let mut adopted = false;
    // Heimdall's, but another tenant's: adopting it needs a take-over or shared policy.
    let tenant_of = |o: &Value| o.pointer("/metadata/labels/heimdall.dev~1tenant").and_then(Value::as_str).map(String::from);
    if let Some(live) = &live
        && !object.hints.adopt
        && tenant_of(live).is_some()
        && tenant_of(live) != tenant_of(&object.object)
    {
        return Err(ClusterError::Api {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!(
                "{reference} exists and is tenant {}'s; a take-over or shared-resource policy adopts it",
                tenant_of(live).unwrap_or_default()
            ),
        });
    }
    let live = match (live, &entry) {
        (Some(live), _) => Some(live),
        (None, Some(_)) => None,
        // Never applied by us and not labelled as ours: it may be someone else's.
        (None, None) => match cluster.get(reference).await {
            Ok(Some(existing)) if object.hints.adopt => {
                adopted = true;
                Some(existing)
            }
            Ok(Some(_)) => {
                return Err(ClusterError::Api {
                    code: 409,
                    reason: "AlreadyExists".into(),
                    message: format!("{reference} exists and is not managed by Heimdall; a take-over or shared-resource policy adopts it"),
                });
            }
            Ok(None) | Err(ClusterError::UnknownKind { .. }) => None,
            Err(e) => return Err(e),
        },
    };
    let mut desired = object.object.clone();
    if let (Some(paths), Some(live)) = (&object.hints.apply_once, &live) {
        if paths.is_empty() {
            return Ok(Applied { step: Step::Unchanged, adopted, repaired: false });
        }
        for path in paths {
            if let Some(value) = value_at(live, path) {
                set_at(&mut desired, path, value.clone());
            }
        }
    }
    let needed = live.as_ref().is_none_or(|l| drifted(&desired, l));
    if !needed {
        return Ok(Applied { step: Step::Unchanged, adopted, repaired: false });
    }
    // Applied before at this very content, yet different now: someone changed it underneath.
    let repaired = entry.is_some_and(|e| e.digest == object.digest);
    if let Some(live) = &live {
        let recreate = object.hints.recreate_fields.iter().any(|f| value_at(&desired, f) != value_at(live, f));
        if recreate {
            cluster.delete_as(&object.identity, reference).await?;
        }
    }
    let applied = cluster.apply_as(&object.identity, reference, &desired).await?;
    Ok(Applied { step: Step::Applied(applied), adopted, repaired })
}

async fn wait_established(cluster: &Cluster, crds: &[ObjectRef], outcome: &mut Outcome) {
    let deadline = tokio::time::Instant::now() + CRD_ESTABLISH_TIMEOUT;
    for crd in crds {
        loop {
            let established = match cluster.get(crd).await {
                Ok(Some(object)) => health::assess(Some(&object)).health == Health::Healthy,
                _ => false,
            };
            if established {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                outcome.errors.push(ObjectError {
                    object: crd.to_string(),
                    folder: String::new(),
                    message: format!("not established after {}s", CRD_ESTABLISH_TIMEOUT.as_secs()),
                });
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Deletes what the agent applied and is no longer desired, workloads
/// before Namespaces before CRDs, honouring garbage-collection hints.
/// Deletes what the inventory says the agent applied, is no longer desired,
/// and is still labelled as Heimdall's. An object whose label is gone is
/// someone else's now: it is forgotten, not deleted. A kind that could not
/// be listed prunes nothing this pass.
async fn prune(
    cluster: &Cluster,
    desired: &Desired,
    inventory: &mut Inventory,
    labelled: &Labelled<'_>,
    outcome: &mut Outcome,
    concurrency: usize,
) {
    let folders = desired.folders();
    let broken: BTreeSet<&str> = desired.errors.iter().filter_map(|e| crate::desired::folder_of(&e.path)).collect();
    let mut doomed: Vec<(ObjectRef, String, Identity)> = Vec::new();
    inventory.entries.retain(|reference, entry| {
        if desired.objects.contains_key(reference) || broken.contains(entry.folder.as_str()) {
            return true;
        }
        if entry.adopted || entry.gc == GarbageCollect::Never {
            return false;
        }
        if entry.gc == GarbageCollect::OnAppDelete && folders.contains(entry.folder.as_str()) {
            return true;
        }
        if !labelled.knows(reference) {
            return true;
        }
        if !labelled.is_heimdalls(reference) {
            tracing::info!(object = %reference, "gone, or no longer labelled as Heimdall's: forgotten, not deleted");
            return false;
        }
        doomed.push((reference.clone(), entry.folder.clone(), entry.identity()));
        true
    });
    let rank = |r: &ObjectRef| match r.kind.as_str() {
        "CustomResourceDefinition" => 2,
        "Namespace" => 1,
        _ => 0,
    };
    for level in 0..3 {
        let batch: Vec<&(ObjectRef, String, Identity)> = doomed.iter().filter(|(r, _, _)| rank(r) == level).collect();
        let work: Vec<_> = batch
            .into_iter()
            .map(|(reference, folder, identity)| cluster.delete_as(identity, reference).map(move |r| (reference, folder, r)).boxed())
            .collect();
        let results: Vec<_> = futures::stream::iter(work).buffer_unordered(concurrency.max(1)).collect().await;
        for (reference, folder, result) in results {
            match result {
                Ok(existed) => {
                    inventory.entries.remove(reference);
                    if existed {
                        tracing::info!(object = %reference, "pruned");
                        outcome.pruned.push(reference.clone());
                    }
                }
                Err(ClusterError::UnknownKind { .. }) => {
                    inventory.entries.remove(reference);
                }
                Err(e) => outcome.errors.push(ObjectError {
                    object: reference.to_string(),
                    folder: folder.clone(),
                    message: format!("prune: {e}"),
                }),
            }
        }
    }
}

/// Health and sync of each application folder.
async fn assess(
    cluster: &Cluster,
    desired: &Desired,
    live: &BTreeMap<ObjectRef, Value>,
    errors: &[ObjectError],
) -> BTreeMap<String, FolderStatus> {
    let has = |kinds: &[&str]| desired.objects.keys().any(|r| kinds.contains(&r.kind.as_str()));
    let pods = if has(&["Deployment", "StatefulSet", "DaemonSet", "Job"]) {
        cluster.list("v1", "Pod", well_known::APP).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let slices = if has(&["Service"]) {
        cluster.list("discovery.k8s.io/v1", "EndpointSlice", "kubernetes.io/service-name").await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut folders: BTreeMap<String, FolderStatus> = BTreeMap::new();
    for object in desired.objects.values() {
        let status = folders.entry(object.folder.clone()).or_insert_with(|| FolderStatus {
            sync: "Synced".into(),
            health: Health::Healthy,
            messages: Vec::new(),
            objects: 0,
            claims: Vec::new(),
        });
        status.objects += 1;
        let current = live.get(&object.reference);
        if let Some((claim, composition)) = instance_of(&object.object) {
            let (ready, said) = health::claim_readiness(current);
            let index = match status.claims.iter().position(|c| c.claim == claim && c.composition == composition) {
                Some(index) => index,
                None => {
                    status.claims.push(ClaimHealth { claim, composition, ready: true, messages: Vec::new() });
                    status.claims.len() - 1
                }
            };
            let entry = &mut status.claims[index];
            entry.ready &= ready;
            entry.messages.push(format!("{}: {said}", object.reference));
        }
        let mut verdict = health::assess(current);
        if verdict.health == Health::Healthy
            && let Some(current) = current
        {
            let namespace = &object.reference.namespace;
            let problem = match object.reference.kind.as_str() {
                "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
                    let app = current.pointer("/spec/template/metadata/labels/heimdall.dev~1app").and_then(Value::as_str);
                    pods.iter()
                        .filter(|p| p.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace))
                        .filter(|p| app.is_some() && p.pointer("/metadata/labels/heimdall.dev~1app").and_then(Value::as_str) == app)
                        .find_map(health::pod_problem)
                }
                "Service" => {
                    let local: Vec<&Value> =
                        slices.iter().filter(|s| s.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)).collect();
                    health::service_without_endpoints(current, &local)
                }
                _ => None,
            };
            if let Some(message) = problem {
                let health = if object.reference.kind == "Service" { Health::Progressing } else { Health::Degraded };
                verdict = health::Assessment { health, message: Some(message) };
            }
        }
        if verdict.health > Health::Healthy
            && let Some(message) = verdict.message
        {
            status.messages.push(format!("{}: {message}", object.reference));
        }
        status.health = status.health.max(verdict.health);
    }
    for error in errors {
        if let Some(status) = folders.get_mut(&error.folder) {
            status.sync = "Failed".into();
            status.messages.push(format!("{}: {}", error.object, error.message));
        }
    }
    for error in &desired.errors {
        // A folder whose every file is unreadable still reports, as failed.
        if let Some(folder) = crate::desired::folder_of(&error.path) {
            let status = folders.entry(folder.to_string()).or_insert_with(|| FolderStatus {
                sync: "Failed".into(),
                health: Health::Missing,
                messages: Vec::new(),
                objects: 0,
                claims: Vec::new(),
            });
            status.sync = "Failed".into();
            status.messages.push(error.to_string());
        }
    }
    for status in folders.values_mut() {
        status.messages.truncate(10);
    }
    folders
}
