//! `Tenant`: a team's slice of the platform. Who belongs to it and with which
//! role, where it may deploy, how much it may use there, which registries its
//! images come from, and how it is isolated from other tenants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::validation::{check_dns_label, check_qualified_name};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Environments the tenant may deploy to, by name.
    #[serde(default)]
    pub environments: Vec<String>,
    /// People and identity-provider groups, each with a role.
    #[serde(default)]
    pub members: Vec<TenantMember>,
    /// Resource quotas per environment name; `default` applies to
    /// environments without their own entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quotas: BTreeMap<String, Quota>,
    /// Image prefixes the tenant's containers may use (`registry.example.com/shop/`).
    /// Empty: any registry the organization's policies allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_registries: Vec<String>,
    #[serde(default)]
    pub isolation: Isolation,
    /// Namespace mode: one namespace for the tenant, or one per application.
    #[serde(default)]
    pub namespaces: NamespaceMode,
    /// More namespaces of the tenant (`cache` becomes `shop-cache`), in
    /// `perTenant` mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_namespaces: Vec<String>,
    /// The Pod Security Admission level enforced in the tenant's namespaces.
    #[serde(default)]
    pub pod_security: PodSecurityLevel,
    #[serde(default)]
    pub network: NetworkIsolation,
    /// `vcluster` mode settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcluster: Option<VClusterSettings>,
    /// `cluster` mode settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRequest>,
    /// What the tenant's claims may cost a month, summed over every instance
    /// in every environment; a claim that would exceed it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Kinds this tenant's applications may put in its clusters beyond
    /// what `Defaults.spec.tenantObjects` allows every tenant; the only
    /// way a tenant gets a cluster-scoped kind. Platform team only (owners
    /// change `members` and nothing else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_objects: Vec<KindRule>,
}

/// Kinds of one API group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindRule {
    /// The API group: `""` for the core group (ConfigMap, Service), `apps`, `postgresql.cnpg.io`.
    #[serde(default)]
    pub api_group: String,
    /// Kinds of that group, or `*` for all of them.
    pub kinds: Vec<String>,
}

impl KindRule {
    pub fn new(api_group: &str, kinds: &[&str]) -> KindRule {
        KindRule { api_group: api_group.to_string(), kinds: kinds.iter().map(|k| k.to_string()).collect() }
    }

    pub fn allows(&self, api_group: &str, kind: &str) -> bool {
        self.api_group == api_group && self.kinds.iter().any(|k| k == "*" || k == kind)
    }
}

/// What tenants' applications may put in a cluster, per tenant role
/// (`Defaults.spec.tenantObjects`). Only namespaced kinds belong here, and
/// only in the tenant's own namespaces; a tenant's `allowedObjects` adds to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantObjects {
    /// Kinds a change by a developer (or anyone above) may contain.
    #[serde(default = "default_developer_kinds")]
    pub developer: Vec<KindRule>,
    /// Kinds a change by an owner may contain besides the developer's.
    #[serde(default = "default_owner_kinds")]
    pub owner: Vec<KindRule>,
    /// Namespaces besides the tenant's own that its objects may refer to
    /// (a shared Gateway's, say): the value of any `namespace` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_namespaces: Vec<String>,
}

impl Default for TenantObjects {
    fn default() -> Self {
        TenantObjects { developer: default_developer_kinds(), owner: default_owner_kinds(), shared_namespaces: Vec::new() }
    }
}

/// What Kubernetes' `edit` role writes of the workload kinds, and what the
/// built-in component types and traits render.
pub fn default_developer_kinds() -> Vec<KindRule> {
    vec![
        KindRule::new("", &["ConfigMap", "Secret", "Service", "ServiceAccount", "PersistentVolumeClaim", "Pod"]),
        KindRule::new("apps", &["Deployment", "StatefulSet", "DaemonSet"]),
        KindRule::new("batch", &["Job", "CronJob"]),
        KindRule::new("autoscaling", &["HorizontalPodAutoscaler"]),
        KindRule::new("policy", &["PodDisruptionBudget"]),
        KindRule::new("networking.k8s.io", &["Ingress", "NetworkPolicy"]),
    ]
}

