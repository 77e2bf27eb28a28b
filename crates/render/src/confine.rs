//! What a tenant's application may put in a cluster, decided per rendered
//! object. Every object a tenant's application renders passes through
//! [`Confinement::check`], whatever made it: a built-in component type or
//! trait, a platform team's definition, a `k8s-objects` component, a
//! workflow step, a Score workload. Content the platform team authored
//! (tenant scaffolding, capability compositions, the hub's secret delivery)
//! is marked as such by the renderer and keeps its rights.
//!
//! The rules, in the order a refusal names them:
//! 1. kinds that act on the whole cluster are never a tenant's
//!    ([`never_for_tenants`]: Namespaces, CRDs, webhooks, cluster RBAC...);
//! 2. a cluster-scoped kind only where the Tenant's `allowedObjects` lists it;
//! 3. a namespaced object only in the tenant's namespaces;
//! 4. only the kinds the writer's role may deploy (`Defaults.spec.tenantObjects`
//!    per role, plus the Tenant's `allowedObjects`);
//! 5. references (any `namespace` field) only to the tenant's namespaces or
//!    the platform's shared ones;
//! 6. a RoleBinding binds only a Role of its namespace to ServiceAccounts
//!    of the tenant's namespaces: members come from the Tenant.
//!
//! The agent applies the same objects impersonating the tenant's identity,
//! which the tenancy renderer binds to exactly these kinds in exactly these
//! namespaces, so the cluster enforces the rules a second time.

use heimdall_model::spec::tenant::{KindRule, NamespaceMode, TenantRole, TenantSpec, never_for_tenants};
use serde_json::Value;

use crate::object::{self, Object};
use crate::platform::Platform;
use crate::validate;

/// The API group of an `apiVersion` (`""` for the core group).
pub fn api_group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

fn describe_group(group: &str) -> String {
    if group.is_empty() { "the core API group".to_string() } else { format!("API group {group}") }
}

/// One tenant's rules for one application, for changes by one role.
pub struct Confinement<'a> {
    tenant: &'a str,
    spec: &'a TenantSpec,
    app: &'a str,
    /// Namespaced kinds the writer may deploy.
    kinds: Vec<&'a KindRule>,
    role: TenantRole,
    shared: &'a [String],
}

impl<'a> Confinement<'a> {
    /// `role`: the role of whoever makes the change; `None` (a re-render of
    /// what was admitted, or a platform admin's change) is the most any
    /// member may deploy, the owners'.
    pub fn new(platform: &'a Platform, tenant: &'a str, spec: &'a TenantSpec, app: &'a str, role: Option<TenantRole>) -> Self {
        let role = role.unwrap_or(TenantRole::Owner);
        let objects = &platform.defaults.tenant_objects;
        let mut kinds: Vec<&KindRule> = objects.developer.iter().collect();
        if role >= TenantRole::Owner {
            kinds.extend(objects.owner.iter());
        }
        kinds.extend(spec.allowed_objects.iter());
        Confinement { tenant, spec, app, kinds, role, shared: &objects.shared_namespaces }
    }

    /// Whether namespace `namespace` is one of the tenant's (for this application, in `perApp` mode).
    fn owns(&self, namespace: &str) -> bool {
        crate::tenant::owns_namespace(self.tenant, self.spec, self.app, namespace)
    }

    /// Whether `namespace` is any of the tenant's (another application's, in `perApp` mode).
    fn owns_any(&self, namespace: &str) -> bool {
        match self.spec.namespaces {
            NamespaceMode::PerTenant => self.owns(namespace),
            NamespaceMode::PerApp => namespace.strip_prefix(self.tenant).is_some_and(|rest| rest.starts_with('-') && rest.len() > 1),
        }
    }

    fn namespaces(&self) -> String {
        match self.spec.namespaces {
            NamespaceMode::PerTenant => std::iter::once(self.tenant.to_string())
                .chain(self.spec.extra_namespaces.iter().map(|extra| format!("{}-{extra}", self.tenant)))
                .collect::<Vec<_>>()
                .join(", "),
            NamespaceMode::PerApp => format!("{}-{}", self.tenant, self.app),
        }
    }

