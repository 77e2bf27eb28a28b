//! A Tenant's own manifests, per isolation mode, and the guardrails a tenant
//! puts on its applications. Like applications, these become folders in the
//! cluster repositories, so tenancy is delivered by GitOps too.
//!
//! - `namespace`: in every cluster of each allowed environment, the tenant's
//!   namespaces with Pod Security Admission labels, RoleBindings from the
//!   tenant's members to `admin`/`edit`/`view`, a ResourceQuota and
//!   LimitRange from the environment's quota, and NetworkPolicies that admit
//!   only the tenant itself and the namespaces the tenant lists.
//! - `vcluster`: a vCluster (pinned chart version) in the tenant's host
//!   namespace, whose quota bounds everything the virtual cluster runs.
//! - `cluster`: a request for a dedicated cluster (Cluster API or a
//!   Crossplane claim) in the management cluster's repository.

use std::collections::BTreeMap;

use heimdall_model::spec::deserialize_at;
use heimdall_model::spec::tenant::{ClusterProvider, Isolation, KindRule, NamespaceMode, Quota, SubjectKind, TenantRole, TenantSpec};
use heimdall_model::{Problem, Resource};
use serde_json::{Value, json};

use crate::object::{self, Object, json_merge_patch, map_at};
use crate::platform::Platform;
use crate::render::{Rendered, Target, revision, sort_objects};
use crate::validate;
use heimdall_api::labels as well_known;

/// The vCluster release Heimdall renders (chart and syncer image).
pub const VCLUSTER_VERSION: &str = "0.20.0";
const VCLUSTER_IMAGE: &str = "ghcr.io/loft-sh/vcluster-oss";

/// The namespaces `tenant` owns for `app`: where its applications may deploy.
pub fn owns_namespace(tenant: &str, spec: &TenantSpec, app: &str, namespace: &str) -> bool {
    match spec.namespaces {
        NamespaceMode::PerTenant => {
            namespace == tenant || spec.extra_namespaces.iter().any(|extra| namespace == format!("{tenant}-{extra}"))
        }
        NamespaceMode::PerApp => {
            let own = format!("{tenant}-{app}");
            namespace == own || namespace.strip_prefix(&own).is_some_and(|rest| rest.starts_with('-'))
        }
    }
}

/// Namespaces no tenant may own: Kubernetes' own and Heimdall's.
fn reserved_namespace(namespace: &str) -> bool {
    namespace == "default"
        || namespace.starts_with("kube-")
        || namespace == well_known::TENANT_IDENTITY_NAMESPACE
        || namespace == "heimdall-system"
}

/// Every tenant owns its namespaces alone: a Tenant whose namespaces could
/// be another's (`shop` in `perApp` mode owns every `shop-*`, so a tenant
/// `shop-web` would share one), or Kubernetes' or Heimdall's, is refused.
pub(crate) fn check_tenant_namespaces(tenants: &BTreeMap<String, TenantSpec>) -> Vec<heimdall_model::DocumentError> {
    let explicit = |name: &str, spec: &TenantSpec| -> Vec<String> {
        std::iter::once(name.to_string()).chain(spec.extra_namespaces.iter().map(|extra| format!("{name}-{extra}"))).collect()
    };
    let mut errors = Vec::new();
    for (name, spec) in tenants {
        let mut problems = Vec::new();
        let own = match spec.namespaces {
            NamespaceMode::PerTenant => explicit(name, spec),
            NamespaceMode::PerApp => Vec::new(),
        };
        for namespace in own.iter().filter(|ns| reserved_namespace(ns)) {
            problems.push(Problem::new(
                if namespace == name { "metadata.name" } else { "spec.extraNamespaces" },
                format!("namespace {namespace} is Kubernetes' or Heimdall's own; no tenant may own it"),
            ));
        }
        if spec.namespaces == NamespaceMode::PerApp && (name.starts_with("kube") || name == "heimdall") {
            problems.push(Problem::new(
                "spec.namespaces",
                format!("perApp would give tenant {name} the namespaces {name}-*, which are Kubernetes' or Heimdall's"),
            ));
        }
        for (other, other_spec) in tenants.iter().filter(|(other, _)| *other != name) {
            let shared = match (spec.namespaces, other_spec.namespaces) {
                (NamespaceMode::PerTenant, NamespaceMode::PerTenant) => {
                    let theirs = explicit(other, other_spec);
                    own.iter().find(|ns| theirs.contains(ns)).cloned()
                }
                (NamespaceMode::PerTenant, NamespaceMode::PerApp) => own.iter().find(|ns| ns.starts_with(&format!("{other}-"))).cloned(),
                (NamespaceMode::PerApp, NamespaceMode::PerTenant) => {
                    explicit(other, other_spec).into_iter().find(|ns| ns.starts_with(&format!("{name}-")))
                }
                (NamespaceMode::PerApp, NamespaceMode::PerApp) => (other.starts_with(&format!("{name}-"))
                    || name.starts_with(&format!("{other}-")))
                .then(|| format!("{}-…", name.max(other))),
            };
            if let Some(namespace) = shared {
                problems.push(Problem::new(
                    "metadata.name",
                    format!("tenant {name} and tenant {other} would both own namespace {namespace}: a namespace belongs to one tenant"),
                ));
            }
        }
        if !problems.is_empty() {
            errors.push(heimdall_model::DocumentError::new(format!("Tenant {name}"), problems));
        }
    }
    errors
}

