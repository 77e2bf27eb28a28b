//! Clusters: join tokens, install and bootstrap manifests, repository tokens, rebuilds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinTokenRequest {
    /// Lifetime in seconds (default one day, at most 30 days).
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    pub cluster: String,
    /// How many credentials stopped working.
    pub revoked: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRequest {
    /// The URL the agent reaches the hub at.
    pub hub_url: String,
    /// The agent image; default `ghcr.io/heimdall-dev/heimdall:<hub version>`.
    pub image: Option<String>,
    /// Default `heimdall-system`.
    pub namespace: Option<String>,
    /// Narrower mode: the agent may write only in these namespaces.
    pub namespaces: Option<Vec<String>>,
    pub hub_ca: Option<String>,
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterToken {
    /// Shown once; the hub keeps only its hash.
    pub token: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rebuilt {
    pub cluster: String,
    /// Where the old repository was moved, if there was one.
    pub set_aside: Option<String>,
    pub commits: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapRequest {
    /// The hub's URL as the cluster reaches it.
    pub hub_url: String,
    /// A token of the cluster to embed; a placeholder if absent.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinToken {
    /// Shown once; the hub keeps only its hash. Spent by the first join.
    pub token: String,
    pub cluster: String,
    pub expires_at: String,
}
