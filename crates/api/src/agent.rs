//! The agent protocol: what a spoke agent sends the hub and gets back, over
//! plain HTTPS requests it makes outwards.
//!
//! - `POST /api/v1/agent/join` [`JoinRequest`] → [`Credential`]
//! - `POST /api/v1/agent/rotate` → [`Credential`]
//! - `GET  /api/v1/agent/desired?known=&wait=` → [`DesiredRevision`]
//! - `GET  /api/v1/agent/manifests?revision=&since=` → [`Manifests`]
//! - `POST /api/v1/agent/report` [`Report`] → [`DesiredRevision`]
//!
//! **Versions.** Every request carries [`PROTOCOL_HEADER`] (the version the
//! agent speaks) and [`PROTOCOL_MIN_HEADER`] (the oldest hub version it can
//! still talk to); an agent without them speaks version 1. The hub serves
//! an agent when their ranges meet ([`negotiate`]) and otherwise answers
//! 426 naming both. Within a version, readers on both sides ignore fields
//! they do not know and fill in missing optional ones, so an agent one
//! release newer (one more field) or older (one field fewer) keeps working.
//! Values of the states (sync, health) are the negotiated version's: a
//! version that adds one is a new version, and the hub answers every agent
//! request with the version it speaks ([`PROTOCOL_HEADER`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The version of the protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest agent protocol this hub serves (1: agents that send no version).
pub const OLDEST_AGENT_PROTOCOL: u32 = 1;
/// The oldest hub protocol this agent can talk to.
pub const OLDEST_HUB_PROTOCOL: u32 = 2;
pub const PROTOCOL_HEADER: &str = "heimdall-agent-protocol";
pub const PROTOCOL_MIN_HEADER: &str = "heimdall-agent-protocol-min";

/// Whether a hub speaking [`PROTOCOL_VERSION`] serves an agent that speaks
/// `agent` (none: 1) and talks to hubs from `agent_min` (none: its own
/// version) on; the version they use, or why not, naming both.
pub fn negotiate(agent: Option<u32>, agent_min: Option<u32>) -> Result<u32, String> {
    let agent = agent.unwrap_or(1);
    let agent_min = agent_min.unwrap_or(agent).min(agent);
    if agent < OLDEST_AGENT_PROTOCOL {
        return Err(format!(
            "the agent speaks protocol {agent}; this hub serves agents of protocol {OLDEST_AGENT_PROTOCOL} to {PROTOCOL_VERSION}: upgrade the agent"
        ));
    }
    if agent_min > PROTOCOL_VERSION {
        return Err(format!(
            "the agent speaks protocol {agent_min} to {agent}; this hub speaks protocol {PROTOCOL_VERSION}: upgrade the hub, or run an older agent"
        ));
    }
    Ok(agent.min(PROTOCOL_VERSION))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub join_token: String,
    /// The agent's X25519 public key as an age recipient (`age1...`), for secrets sealed to this cluster.
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
}

/// A cluster's credential; shown once, the hub keeps only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    pub cluster: String,
    pub credential: String,
    /// RFC 3339; a hub may leave it out (the credential does not expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredRevision {
    /// The head commit of the cluster's repository; none before the first commit.
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manifests {
    pub revision: String,
    /// `true`: `files` is the whole tree; `false`: only what changed since the asked-for base.
    pub complete: bool,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// Facts about the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Facts {
    pub kubernetes_version: String,
    pub nodes: usize,
    /// Allocatable CPU over all nodes, in millicores.
    pub cpu_millis: u64,
    /// Allocatable memory over all nodes, in bytes.
    pub memory_bytes: u64,
    pub agent_version: String,
}

/// Drift the agent corrected since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Drift {
    pub corrected: u64,
    /// The objects most recently repaired (`Deployment shop/web`).
    pub recent: Vec<String>,
}

/// An object the last pass could not apply or prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectError {
    pub object: String,
    #[serde(default)]
    pub folder: String,
    pub message: String,
}

/// What an agent reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Report {
    pub facts: Option<Facts>,
    pub applied_revision: Option<String>,
    /// Which replica applies (its pod name).
    pub leader: Option<String>,
    pub drift: Option<Drift>,
    pub errors: Vec<ObjectError>,
    /// Application folder (`<namespace>/<app>`) → its sync and health; only those that changed.
    pub apps: BTreeMap<String, FolderReport>,
}

/// One application folder in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderReport {
    pub sync: SyncState,
    pub health: HealthState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    #[serde(default)]
    pub objects: usize,
    /// Capability instances in the folder and whether each is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimHealth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SyncState {
    Synced,
    Failed,
}

/// Ordered from best to worst: a folder is as healthy as its worst object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum HealthState {
    Healthy,
    Progressing,
    Missing,
    Degraded,
}

/// One capability instance (a claim's objects of one composition): every object ready or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimHealth {
    pub claim: String,
    pub composition: String,
    /// Every object of the instance exists and says it is ready.
    pub ready: bool,
    /// Conditions and phases as the provider states them (`Ready=True, Synced=True`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_meet_or_say_both() {
        assert_eq!(negotiate(None, None), Ok(1), "an agent from before versions");
        assert_eq!(negotiate(Some(PROTOCOL_VERSION), Some(OLDEST_HUB_PROTOCOL)), Ok(PROTOCOL_VERSION));
        assert_eq!(
            negotiate(Some(PROTOCOL_VERSION + 1), Some(PROTOCOL_VERSION)),
            Ok(PROTOCOL_VERSION),
            "a newer agent that still talks to us"
        );
        let newer = negotiate(Some(PROTOCOL_VERSION + 2), Some(PROTOCOL_VERSION + 1)).expect_err("too new");
        assert!(
            newer.contains(&format!("protocol {} to {}", PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 2)) && newer.contains("upgrade the hub"),
            "{newer}"
        );
        assert!(negotiate(Some(0), None).expect_err("too old").contains("upgrade the agent"));
    }

    #[test]
    fn readers_tolerate_more_and_less() {
        let newer = json!({"appliedRevision": "abc", "apps": {"shop/web": {"sync": "Synced", "health": "Degraded", "objects": 2, "weather": "fine"}},
            "facts": {"kubernetesVersion": "v1.40.0", "gpus": 8}, "somethingNew": true});
        let report: Report = serde_json::from_value(newer).expect("a newer report reads");
        assert_eq!(report.apps["shop/web"].sync, SyncState::Synced);
        assert_eq!(report.apps["shop/web"].health, HealthState::Degraded);
        let unknown = json!({"apps": {"shop/web": {"sync": "Synced", "health": "Fine"}}});
        assert!(serde_json::from_value::<Report>(unknown).is_err(), "a state is a version's, and must be one of them");
        assert_eq!(report.facts.expect("facts").kubernetes_version, "v1.40.0");
        let older: Report =
            serde_json::from_value(json!({"apps": {"shop/web": {"sync": "Synced", "health": "Healthy"}}})).expect("an older one too");
        assert_eq!(older.apps["shop/web"].objects, 0);
        let credential: Credential = serde_json::from_value(json!({"cluster": "c", "credential": "hdl_x"})).expect("no expiry");
        assert_eq!(credential.expires_at, None);
    }
}
