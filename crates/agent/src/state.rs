//! What the agent keeps across restarts: its cluster name, its hub
//! credential, its own key pair and the inventory of what it applied. In a
//! cluster it lives in a Secret in the agent's namespace; outside, in a file
//! only its owner may read.

use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError};
use crate::desired::ObjectRef;
use crate::sync::Inventory;

/// The Secret (in the agent's namespace) that holds the state.
pub const STATE_SECRET: &str = "heimdall-agent-state";

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub cluster: Option<String>,
    pub credential: Option<String>,
    pub credential_expires_at: Option<String>,
    /// The agent's X25519 secret key in age format (`AGE-SECRET-KEY-1...`).
    pub identity: Option<String>,
    pub applied_revision: Option<String>,
    #[serde(default)]
    pub inventory: Inventory,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credential or the key.
        f.debug_struct("AgentState")
            .field("cluster", &self.cluster)
            .field("applied_revision", &self.applied_revision)
            .field("objects", &self.inventory.entries.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("agent state file {path}: {message}")]
    File { path: String, message: String },
    #[error("agent state Secret {namespace}/{STATE_SECRET}: {source}")]
    Secret { namespace: String, source: ClusterError },
    #[error("agent state is corrupt: {0}")]
    Corrupt(String),
}

/// Where the state is kept.
#[derive(Debug, Clone)]
pub enum StateStore {
    File(PathBuf),
    Secret { namespace: String },
}

fn pack(state: &AgentState) -> Result<Vec<u8>, StateError> {
    // The inventory of a large cluster is big; compressed it stays far below a Secret's 1 MiB.
    let json = serde_json::to_vec(state).map_err(|e| StateError::Corrupt(e.to_string()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&json).and_then(|_| encoder.finish()).map_err(|e| StateError::Corrupt(e.to_string()))
}

fn unpack(bytes: &[u8]) -> Result<AgentState, StateError> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut json).map_err(|e| StateError::Corrupt(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| StateError::Corrupt(e.to_string()))
}

impl StateStore {
    fn secret_ref(namespace: &str) -> ObjectRef {
        ObjectRef { api_version: "v1".into(), kind: "Secret".into(), namespace: namespace.to_string(), name: STATE_SECRET.into() }
    }

    pub async fn load(&self, cluster: &Cluster) -> Result<AgentState, StateError> {
        match self {
            StateStore::File(path) => match std::fs::read(path) {
                Ok(bytes) => unpack(&bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
                Err(e) => Err(StateError::File { path: path.display().to_string(), message: e.to_string() }),
            },
            StateStore::Secret { namespace } => {
                let secret = cluster
                    .get(&Self::secret_ref(namespace))
                    .await
                    .map_err(|source| StateError::Secret { namespace: namespace.clone(), source })?;
                let Some(data) = secret.as_ref().and_then(|s| s.pointer("/data/state")).and_then(Value::as_str) else {
                    return Ok(AgentState::default());
                };
                let bytes = base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| StateError::Corrupt(e.to_string()))?;
                unpack(&bytes)
            }
        }
    }

    pub async fn save(&self, cluster: &Cluster, state: &AgentState) -> Result<(), StateError> {
        let bytes = pack(state)?;
        match self {
            StateStore::File(path) => {
                let file_error = |e: std::io::Error| StateError::File { path: path.display().to_string(), message: e.to_string() };
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(file_error)?;
                }
                // Write beside, then rename: a crash never leaves half a state file.
                let partial = path.with_extension("partial");
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(true)
                        .write(true)
                        .mode(0o600)
                        .open(&partial)
                        .map_err(file_error)?;
                    file.write_all(&bytes).and_then(|_| file.sync_all()).map_err(file_error)?;
                }
                std::fs::rename(&partial, path).map_err(file_error)
            }
            StateStore::Secret { namespace } => {
                let secret = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": STATE_SECRET, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "heimdall-agent"}},
                    "type": "Opaque",
                    "data": {"state": base64::engine::general_purpose::STANDARD.encode(bytes)},
                });
                cluster
                    .apply(&Self::secret_ref(namespace), &secret)
                    .await
                    .map(|_| ())
                    .map_err(|source| StateError::Secret { namespace: namespace.clone(), source })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_debug_hides_secrets() {
        let state = AgentState {
            cluster: Some("eu-1".into()),
            credential: Some("hdl_secret".into()),
            identity: Some("AGE-SECRET-KEY-1XYZ".into()),
            ..Default::default()
        };
        assert_eq!(unpack(&pack(&state).expect("pack")).expect("unpack"), state);
        let shown = format!("{state:?}");
        assert!(!shown.contains("hdl_secret") && !shown.contains("AGE-SECRET"));
        assert!(unpack(b"not gzip").is_err());
    }
}