/// Where an application of the tenant goes when nothing says.
pub fn default_namespace(tenant: &str, spec: &TenantSpec, app: &str) -> String {
    match spec.namespaces {
        NamespaceMode::PerTenant => tenant.to_string(),
        NamespaceMode::PerApp => format!("{tenant}-{app}"),
    }
}

fn stamp(object: &mut Object, tenant: &str, environment: Option<&str>) {
    let labels = map_at(object, &["metadata", "labels"]);
    labels.insert(well_known::MANAGED_BY.0.into(), json!(well_known::MANAGED_BY.1));
    labels.insert(well_known::TENANT.into(), json!(tenant));
    if let Some(environment) = environment {
        labels.insert(well_known::ENVIRONMENT.into(), json!(environment));
    }
    let annotations = map_at(object, &["metadata", "annotations"]);
    annotations.insert(well_known::SOURCE.into(), json!(format!("Tenant {tenant}")));
    annotations.insert(well_known::APPLY_AS.into(), json!(well_known::APPLY_AS_PLATFORM));
}

/// Everything one tenant namespace needs: the Namespace, RBAC, quota,
/// container defaults and network isolation. Used by the tenant's own
/// render (`perTenant`) and by each application's (`perApp`).
pub fn namespace_objects(platform: &Platform, tenant: &str, spec: &TenantSpec, namespace: &str, environment: Option<&str>) -> Vec<Object> {
    let level = spec.pod_security.as_str();
    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/audit": level,
                "pod-security.kubernetes.io/warn": level,
            },
        },
    })];
    for role in TenantRole::ALL {
        let subjects: Vec<Value> = spec
            .members
            .iter()
            .filter(|m| m.role == role)
            .map(|m| {
                let kind = match m.kind {
                    SubjectKind::User => "User",
                    SubjectKind::Group => "Group",
                };
                json!({"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": m.name})
            })
            .collect();
        if subjects.is_empty() {
            continue;
        }
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": format!("heimdall-tenant-{}", role.as_str()), "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.cluster_role()},
            "subjects": subjects,
        }));
    }
    objects.extend(identity_rights(platform, tenant, spec, namespace));
    if let Some(quota) = environment.and_then(|e| spec.quota_for(e)) {
        objects.extend(quota_objects(quota, namespace));
    }
    if spec.network.isolate {
        objects.extend(network_policies(tenant, spec, namespace));
    }
    for object in &mut objects {
        stamp(object, tenant, environment);
    }
    objects
}

/// Kubernetes' guess from a kind to its resource (`UnsafeGuessKindToResource`),
/// which every built-in kind Heimdall lets tenants deploy follows.
pub fn resource_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with("endpoints") {
        lower
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// RBAC rules for kind rules: one per API group.
fn rules_for<'a>(rules: impl Iterator<Item = &'a KindRule>) -> Vec<Value> {
    let mut by_group: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for rule in rules {
        let resources = by_group.entry(rule.api_group.as_str()).or_default();
        for kind in &rule.kinds {
            resources.insert(if kind == "*" { "*".to_string() } else { resource_of(kind) });
        }
    }
    by_group
        .into_iter()
        .map(|(group, resources)| {
            let resources: Vec<String> = if resources.contains("*") { vec!["*".into()] } else { resources.into_iter().collect() };
            json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]})
        })
        .collect()
}

