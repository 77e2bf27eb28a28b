//! The platform team's kinds (group `platform.heimdall.dev`). Their specs start
//! small; later capabilities add fields here.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::selector::LabelSelectorSpec;
use crate::validation::{check_dns_label, check_labels};

pub const GROUP_VERSION: &str = "platform.heimdall.dev/v1alpha1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Environments the tenant may deploy to, by name.
    #[serde(default)]
    pub environments: Vec<String>,
    #[serde(default)]
    pub members: Vec<TenantMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantRole {
    Owner,
    Developer,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which clusters serve this environment.
    #[serde(default)]
    pub cluster_selector: LabelSelectorSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How desired state reaches the cluster.
    #[serde(default)]
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Agent,
    Argocd,
    Flux,
}

/// An absent spec is an empty one for the platform kinds: every field is optional.
fn or_empty(spec: &Value) -> Value {
    if spec.is_null() {
        Value::Object(Default::default())
    } else {
        spec.clone()
    }
}

pub(crate) fn validate_tenant(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<TenantSpec>(&or_empty(spec), "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            for (i, env) in spec.environments.iter().enumerate() {
                if let Err(e) = check_dns_label(env) {
                    problems.push(Problem::new(format!("spec.environments[{i}]"), e));
                }
            }
            for (i, member) in spec.members.iter().enumerate() {
                if member.name.trim().is_empty() {
                    problems.push(Problem::new(format!("spec.members[{i}].name"), "expected a user or group name"));
                }
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_environment(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<EnvironmentSpec>(&or_empty(spec), "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            check_labels(
                &spec.cluster_selector.match_labels,
                "spec.clusterSelector.matchLabels",
                &mut problems,
            );
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_cluster(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<ClusterSpec>(&or_empty(spec), "spec") {
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}
