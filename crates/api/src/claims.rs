//! Capability claims as `heimdall get claims` shows them, and migration plans.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One claim instance as `heimdall get claims` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    pub namespace: String,
    pub claim: String,
    /// `Application/orders`: where the claim is written.
    pub owner: String,
    pub capability: String,
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub composition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `Current`, or `New` while a migration runs.
    pub role: String,
    pub serving: bool,
    pub cost: f64,
    /// Output names (values of secrets are never shown).
    pub outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<String>,
    pub consumers: Vec<String>,
    /// `Ready`, `Provisioning` or `Unknown` (no report yet), from the agent.
    pub state: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanRequest {
    pub composition: String,
    #[serde(default)]
    pub environment: Option<String>,
}

/// What a migration would do, step by step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPlan {
    pub namespace: String,
    pub claim: String,
    pub owner: String,
    pub steps: Vec<PlanStep>,
    /// Monthly cost of the claim before and after.
    pub cost_before: f64,
    pub cost_after: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    pub cluster: String,
    pub from: String,
    pub to: String,
    /// 1. made beside the old one.
    pub create: Vec<String>,
    /// 2. once the new one reports ready: consumers and the secret they then read.
    pub switch: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_to_secret: Option<String>,
    /// 3. only after --confirm-delete.
    pub delete: Vec<String>,
}