/// Owners may also give their workloads' ServiceAccounts namespaced rights.
pub fn default_owner_kinds() -> Vec<KindRule> {
    vec![KindRule::new("rbac.authorization.k8s.io", &["Role", "RoleBinding"])]
}

/// Kinds no tenant object may ever be, whatever the platform allows: they
/// act on the whole cluster (namespaces, nodes, API extensions, admission,
/// cluster-wide RBAC, authentication) or are the hub's own delivery format.
pub const NEVER_TENANT_KINDS: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("apiextensions.k8s.io", "*"),
    ("apiregistration.k8s.io", "*"),
    ("admissionregistration.k8s.io", "*"),
    ("authentication.k8s.io", "*"),
    ("authorization.k8s.io", "*"),
    ("certificates.k8s.io", "*"),
    ("flowcontrol.apiserver.k8s.io", "*"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("secrets.heimdall.dev", "*"),
];

/// Whether no tenant may ever create `kind` of `api_group` (a rule of `*` kinds in such a group included).
pub fn never_for_tenants(api_group: &str, kind: &str) -> bool {
    NEVER_TENANT_KINDS.iter().any(|(group, never)| *group == api_group && (*never == "*" || kind == "*" || *never == kind))
}

/// Identity-provider names Kubernetes keeps for itself (`system:authenticated`,
/// `system:masters`, service accounts) and those Heimdall's impersonation uses.
pub fn is_reserved_subject(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("system:") || lower.starts_with("heimdall:")
}

