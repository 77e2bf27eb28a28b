//! The audit trail and an application's history, diff and rollback.

use heimdall_model::diff::Change;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The resourceVersion the change produced.
    pub revision: i64,
    pub at: String,
    pub actor: String,
    pub verb: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The resourceVersion before the change; absent for a create.
    pub revision_before: Option<i64>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterCommit {
    pub cluster: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The store revision (audit event id); what `diff` and `rollback` take.
    pub revision: i64,
    /// When (RFC 3339 for audit events, else the commit's time).
    pub at: String,
    pub actor: String,
    /// What happened: the audit verb, or the commit's summary for changes
    /// from elsewhere (a platform change re-rendering the application).
    pub summary: String,
    /// The commits this revision made, per cluster.
    pub commits: Vec<ClusterCommit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub items: Vec<Revision>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// A revision or commit; the manifests as they were then.
    pub from: String,
    /// A revision or commit (default: now).
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterDiff {
    pub cluster: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Unified diff of the application's manifests in this cluster.
    pub diff: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Diff {
    pub clusters: Vec<ClusterDiff>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The revision (or commit) whose spec to restore.
    pub to: String,
}