/// The kinds the tenant's identity may write in its namespaces: whatever
/// any of its members may deploy (the owners' kinds and the Tenant's own).
fn namespaced_kinds<'a>(platform: &'a Platform, spec: &'a TenantSpec) -> impl Iterator<Item = &'a KindRule> {
    let objects = &platform.defaults.tenant_objects;
    objects.developer.iter().chain(objects.owner.iter()).chain(spec.allowed_objects.iter().filter(|rule| {
        !rule.kinds.iter().all(|kind| kind != "*" && crate::validate::is_cluster_scoped(&format!("{}/v1", rule.api_group), kind))
    }))
}

/// The Role and RoleBinding that let the tenant's identity (which the agent
/// impersonates to apply the tenant's applications) write its kinds in `namespace`.
fn identity_rights(platform: &Platform, tenant: &str, spec: &TenantSpec, namespace: &str) -> Vec<Object> {
    let subject = json!([{"kind": "ServiceAccount", "name": tenant, "namespace": well_known::TENANT_IDENTITY_NAMESPACE}]);
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": well_known::TENANT_APPLY_ROLE, "namespace": namespace},
            "rules": rules_for(namespaced_kinds(platform, spec)),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": well_known::TENANT_APPLY_ROLE, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": well_known::TENANT_APPLY_ROLE},
            "subjects": subject,
        }),
    ]
}

/// The tenant's identity in a cluster: its ServiceAccount in the identity
/// namespace and, for the cluster-scoped kinds its Tenant names, a
/// ClusterRole bound to it. Its namespaced rights come with each namespace.
fn identity(tenant: &str, spec: &TenantSpec) -> Vec<Object> {
    let mut objects = vec![json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": tenant, "namespace": well_known::TENANT_IDENTITY_NAMESPACE},
        "automountServiceAccountToken": false,
    })];
    let cluster_kinds: Vec<KindRule> = spec
        .allowed_objects
        .iter()
        .map(|rule| KindRule {
            api_group: rule.api_group.clone(),
            kinds: rule
                .kinds
                .iter()
                .filter(|kind| *kind != "*" && crate::validate::is_cluster_scoped(&format!("{}/v1", rule.api_group), kind))
                .cloned()
                .collect(),
        })
        .filter(|rule| !rule.kinds.is_empty())
        .collect();
    if !cluster_kinds.is_empty() {
        let name = format!("heimdall-tenant-{tenant}");
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": rules_for(cluster_kinds.iter()),
        }));
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": tenant, "namespace": well_known::TENANT_IDENTITY_NAMESPACE}],
        }));
    }
    objects
}

fn quota_objects(quota: &Quota, namespace: &str) -> Vec<Object> {
    let mut hard = serde_json::Map::new();
    if let Some(cpu) = &quota.cpu {
        hard.insert("requests.cpu".into(), json!(cpu));
    }
    if let Some(memory) = &quota.memory {
        hard.insert("requests.memory".into(), json!(memory));
        hard.insert("limits.memory".into(), json!(memory));
    }
    if let Some(storage) = &quota.storage {
        hard.insert("requests.storage".into(), json!(storage));
    }
    for (name, count) in &quota.objects {
        hard.insert(name.clone(), json!(count.to_string()));
    }
    let mut objects = Vec::new();
    if !hard.is_empty() {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "heimdall-tenant-quota", "namespace": namespace},
            "spec": {"hard": hard},
        }));
    }
    // A quota on CPU or memory refuses pods that state no requests; the
    // LimitRange gives such containers defaults instead.
    let compute_quota = quota.cpu.is_some() || quota.memory.is_some();
    if compute_quota || quota.default_request.is_some() || quota.default_limit.is_some() {
        let default_request = quota
            .default_request
            .clone()
            .unwrap_or_else(|| BTreeMap::from([("cpu".to_string(), "100m".to_string()), ("memory".to_string(), "128Mi".to_string())]));
        let default_limit = quota.default_limit.clone().unwrap_or_else(|| BTreeMap::from([("memory".to_string(), "512Mi".to_string())]));
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "heimdall-tenant-defaults", "namespace": namespace},
            "spec": {"limits": [{"type": "Container", "defaultRequest": default_request, "default": default_limit}]},
        }));
    }
    objects
}