    /// Every rule `object` breaks, each as a sentence naming the rule.
    pub fn check(&self, object: &Object) -> Vec<String> {
        let (api_version, kind) = (object::api_version(object), object::kind(object));
        let group = api_group(api_version);
        let tenant = self.tenant;
        if never_for_tenants(group, kind) {
            return vec![format!(
                "{kind} ({}) is never a tenant's: it acts on the whole cluster; only the platform team deploys it",
                describe_group(group)
            )];
        }
        let mut broken = Vec::new();
        if validate::is_cluster_scoped(api_version, kind) {
            if !self.spec.allowed_objects.iter().any(|rule| rule.allows(group, kind)) {
                broken.push(format!(
                    "{kind} is cluster-scoped; tenant {tenant} may deploy a cluster-scoped kind only where its Tenant's spec.allowedObjects lists it"
                ));
            }
        } else {
            let namespace = object::namespace(object).unwrap_or_default();
            if !self.owns(namespace) {
                broken.push(format!("namespace {namespace} is not tenant {tenant}'s (its namespaces: {})", self.namespaces()));
            }
            if !self.kinds.iter().any(|rule| rule.allows(group, kind)) {
                let who = if self.role >= TenantRole::Owner { "owners" } else { "developers" };
                broken.push(format!(
                    "{kind} ({}) is not a kind tenant {who} may deploy (Defaults spec.tenantObjects, Tenant {tenant} spec.allowedObjects)",
                    describe_group(group)
                ));
            }
        }
        let mut references = Vec::new();
        namespace_references(object, "", &mut references);
        for (path, namespace) in references {
            if !self.owns_any(&namespace) && !self.shared.contains(&namespace) {
                broken.push(format!("{path} refers to namespace {namespace}, which is not tenant {tenant}'s"));
            }
        }
        if group == "rbac.authorization.k8s.io" && kind == "RoleBinding" {
            broken.extend(self.role_binding(object));
        }
        broken.extend(dangerous_fields(group, kind, object));
        broken
    }

    /// A tenant's RoleBinding may give a Role of its own namespace to the
    /// tenant's ServiceAccounts; people and groups are the Tenant's members.
    fn role_binding(&self, binding: &Object) -> Vec<String> {
        let mut broken = Vec::new();
        let role_ref = binding.get("roleRef").and_then(Value::as_object);
        let ref_kind = role_ref.and_then(|r| r.get("kind")).and_then(Value::as_str).unwrap_or_default();
        if ref_kind != "Role" {
            let name = role_ref.and_then(|r| r.get("name")).and_then(Value::as_str).unwrap_or_default();
            broken.push(format!("roleRef: a tenant's RoleBinding may bind only a Role of its own namespace, not {ref_kind} {name}"));
        }
        let subjects = binding.get("subjects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (i, subject) in subjects.iter().enumerate() {
            let kind = subject.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind != "ServiceAccount" {
                let name = subject.get("name").and_then(Value::as_str).unwrap_or_default();
                broken.push(format!(
                    "subjects[{i}]: a tenant's RoleBinding may bind only the tenant's ServiceAccounts, not {kind} {name:?}; people and groups get their rights as the Tenant's spec.members"
                ));
            }
        }
        broken
    }
}

/// Fields of kinds a tenant may deploy that reach beyond the tenant anyway:
/// a Service's `externalIPs` takes over traffic to any address
/// (CVE-2020-8554), and ingress-nginx's snippet annotations run
/// configuration in the controller every tenant shares.
fn dangerous_fields(group: &str, kind: &str, object: &Object) -> Vec<String> {
    let mut broken = Vec::new();
    if group.is_empty()
        && kind == "Service"
        && object.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|ips| !ips.is_empty())
    {
        broken.push("spec.externalIPs would take over traffic to those addresses in the whole cluster (CVE-2020-8554)".to_string());
    }
    if group == "networking.k8s.io" && kind == "Ingress" {
        let annotations = object.pointer("/metadata/annotations").and_then(Value::as_object);
        for key in annotations.into_iter().flatten().map(|(key, _)| key).filter(|key| key.ends_with("-snippet")) {
            broken.push(format!("metadata.annotations[{key:?}] would run configuration in the ingress controller every tenant shares"));
        }
    }
    broken
}

