//! Typed statuses of the stored kinds. A status is written by the hub (what
//! the renderer made of a resource) and by agents (what clusters report),
//! stored as JSON in [`Resource::status`]; every reader goes through these
//! types instead of string paths. Fields a newer hub adds are kept
//! (`other`), so an older reader never drops them on a write.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::resource::Resource;

/// The status of a rendered kind: Application, Workload, Tenant, Claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// `Rendered`, `Suspended` (a step waits for approval), `Blocked` (a
    /// denying policy) or `Failed` (the render failed: see `messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One per cluster and namespace the resource renders into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetStatus>>,
    /// The workflow's steps as the renderer ran them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Value>,
    /// Claim instances the resource's components made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Vec<Value>>,
    /// Render errors (`Failed`) or warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
    /// What each cluster's agent reports, by cluster: written by agents only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clusters: BTreeMap<String, ClusterReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Approvals>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub cluster: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `Ready` (delivered), `Held` (waiting for approval) or `Blocked`.
    pub state: String,
    pub objects: usize,
    pub revision: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

/// One agent's report of one resource's objects in its cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    #[serde(default)]
    pub sync: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub objects: usize,
    /// The repository commit the report is of.
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Value>,
}

/// Suspend steps approved for one generation; a new generation starts its
/// workflow afresh, as in KubeVela.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Approvals {
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub steps: BTreeSet<String>,
}

/// The status of a Cluster: its agent and its repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryStatus>,
    /// The last push to the cluster's mirror repository, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// `Synced` or `Failed`.
    pub state: String,
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the hub knows of a cluster's agent, from its joins and reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// `Connected`, `Unreachable` or `Revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// `Synced` when the agent applied the repository's head, else `OutOfSync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The agent's public key, for secrets sealed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<String>,
    /// What the agent found out about its cluster (`heimdall_api::agent::Facts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Value>,
    /// The pod holding the agent's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Value>,
    /// Objects the agent could not apply (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepositoryStatus {
    /// `Healthy`, `Missing` or `Corrupt`.
    pub state: String,
    #[serde(default)]
    pub message: Option<String>,
    pub path: String,
}

/// Reads a resource's status as `T`; an absent or unreadable status reads as
/// the default (a status is derived state: the next write repairs it).
pub fn status_of<T: DeserializeOwned + Default>(resource: &Resource) -> T {
    resource.status.as_ref().and_then(|status| serde_json::from_value(status.clone()).ok()).unwrap_or_default()
}

/// A status as the JSON the store keeps.
pub fn to_value<T: Serialize>(status: &T) -> Value {
    serde_json::to_value(status).unwrap_or_else(|_| Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_application_status_round_trips_and_keeps_what_it_does_not_know() {
        let stored = json!({
            "phase": "Rendered", "observedGeneration": 3,
            "targets": [{"cluster": "eu-1", "namespace": "shop", "environment": "dev", "state": "Ready", "objects": 4, "revision": "abc"}],
            "workflow": [{"name": "deploy", "phase": "succeeded"}],
            "clusters": {"eu-1": {"sync": "Synced", "health": "Healthy", "objects": 4, "revision": "c0ffee"}},
            "approvals": {"generation": 3, "steps": ["prod"]},
            "futureField": {"x": 1},
        });
        let status: AppStatus = serde_json::from_value(stored.clone()).expect("reads");
        assert_eq!(status.phase.as_deref(), Some("Rendered"));
        assert_eq!(status.targets.as_ref().map(|t| t[0].objects), Some(4));
        assert_eq!(status.clusters["eu-1"].health, "Healthy");
        assert_eq!(status.approvals.as_ref().map(|a| a.steps.contains("prod")), Some(true));
        assert_eq!(to_value(&status), stored, "nothing is lost or added on the way back");
    }

    #[test]
    fn a_cluster_status_round_trips_and_a_broken_one_reads_as_empty() {
        let stored = json!({
            "agent": {"connection": "Connected", "sync": "Synced", "appliedRevision": "a", "desiredRevision": "a",
                      "lastHeartbeat": "2026-12-03T08:00:00Z", "facts": {"nodes": 3}, "leader": "pod-1"},
            "repository": {"state": "Healthy", "message": null, "path": "/git/clusters/eu-1.git"},
        });
        let status: ClusterStatus = serde_json::from_value(stored.clone()).expect("reads");
        assert_eq!(status.agent.as_ref().and_then(|a| a.connection.as_deref()), Some("Connected"));
        assert_eq!(status.agent.as_ref().and_then(|a| a.facts.clone()), Some(json!({"nodes": 3})));
        assert_eq!(to_value(&status), stored);
        let mut resource: Resource =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Cluster", "metadata": {"name": "x"}})).expect("resource");
        resource.status = Some(json!({"agent": "not an object"}));
        assert_eq!(status_of::<ClusterStatus>(&resource), ClusterStatus::default());
    }
}
