//! The registry of kinds Heimdall stores. One table drives the API routes, the
//! CLI's kind names and table columns, and validation, so adding a kind is one entry.

use serde_json::Value;

use crate::problem::Problem;
use crate::resource::Resource;
use crate::spec;
use crate::status::{self, AgentStatus, AppStatus, ClusterStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// A table column: header and how to compute the cell.
pub type Column = (&'static str, fn(&Resource) -> String);

pub struct KindInfo {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// URL segment and CLI name: `applications`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub scope: Scope,
    /// Extra columns for `heimdall get`, after NAMESPACE and NAME.
    pub columns: &'static [Column],
    /// What the kind is to rendering: the hub re-renders on, delivers and
    /// compiles by these, never by lists of its own.
    pub rendering: RenderRole,
    validate_spec: fn(&Value) -> Vec<Problem>,
}

/// What a stored kind is to the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderRole {
    /// Stored only (secrets, catalog records, migrations read on their own).
    None,
    /// Each resource renders into cluster repositories (`heimdall_render::render`).
    Renders,
    /// Part of the platform every render reads: a change re-renders what it shapes.
    Platform,
    /// Both: a Tenant renders its own scaffolding and bounds its applications' renders.
    RendersAndPlatform,
}

impl RenderRole {
    pub fn renders(self) -> bool {
        matches!(self, RenderRole::Renders | RenderRole::RendersAndPlatform)
    }

    pub fn is_platform(self) -> bool {
        matches!(self, RenderRole::Platform | RenderRole::RendersAndPlatform)
    }
}

impl std::fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindInfo").field("apiVersion", &self.api_version).field("kind", &self.kind).finish()
    }
}

impl KindInfo {
    pub fn is_namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// Problems with `spec`, with paths rooted at `spec`.
    pub fn validate_spec(&self, spec: &Value) -> Vec<Problem> {
        (self.validate_spec)(spec)
    }
}

fn array_len(resource: &Resource, field: &str) -> String {
    resource.spec.get(field).and_then(Value::as_array).map_or(0, Vec::len).to_string()
}

fn object_keys(resource: &Resource, field: &str) -> String {
    resource.spec.get(field).and_then(Value::as_object).map(|o| o.keys().cloned().collect::<Vec<_>>().join(",")).unwrap_or_default()
}