fn network_policies(tenant: &str, spec: &TenantSpec, namespace: &str) -> Vec<Object> {
    let policy = |name: &str, ingress: Value| {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
        })
    };
    let mut policies = vec![
        // Selecting every pod for Ingress with no rule denies all ingress;
        // the policies below add what is allowed (policies are additive).
        policy("heimdall-deny-ingress", json!([])),
        policy("heimdall-allow-same-tenant", json!([{"from": [{"namespaceSelector": {"matchLabels": {(well_known::TENANT): tenant}}}]}])),
    ];
    if !spec.network.allow_from_namespaces.is_empty() {
        policies.push(policy(
            "heimdall-allow-platform",
            json!([{"from": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In", "values": spec.network.allow_from_namespaces,
            }]}}]}]),
        ));
    }
    policies
}

/// The vCluster chart's objects for a tenant in host namespace `namespace`.
fn vcluster_objects(tenant: &str, spec: &TenantSpec, namespace: &str) -> Vec<Object> {
    let name = format!("{tenant}-vcluster");
    let mut values = json!({
        "controlPlane": {
            "distro": {"k8s": {"enabled": true}},
            "backingStore": {"database": {"embedded": {"enabled": true}}},
            "statefulSet": {"image": {"registry": "ghcr.io", "repository": "loft-sh/vcluster-oss", "tag": VCLUSTER_VERSION}},
        },
        "sync": {"toHost": {"pods": {"enabled": true}, "services": {"enabled": true}, "persistentVolumeClaims": {"enabled": true}}},
        "policies": {"podSecurityStandard": spec.pod_security.as_str()},
    });
    if let Some(overrides) = spec.vcluster.as_ref().and_then(|v| v.values.as_ref()) {
        json_merge_patch(&mut values, overrides);
    }
    let labels = json!({"app": "vcluster", "release": name});
    // JSON is YAML: vCluster reads it as its vcluster.yaml.
    let config = serde_json::to_string_pretty(&values).unwrap_or_default();
    vec![
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": format!("vc-{name}"), "namespace": namespace, "labels": labels},
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("vc-config-{name}"), "namespace": namespace, "labels": labels},
            "type": "Opaque",
            "stringData": {"config.yaml": config},
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("vc-{name}"), "namespace": namespace, "labels": labels},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "pods", "pods/attach", "pods/portforward", "pods/exec", "persistentvolumeclaims"],
                 "verbs": ["create", "delete", "patch", "update", "get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["endpoints", "events", "pods/log"], "verbs": ["create", "delete", "patch", "update", "get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["statefulsets", "replicasets", "deployments"], "verbs": ["get", "list", "watch"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("vc-{name}"), "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("vc-{name}")},
            "subjects": [{"kind": "ServiceAccount", "name": format!("vc-{name}"), "namespace": namespace}],
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"type": "ClusterIP", "selector": labels,
                     "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]},
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("{name}-headless"), "namespace": namespace, "labels": labels},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": labels,
                     "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]},
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "serviceName": format!("{name}-headless"),
                "replicas": 1,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": format!("vc-{name}"),
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 12345, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "syncer",
                            "image": format!("{VCLUSTER_IMAGE}:{VCLUSTER_VERSION}"),
                            "ports": [{"name": "https", "containerPort": 8443}],
                            "env": [{"name": "VCLUSTER_NAME", "value": name}],
                            "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "vcluster-config", "mountPath": "/var/lib/vcluster", "readOnly": true},
                            ],
                        }],
                        "volumes": [{"name": "vcluster-config", "secret": {"secretName": format!("vc-config-{name}")}}],
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
                }],
            },
        }),
    ]
}