/// Checks kind rules at `path` (`spec.allowedObjects`).
pub fn check_kind_rules(rules: &[KindRule], path: &str, problems: &mut Vec<Problem>) {
    for (i, rule) in rules.iter().enumerate() {
        if !rule.api_group.is_empty() && crate::validation::check_dns_subdomain(&rule.api_group).is_err() {
            problems.push(Problem::new(format!("{path}[{i}].apiGroup"), format!("{:?} is not an API group name", rule.api_group)));
        }
        if rule.kinds.is_empty() {
            problems.push(Problem::new(format!("{path}[{i}].kinds"), "expected at least one kind, or *"));
        }
        for (j, kind) in rule.kinds.iter().enumerate() {
            let well_formed =
                kind == "*" || (kind.starts_with(|c: char| c.is_ascii_uppercase()) && kind.chars().all(|c| c.is_ascii_alphanumeric()));
            if !well_formed {
                problems.push(Problem::new(
                    format!("{path}[{i}].kinds[{j}]"),
                    format!("{kind:?} is not a Kubernetes kind (ConfigMap, Deployment) nor *"),
                ));
            } else if never_for_tenants(&rule.api_group, kind) {
                let group = if rule.api_group.is_empty() { "the core group".to_string() } else { rule.api_group.clone() };
                problems.push(Problem::new(
                    format!("{path}[{i}].kinds[{j}]"),
                    format!("{kind} of {group} is never a tenant's: it acts on the whole cluster; the platform team deploys it"),
                ));
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    pub monthly: f64,
    /// For display; costs in Capabilities are in the same currency.
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantMember {
    pub kind: SubjectKind,
    pub name: String,
    pub role: TenantRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SubjectKind {
    User,
    Group,
}

/// Ordered by power: an owner may do what a developer may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantRole {
    Viewer,
    Developer,
    Owner,
}

impl TenantRole {
    pub const ALL: [TenantRole; 3] = [TenantRole::Viewer, TenantRole::Developer, TenantRole::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantRole::Viewer => "viewer",
            TenantRole::Developer => "developer",
            TenantRole::Owner => "owner",
        }
    }

    pub fn parse(role: &str) -> Option<TenantRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == role)
    }

    /// The Kubernetes ClusterRole the role maps to inside the tenant's namespaces.
    pub fn cluster_role(self) -> &'static str {
        match self {
            TenantRole::Viewer => "view",
            TenantRole::Developer => "edit",
            TenantRole::Owner => "admin",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// Total CPU requests (`"8"`, `"500m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Total memory requests and limits (`"16Gi"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Total storage requested by volume claims (`"100Gi"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Object counts by ResourceQuota name: `pods`, `services`, `secrets`,
    /// `count/deployments.apps`...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, u64>,
    /// Requests given to containers that state none (a quota on CPU or
    /// memory refuses pods without requests, so the LimitRange fills them in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default_request: Option<BTreeMap<String, String>>,
    /// Limits given to containers that state none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default_limit: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Isolation {
    /// Namespaces with RBAC, quotas and network policies in shared clusters.
    #[default]
    Namespace,
    /// A virtual cluster in a host namespace of each shared cluster.
    Vcluster,
    /// A dedicated cluster, requested from Cluster API or Crossplane.
    Cluster,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum NamespaceMode {
    /// The namespace `<tenant>` (plus `extraNamespaces`), shared by its applications.
    #[default]
    PerTenant,
    /// `<tenant>-<application>` for each application.
    PerApp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    #[default]
    Restricted,
    Baseline,
    Privileged,
}

impl PodSecurityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Restricted => "restricted",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Privileged => "privileged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkIsolation {
    /// Deny ingress from other tenants' namespaces (everything not allowed below).
    #[serde(default = "yes")]
    pub isolate: bool,
    /// Namespaces whose pods may always reach the tenant: the ingress
    /// controller's and monitoring's.
    #[serde(default = "default_allowed_namespaces")]
    pub allow_from_namespaces: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_allowed_namespaces() -> Vec<String> {
    vec!["ingress-nginx".into(), "monitoring".into()]
}

impl Default for NetworkIsolation {
    fn default() -> Self {
        Self { isolate: true, allow_from_namespaces: default_allowed_namespaces() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VClusterSettings {
    /// Values for the vCluster chart (`vcluster.yaml`), merged over Heimdall's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub values: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterRequest {
    /// The Heimdall Cluster (running Cluster API or Crossplane) whose
    /// repository receives the request.
    pub management_cluster: String,
    #[serde(default)]
    pub provider: ClusterProvider,
    /// Cluster API: the ClusterClass of the managed topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Kubernetes version (`v1.31.2`).
    pub kubernetes_version: String,
    /// Worker nodes.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Crossplane: the claim's `apiVersion` and `kind`, from the platform's
    /// composite resource definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_kind: Option<String>,
    /// Extra parameters passed to the Crossplane claim's `spec.parameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

fn default_workers() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ClusterProvider {
    #[default]
    ClusterApi,
    Crossplane,
}

impl TenantSpec {
    /// Whether `user` (or any of `groups`) is a member; the strongest role wins.
    pub fn role_of(&self, user: &str, email: Option<&str>, groups: &[String]) -> Option<TenantRole> {
        self.members
            .iter()
            .filter(|m| match m.kind {
                SubjectKind::User => m.name == user || email.is_some_and(|e| e == m.name),
                SubjectKind::Group => groups.iter().any(|g| g == &m.name),
            })
            .map(|m| m.role)
            .max()
    }

    /// The quota for `environment`, else the `default` one.
    pub fn quota_for(&self, environment: &str) -> Option<&Quota> {
        self.quotas.get(environment).or_else(|| self.quotas.get("default"))
    }
}

/// Kubernetes quantities: `500m`, `2`, `1.5Gi`, `100M`.
pub fn check_quantity(value: &str) -> Result<(), String> {
    let number_end = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let number_ok = !number.is_empty() && number.parse::<f64>().is_ok();
    let suffix_ok = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&suffix);
    if number_ok && suffix_ok {
        Ok(())
    } else {
        Err(format!("expected a Kubernetes quantity such as 500m, 2, 512Mi or 10Gi, got {value:?}"))
    }
}

fn check_quota(quota: &Quota, path: &str, problems: &mut Vec<Problem>) {
    for (field, value) in [("cpu", &quota.cpu), ("memory", &quota.memory), ("storage", &quota.storage)] {
        if let Some(value) = value
            && let Err(e) = check_quantity(value)
        {
            problems.push(Problem::new(format!("{path}.{field}"), e));
        }
    }
    for name in quota.objects.keys() {
        let valid = name.strip_prefix("count/").map_or_else(|| check_dns_label(name).is_ok(), |r| check_qualified_name(r).is_ok());
        if !valid {
            problems.push(Problem::new(
                format!("{path}.objects.{name}"),
                "expected a ResourceQuota resource name such as pods, services or count/deployments.apps",
            ));
        }
    }
    for (field, values) in [("defaultRequest", &quota.default_request), ("defaultLimit", &quota.default_limit)] {
        for (resource, value) in values.iter().flatten() {
            if !["cpu", "memory", "ephemeral-storage"].contains(&resource.as_str()) {
                problems.push(Problem::new(format!("{path}.{field}.{resource}"), "expected cpu, memory or ephemeral-storage"));
            } else if let Err(e) = check_quantity(value) {
                problems.push(Problem::new(format!("{path}.{field}.{resource}"), e));
            }
        }
    }
}

/// An absent spec is an empty one: every field is optional.
pub(crate) fn validate(spec: &Value) -> Vec<Problem> {
    let spec = if spec.is_null() { Value::Object(Default::default()) } else { spec.clone() };
    let spec = match super::deserialize_at::<TenantSpec>(&spec, "spec") {
        Ok(spec) => spec,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    for (i, env) in spec.environments.iter().enumerate() {
        if let Err(e) = check_dns_label(env) {
            problems.push(Problem::new(format!("spec.environments[{i}]"), e));
        }
    }
    super::check_unique(spec.environments.iter().map(String::as_str), |i| format!("spec.environments[{i}]"), "environment", &mut problems);
    for (i, member) in spec.members.iter().enumerate() {
        if member.name.trim().is_empty() {
            problems.push(Problem::new(format!("spec.members[{i}].name"), "expected a user or group name"));
        } else if is_reserved_subject(&member.name) {
            // Bound in the tenant's RoleBindings, `system:authenticated` would be everyone in the cluster.
            problems.push(Problem::new(
                format!("spec.members[{i}].name"),
                format!(
                    "{:?} is a name Kubernetes or Heimdall reserves (system:*, heimdall:*), not a person or group of the identity provider",
                    member.name
                ),
            ));
        }
    }
    check_kind_rules(&spec.allowed_objects, "spec.allowedObjects", &mut problems);
    if let Some(budget) = &spec.budget
        && (budget.monthly < 0.0 || !budget.monthly.is_finite())
    {
        problems.push(Problem::new("spec.budget.monthly", "expected an amount of zero or more"));
    }
    for (environment, quota) in &spec.quotas {
        if environment != "default" && !spec.environments.contains(environment) {
            problems.push(Problem::new(
                format!("spec.quotas.{environment}"),
                format!("{environment:?} is not one of the tenant's environments ({}) nor \"default\"", spec.environments.join(", ")),
            ));
        }
        check_quota(quota, &format!("spec.quotas.{environment}"), &mut problems);
    }
    for (i, registry) in spec.allowed_registries.iter().enumerate() {
        if registry.trim().is_empty() || registry.contains(char::is_whitespace) {
            problems
                .push(Problem::new(format!("spec.allowedRegistries[{i}]"), "expected an image prefix such as registry.example.com/shop/"));
        }
    }
    for (i, extra) in spec.extra_namespaces.iter().enumerate() {
        if let Err(e) = check_dns_label(extra) {
            problems.push(Problem::new(format!("spec.extraNamespaces[{i}]"), e));
        }
    }
    if !spec.extra_namespaces.is_empty() && spec.namespaces == NamespaceMode::PerApp {
        problems.push(Problem::new("spec.extraNamespaces", "only for namespaces: perTenant; perApp gives each application its own"));
    }
    for (i, namespace) in spec.network.allow_from_namespaces.iter().enumerate() {
        if let Err(e) = check_dns_label(namespace) {
            problems.push(Problem::new(format!("spec.network.allowFromNamespaces[{i}]"), e));
        }
    }
    match (spec.isolation, &spec.cluster) {
        (Isolation::Cluster, None) => problems.push(Problem::new(
            "spec.cluster",
            "isolation: cluster needs cluster: {managementCluster, kubernetesVersion, class or claimKind}",
        )),
        (Isolation::Cluster, Some(request)) => {
            if let Err(e) = check_dns_label(&request.management_cluster) {
                problems.push(Problem::new("spec.cluster.managementCluster", e));
            }
            match request.provider {
                ClusterProvider::ClusterApi if request.class.is_none() => {
                    problems.push(Problem::new("spec.cluster.class", "Cluster API needs the ClusterClass to build the cluster from"))
                }
                ClusterProvider::Crossplane if request.claim_api_version.is_none() || request.claim_kind.is_none() => {
                    problems.push(Problem::new(
                        "spec.cluster",
                        "Crossplane needs claimApiVersion and claimKind (from your composite resource definition)",
                    ))
                }
                _ => {}
            }
        }
        (_, Some(_)) => problems.push(Problem::new("spec.cluster", "only for isolation: cluster")),
        _ => {}
    }
    if spec.vcluster.is_some() && spec.isolation != Isolation::Vcluster {
        problems.push(Problem::new("spec.vcluster", "only for isolation: vcluster"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_users_and_groups_and_the_strongest_wins() {
        let spec: TenantSpec = serde_json::from_value(json!({"members": [
            {"kind": "Group", "name": "shop-devs", "role": "developer"},
            {"kind": "User", "name": "alice@example.com", "role": "owner"},
            {"kind": "Group", "name": "everyone", "role": "viewer"},
        ]}))
        .expect("valid");
        assert_eq!(spec.role_of("alice", Some("alice@example.com"), &["shop-devs".into()]), Some(TenantRole::Owner));
        assert_eq!(spec.role_of("bob", None, &["shop-devs".into(), "everyone".into()]), Some(TenantRole::Developer));
        assert_eq!(spec.role_of("carol", None, &["everyone".into()]), Some(TenantRole::Viewer));
        assert_eq!(spec.role_of("dave", None, &["payments".into()]), None);
    }

    #[test]
    fn mistakes_are_named_by_path() {
        let problems = validate(&json!({
            "environments": ["dev"],
            "quotas": {"prod": {"cpu": "lots"}, "dev": {"memory": "16Gi", "objects": {"Pods!": 3}, "defaultRequest": {"gpu": "1"}}},
            "isolation": "cluster",
            "allowedRegistries": [""],
        }));
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "spec.quotas.prod",
            "spec.quotas.prod.cpu",
            "spec.quotas.dev.objects.Pods!",
            "spec.quotas.dev.defaultRequest.gpu",
            "spec.cluster",
            "spec.allowedRegistries[0]",
        ] {
            assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
        }
        assert!(validate(&json!({"isolation": "vm"}))[0].path.starts_with("spec.isolation"));
        assert!(validate(&Value::Null).is_empty());
    }

    #[test]
    fn quantities() {
        for good in ["500m", "2", "1.5Gi", "100M", "0"] {
            assert!(check_quantity(good).is_ok(), "{good}");
        }
        for bad in ["", "Gi", "1.5 Gi", "-1", "10GB", "lots"] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
    }
}