fn string_field(resource: &Resource, field: &str) -> String {
    resource.spec.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn phase(resource: &Resource) -> String {
    status::status_of::<AppStatus>(resource).phase.unwrap_or_else(|| "Pending".into())
}

/// A Cluster's agent as the hub knows it.
fn agent(resource: &Resource) -> AgentStatus {
    status::status_of::<ClusterStatus>(resource).agent.unwrap_or_default()
}

/// Sync and health per cluster, as agents report them: `eu-1:Synced/Healthy`.
fn deployments(resource: &Resource) -> String {
    let unknown = |text: &str| if text.is_empty() { "Unknown".to_string() } else { text.to_string() };
    status::status_of::<AppStatus>(resource)
        .clusters
        .iter()
        .map(|(cluster, report)| format!("{cluster}:{}/{}", unknown(&report.sync), unknown(&report.health)))
        .collect::<Vec<_>>()
        .join(",")
}

fn labels(resource: &Resource) -> String {
    resource.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

pub static KINDS: &[KindInfo] = &[
    KindInfo {
        api_version: "core.oam.dev/v1beta1",
        kind: "Application",
        plural: "applications",
        singular: "application",
        short_names: &["app", "apps"],
        scope: Scope::Namespaced,
        columns: &[("COMPONENTS", |r| array_len(r, "components")), ("PHASE", phase), ("CLUSTERS", deployments)],
        rendering: RenderRole::Renders,
        validate_spec: spec::application::validate,
    },
    KindInfo {
        api_version: spec::score::API_VERSION,
        kind: "Workload",
        plural: "workloads",
        singular: "workload",
        short_names: &["score"],
        scope: Scope::Namespaced,
        columns: &[("CONTAINERS", |r| object_keys(r, "containers")), ("PHASE", phase), ("CLUSTERS", deployments)],
        rendering: RenderRole::Renders,
        validate_spec: spec::score::validate,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Tenant",
        plural: "tenants",
        singular: "tenant",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[
            ("DISPLAY NAME", |r| string_field(r, "displayName")),
            ("ENVIRONMENTS", |r| {
                r.spec
                    .get("environments")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            }),
            ("ISOLATION", |r| {
                let isolation = string_field(r, "isolation");
                if isolation.is_empty() { "namespace".into() } else { isolation }
            }),
        ],
        rendering: RenderRole::RendersAndPlatform,
        validate_spec: spec::tenant::validate,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Environment",
        plural: "environments",
        singular: "environment",
        short_names: &["env", "envs"],
        scope: Scope::Cluster,
        columns: &[
            ("DISPLAY NAME", |r| string_field(r, "displayName")),
            ("CLUSTERS", |r| {
                r.spec
                    .get("clusterSelector")
                    .and_then(|s| s.get("matchLabels"))
                    .and_then(Value::as_object)
                    .map(|o| o.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            }),
        ],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_environment,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Cluster",
        plural: "clusters",
        singular: "cluster",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[
            ("DELIVERY", |r| {
                let delivery = string_field(r, "delivery");
                if delivery.is_empty() { "agent".into() } else { delivery }
            }),
            ("LABELS", labels),
            ("CONNECTION", |r| agent(r).connection.unwrap_or_else(|| "Pending".into())),
            ("SYNC", |r| agent(r).sync.unwrap_or_default()),
            ("REVISION", |r| agent(r).applied_revision.unwrap_or_default().chars().take(8).collect()),
        ],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_cluster,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "ComponentDefinition",
        plural: "componentdefinitions",
        singular: "componentdefinition",
        short_names: &["compdef", "compdefs"],
        scope: Scope::Cluster,
        columns: &[("DESCRIPTION", |r| string_field(r, "description"))],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_component_definition,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "TraitDefinition",
        plural: "traitdefinitions",
        singular: "traitdefinition",
        short_names: &["traitdef", "traitdefs"],
        scope: Scope::Cluster,
        columns: &[
            ("APPLIES TO", |r| {
                r.spec
                    .get("appliesTo")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                    .unwrap_or_else(|| "*".into())
            }),
            ("DESCRIPTION", |r| string_field(r, "description")),
        ],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_trait_definition,
    },
    KindInfo {
        api_version: spec::secret::API_VERSION,
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        short_names: &[],
        scope: Scope::Namespaced,
        columns: &[("KEYS", |r| {
            r.spec
                .get("keys")
                .and_then(Value::as_object)
                .map(|keys| {
                    keys.iter()
                        .map(|(key, info)| format!("{key}:v{}", info.get("version").and_then(Value::as_i64).unwrap_or(0)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        })],
        rendering: RenderRole::None,
        validate_spec: spec::secret::validate,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Policy",
        plural: "policies",
        singular: "policy",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[
            ("ENFORCEMENT", |r| {
                let enforcement = string_field(r, "enforcement");
                if enforcement.is_empty() { "deny".into() } else { enforcement }
            }),
            ("DESCRIPTION", |r| string_field(r, "description")),
        ],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_policy,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Defaults",
        plural: "defaults",
        singular: "defaults",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[("SECURITY", |r| {
            let security = string_field(r, "securityContext");
            if security.is_empty() { "restricted".into() } else { security }
        })],
        rendering: RenderRole::Platform,
        validate_spec: spec::platform::validate_defaults,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Capability",
        plural: "capabilities",
        singular: "capability",
        short_names: &["cap", "caps"],
        scope: Scope::Cluster,
        columns: &[
            ("COMPOSITIONS", |r| {
                r.spec
                    .get("compositions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            }),
            ("DESCRIPTION", |r| string_field(r, "description")),
        ],
        rendering: RenderRole::Platform,
        validate_spec: spec::capability::validate_capability,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Claim",
        plural: "claims",
        singular: "claim",
        short_names: &[],
        scope: Scope::Namespaced,
        columns: &[("TYPE", |r| string_field(r, "type")), ("PHASE", phase), ("CLUSTERS", deployments)],
        rendering: RenderRole::Renders,
        validate_spec: spec::capability::validate_claim,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "ClaimMigration",
        plural: "claimmigrations",
        singular: "claimmigration",
        short_names: &["migration", "migrations"],
        scope: Scope::Namespaced,
        columns: &[
            ("COMPOSITION", |r| string_field(r, "composition")),
            ("HOLD", |r| r.spec.get("hold").and_then(Value::as_bool).unwrap_or(false).to_string()),
            ("CONFIRM DELETE", |r| r.spec.get("confirmDelete").and_then(Value::as_bool).unwrap_or(false).to_string()),
            ("READY IN", |r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.get("ready"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            }),
        ],
        rendering: RenderRole::None,
        validate_spec: spec::capability::validate_claim_migration,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "CatalogLocation",
        plural: "cataloglocations",
        singular: "cataloglocation",
        short_names: &["location", "locations"],
        scope: Scope::Cluster,
        columns: &[
            ("TYPE", |r| string_field(r, "type")),
            ("TARGET", |r| string_field(r, "target")),
            ("ENTITIES", |r| r.status.as_ref().and_then(|s| s.get("entities")).map(|v| v.to_string()).unwrap_or_default()),
            ("ERRORS", |r| r.status.as_ref().and_then(|s| s.get("errors")).and_then(Value::as_array).map_or(0, Vec::len).to_string()),
        ],
        rendering: RenderRole::None,
        validate_spec: spec::platform::validate_catalog_location,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "User",
        plural: "users",
        singular: "user",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[("USERNAME", |r| string_field(r, "username")), ("EMAIL", |r| string_field(r, "email"))],
        rendering: RenderRole::None,
        validate_spec: spec::platform::validate_user,
    },
    KindInfo {
        api_version: spec::platform::GROUP_VERSION,
        kind: "Group",
        plural: "groups",
        singular: "group",
        short_names: &[],
        scope: Scope::Cluster,
        columns: &[("GROUP", |r| string_field(r, "group"))],
        rendering: RenderRole::None,
        validate_spec: spec::platform::validate_group,
    },
];

/// Finds a kind by its `kind` field.
pub fn by_kind(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// Finds a kind by any name a person might type: plural, singular, short name
/// or Kind, case-insensitively.
pub fn by_name(name: &str) -> Option<&'static KindInfo> {
    let name = name.to_ascii_lowercase();
    KINDS
        .iter()
        .find(|k| k.plural == name || k.singular == name || k.kind.eq_ignore_ascii_case(&name) || k.short_names.contains(&name.as_str()))
}

/// The known kind closest to `name`, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    KINDS
        .iter()
        .flat_map(|k| [k.kind, k.plural])
        .map(|candidate| (strsim::damerau_levenshtein(&name, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The kinds whose resources render into cluster repositories.
pub fn rendered_kinds() -> impl Iterator<Item = &'static str> {
    KINDS.iter().filter(|k| k.rendering.renders()).map(|k| k.kind)
}

/// The kinds that make up the platform every render reads.
pub fn platform_kinds() -> impl Iterator<Item = &'static str> {
    KINDS.iter().filter(|k| k.rendering.is_platform()).map(|k| k.kind)
}

/// Whether resources of `kind` render into cluster repositories.
pub fn renders(kind: &str) -> bool {
    by_kind(kind).is_some_and(|k| k.rendering.renders())
}

/// Whether `kind` is part of the platform every render reads.
pub fn is_platform(kind: &str) -> bool {
    by_kind(kind).is_some_and(|k| k.rendering.is_platform())
}

/// Every Kind, for error messages.
pub fn known_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_case_insensitively() {
        for name in ["applications", "application", "app", "Application", "APPS"] {
            assert_eq!(by_name(name).map(|k| k.kind), Some("Application"), "{name}");
        }
        assert_eq!(by_name("env").map(|k| k.kind), Some("Environment"));
        assert!(by_name("deployment").is_none());
    }

    #[test]
    fn suggests_the_closest_kind() {
        assert_eq!(suggest("Aplication"), Some("Application"));
        assert_eq!(suggest("clusters"), Some("clusters"));
        assert_eq!(suggest("Deployment"), None);
    }

    #[test]
    fn plurals_are_unique() {
        let mut plurals: Vec<_> = KINDS.iter().map(|k| k.plural).collect();
        plurals.sort();
        plurals.dedup();
        assert_eq!(plurals.len(), KINDS.len());
    }
}