/// The request for a tenant's dedicated cluster.
fn cluster_request(tenant: &str, spec: &TenantSpec, namespace: &str) -> Vec<Object> {
    let Some(request) = &spec.cluster else { return Vec::new() };
    let name = format!("{tenant}-cluster");
    let object = match request.provider {
        ClusterProvider::ClusterApi => json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "Cluster",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "topology": {
                    "class": request.class,
                    "version": request.kubernetes_version,
                    "workers": {"machineDeployments": [{"class": "default-worker", "name": "md-0", "replicas": request.workers}]},
                },
            },
        }),
        ClusterProvider::Crossplane => {
            let mut parameters = json!({"kubernetesVersion": request.kubernetes_version, "nodeCount": request.workers});
            if let Some(extra) = &request.parameters {
                json_merge_patch(&mut parameters, extra);
            }
            json!({
                "apiVersion": request.claim_api_version,
                "kind": request.claim_kind,
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"parameters": parameters, "writeConnectionSecretToRef": {"name": format!("{name}-kubeconfig")}},
            })
        }
    };
    vec![object]
}

/// Renders a Tenant's manifests into targets, one per cluster.
pub(crate) fn render_tenant(tenant: &Resource, platform: &Platform) -> Result<Rendered, Vec<Problem>> {
    let spec: TenantSpec =
        if tenant.spec.is_null() { TenantSpec::default() } else { deserialize_at(&tenant.spec, "spec").map_err(|p| vec![p])? };
    let name = tenant.metadata.name.as_str();
    let mut targets: BTreeMap<String, (Option<String>, Vec<Object>)> = BTreeMap::new();
    let mut problems = Vec::new();
    // In the clusters of its environments, in every mode: where its applications run.
    for (i, environment) in spec.environments.iter().enumerate() {
        let Some(env) = platform.environments.get(environment) else {
            problems.push(Problem::new(format!("spec.environments[{i}]"), format!("no Environment named {environment:?}")));
            continue;
        };
        for cluster in platform.clusters_of(env) {
            let mut objects = match (spec.isolation, spec.namespaces) {
                (Isolation::Namespace | Isolation::Cluster, NamespaceMode::PerTenant) => std::iter::once(name.to_string())
                    .chain(spec.extra_namespaces.iter().map(|extra| format!("{name}-{extra}")))
                    .flat_map(|namespace| namespace_objects(platform, name, &spec, &namespace, Some(environment)))
                    .collect(),
                // Each application brings its own namespace.
                (Isolation::Namespace | Isolation::Cluster, NamespaceMode::PerApp) => Vec::new(),
                (Isolation::Vcluster, _) => {
                    // Members reach the virtual cluster through its own API, not the host's.
                    let host = TenantSpec { members: Vec::new(), ..spec.clone() };
                    let mut objects = namespace_objects(platform, name, &host, name, Some(environment));
                    objects.extend(vcluster_objects(name, &spec, name));
                    objects
                }
            };
            objects.extend(identity(name, &spec));
            targets.entry(cluster.name.clone()).or_insert((Some(environment.clone()), objects));
        }
    }
    if spec.isolation == Isolation::Cluster
        && let Some(request) = &spec.cluster
    {
        if !platform.has_cluster(&request.management_cluster) {
            problems.push(Problem::new("spec.cluster.managementCluster", format!("no Cluster named {:?}", request.management_cluster)));
        }
        let (_, objects) = targets.entry(request.management_cluster.clone()).or_insert((None, Vec::new()));
        if !objects.iter().any(|o| object::kind(o) == "Namespace" && object::name(o) == name) {
            objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        }
        objects.extend(cluster_request(name, &spec, name));
    }
    let mut rendered = Vec::new();
    for (cluster, (environment, mut objects)) in targets {
        if objects.is_empty() {
            continue;
        }
        for object in &mut objects {
            stamp(object, name, environment.as_deref());
            if let Err(found) = validate::check(object) {
                let what = format!("{} {}", object::kind(object), object::name(object));
                problems.extend(
                    found.into_iter().map(|(path, message)| Problem::new("spec", format!("renders an invalid {what}: {path}: {message}"))),
                );
            }
        }
        sort_objects(&mut objects);
        rendered.push(Target {
            revision: revision(&objects),
            cluster,
            namespace: name.to_string(),
            environment,
            held_by: None,
            objects,
            references: Vec::new(),
            secrets: Vec::new(),
            claims: Vec::new(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Rendered { targets: rendered, workflow: Vec::new(), findings: Vec::new(), warnings: Vec::new(), generate: Vec::new() })
}