/// Every string `namespace` field outside `metadata`, with its path
/// (`subjects[0].namespace`, `spec.parentRefs[1].namespace`).
fn namespace_references(value: &Value, path: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if path.is_empty() && key == "metadata" {
                    continue;
                }
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match child {
                    Value::String(namespace) if key == "namespace" => found.push((at, namespace.clone())),
                    other => namespace_references(other, &at, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                namespace_references(item, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant() -> TenantSpec {
        serde_json::from_value(json!({"environments": ["dev"], "extraNamespaces": ["cache"]})).expect("tenant")
    }

    fn check(spec: &TenantSpec, role: Option<TenantRole>, object: Value) -> Vec<String> {
        let platform = Platform::builtin();
        Confinement::new(&platform, "shop", spec, "web", role).check(&object)
    }

    #[test]
    fn workloads_in_the_tenants_namespaces_pass() {
        let spec = tenant();
        for namespace in ["shop", "shop-cache"] {
            let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace}});
            assert_eq!(check(&spec, Some(TenantRole::Developer), deployment), Vec::<String>::new());
        }
    }

    #[test]
    fn each_rule_names_itself() {
        let spec = tenant();
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"}});
        assert!(check(&spec, None, crb)[0].contains("never a tenant's"));
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "x"}});
        assert!(check(&spec, None, pv)[0].contains("cluster-scoped"));
        let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "payments"}});
        assert_eq!(check(&spec, None, elsewhere), ["namespace payments is not tenant shop's (its namespaces: shop, shop-cache)"]);
        let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "x", "namespace": "shop"}});
        assert!(check(&spec, None, quota)[0].contains("not a kind tenant owners may deploy"));
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "x", "namespace": "shop"}});
        assert!(check(&spec, Some(TenantRole::Developer), role.clone())[0].contains("not a kind tenant developers may deploy"));
        assert!(check(&spec, Some(TenantRole::Owner), role).is_empty());
    }

    #[test]
    fn references_and_bindings_stay_inside_the_tenant() {
        let spec = tenant();
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "x", "namespace": "shop"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "payments"},
                         {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]});
        let broken = check(&spec, None, binding);
        assert!(broken.iter().any(|b| b == "subjects[0].namespace refers to namespace payments, which is not tenant shop's"), "{broken:?}");
        assert!(broken.iter().any(|b| b.starts_with("roleRef:") && b.contains("ClusterRole admin")), "{broken:?}");
        assert!(broken.iter().any(|b| b.starts_with("subjects[1]:") && b.contains("system:authenticated")), "{broken:?}");
        let own = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "x", "namespace": "shop"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "shop-cache"}]});
        assert!(check(&spec, None, own).is_empty());
    }

    #[test]
    fn fields_that_reach_beyond_the_tenant_are_refused() {
        let spec = tenant();
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "shop"}, "spec": {"externalIPs": ["10.0.0.1"]}});
        assert!(check(&spec, None, service)[0].contains("CVE-2020-8554"));
        let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x", "namespace": "shop",
            "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "location / { proxy_pass http://payments; }"}}});
        assert!(check(&spec, None, ingress)[0].contains("nginx.ingress.kubernetes.io/server-snippet"));
    }

    #[test]
    fn the_tenant_may_be_given_more() {
        let mut spec = tenant();
        spec.allowed_objects = vec![KindRule::new("", &["PersistentVolume"]), KindRule::new("postgresql.cnpg.io", &["*"])];
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "x"}});
        assert!(check(&spec, Some(TenantRole::Developer), pv).is_empty());
        let db = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": "shop"}});
        assert!(check(&spec, Some(TenantRole::Developer), db).is_empty());
    }
}
