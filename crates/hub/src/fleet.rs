//! The hub's side of its spoke agents: join tokens traded for per-cluster
//! credentials, rotation and revocation, heartbeats and reports turned into
//! Cluster and Application statuses, and clusters that fall silent marked
//! `Unreachable`.
//!
//! Heartbeats go to their own table (no audit event per heartbeat); a
//! status is written only when what it says changes, and its
//! `lastHeartbeat` at most once a minute.

use std::time::Duration;

use chrono::Utc;
use heimdall_model::ResourceKey;
use heimdall_model::status::{self, AgentStatus, AppStatus, ClusterReport, ClusterStatus};
use heimdall_store::{StoreError, generate_token};
use serde_json::json;

use crate::actors::AGENT_ACTOR;
use crate::state::AppState;

/// How long an agent credential lives; agents rotate well before the end.
pub const CREDENTIAL_LIFETIME_DAYS: i64 = 365;

pub fn join_token_name(cluster: &str) -> String {
    format!("join:{cluster}")
}

pub fn credential_name(cluster: &str) -> String {
    format!("agent:{cluster}")
}

fn timestamp(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The agent protocol's messages, in `heimdall-api` so both sides read one definition.
pub use heimdall_api::agent::{Credential, FolderReport as AppReport, HealthState, JoinRequest, Report as AgentReport, SyncState};
pub use heimdall_api::clusters::JoinToken;

/// Why the hub could not do what an agent or an admin asked of the fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Said alike for every kind of bad token, so a guess learns nothing.
    #[error("invalid, expired or already used join token")]
    JoinRefused,
    #[error("this join token is for cluster {token_for}, not {given}")]
    WrongCluster { token_for: String, given: String },
    #[error("expected an age X25519 recipient (age1...)")]
    BadPublicKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues a one-time join token for `cluster`, replacing any unspent one.
pub async fn issue_join_token(state: &AppState, cluster: &str, ttl: Duration) -> Result<JoinToken, FleetError> {
    state.store.get(&ResourceKey::new("Cluster", "", cluster)).await?;
    let token = generate_token();
    let expires_at = timestamp(Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64));
    let name = join_token_name(cluster);
    state.store.put_token(&name, &token, &name, Some(expires_at.clone())).await?;
    Ok(JoinToken { token, cluster: cluster.to_string(), expires_at })
}

async fn issue_credential(state: &AppState, cluster: &str) -> Result<Credential, FleetError> {
    let credential = generate_token();
    let expires_at = timestamp(Utc::now() + chrono::Duration::days(CREDENTIAL_LIFETIME_DAYS));
    state.store.put_token(&credential_name(cluster), &credential, &crate::auth::Role::cluster(cluster), Some(expires_at.clone())).await?;
    Ok(Credential { cluster: cluster.to_string(), credential, expires_at: Some(expires_at) })
}

/// Trades a join token for the cluster's credential and records the agent's key.
pub async fn join(state: &AppState, request: &JoinRequest) -> Result<Credential, FleetError> {
    let refused = || FleetError::JoinRefused;
    let info = state.store.authenticate_token(&request.join_token).await?.ok_or_else(refused)?;
    let cluster = info.role.strip_prefix("join:").ok_or_else(refused)?.to_string();
    if let Some(given) = request.cluster_name.as_deref().filter(|given| *given != cluster) {
        return Err(FleetError::WrongCluster { token_for: cluster, given: given.to_string() });
    }
    if request.public_key.parse::<age::x25519::Recipient>().is_err() {
        return Err(FleetError::BadPublicKey);
    }
    state.store.get(&ResourceKey::new("Cluster", "", &cluster)).await?;
    // Spend the token before issuing anything: of two joins with one token, one wins.
    state.store.redeem_token(&request.join_token, "join:").await?.ok_or_else(refused)?;
    let credential = issue_credential(state, &cluster).await?;
    let now = timestamp(Utc::now());
    let public_key = request.public_key.clone();
    update_agent_status(state, &cluster, move |agent| {
        *agent = AgentStatus {
            connection: Some("Connected".into()),
            public_key: Some(public_key.clone()),
            joined_at: Some(now.clone()),
            last_heartbeat: Some(now.clone()),
            ..Default::default()
        };
    })
    .await?;
    state.store.record_heartbeat(&cluster).await?;
    tracing::info!(%cluster, "agent joined");
    // Its secrets can be sealed now that its key is known.
    let (background, joined) = (state.clone(), cluster.clone());
    tokio::spawn(async move { crate::delivery::reseal_cluster(&background, &joined).await });
    Ok(credential)
}

/// A fresh credential for the calling agent; the old one stops working.
pub async fn rotate(state: &AppState, cluster: &str) -> Result<Credential, FleetError> {
    let credential = issue_credential(state, cluster).await?;
    tracing::info!(%cluster, "agent credential rotated");
    Ok(credential)
}

/// Revokes every credential of the cluster: its agent's, its unspent join
/// token, and its repository token. The agent is refused from now on.
pub async fn revoke(state: &AppState, cluster: &str) -> Result<u64, FleetError> {
    state.store.get(&ResourceKey::new("Cluster", "", cluster)).await?;
    let names = [credential_name(cluster), join_token_name(cluster), crate::auth::Role::cluster(cluster)];
    let revoked = state.store.delete_tokens(&names).await?;
    update_agent_status(state, cluster, |agent| {
        agent.connection = Some("Revoked".into());
    })
    .await?;
    tracing::info!(%cluster, revoked, "cluster credentials revoked");
    Ok(revoked)
}

/// Reads, changes and writes `status.agent` of a Cluster, retrying when
/// another writer got there first. Writes nothing if nothing changed.
pub async fn update_agent_status(state: &AppState, cluster: &str, mut change: impl FnMut(&mut AgentStatus)) -> Result<(), FleetError> {
    let key = ResourceKey::new("Cluster", "", cluster);
    state
        .store
        .modify_status(AGENT_ACTOR, &key, |_, status: &mut ClusterStatus| change(status.agent.get_or_insert_with(AgentStatus::default)))
        .await?;
    Ok(())
}

/// Records a heartbeat and what it says. Returns the cluster's desired revision.
pub async fn record_report(state: &AppState, cluster: &str, report: AgentReport) -> Result<Option<String>, FleetError> {
    let heard = state.store.record_heartbeat(cluster).await?;
    let desired = state.repos.head(cluster).ok().flatten();
    let stale_after = chrono::Duration::seconds(60);
    update_agent_status(state, cluster, |agent| {
        // A report already on its way when the cluster was revoked does not undo the revocation.
        if agent.connection.as_deref() == Some("Revoked") {
            return;
        }
        let stale = agent
            .last_heartbeat
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_none_or(|t| Utc::now() - t.with_timezone(&Utc) > stale_after);
        let mut next = agent.clone();
        next.connection = Some("Connected".into());
        next.applied_revision = report.applied_revision.clone();
        next.desired_revision = desired.clone();
        let synced = report.applied_revision.is_some() && report.applied_revision == desired;
        next.sync = Some(if synced { "Synced" } else { "OutOfSync" }.into());
        next.facts = report.facts.as_ref().map(|facts| json!(facts));
        next.leader = report.leader.clone();
        next.drift = report.drift.as_ref().map(|drift| json!(drift));
        next.errors = report.errors.iter().take(20).map(|e| json!(e)).collect();
        // Back from Unreachable: the silence message no longer holds.
        next.message = None;
        if stale || next != *agent {
            next.last_heartbeat = Some(heard.clone());
        }
        *agent = next;
    })
    .await?;
    for (folder, app) in &report.apps {
        if let Err(e) = record_app_health(state, cluster, folder, app, report.applied_revision.as_deref()).await {
            tracing::warn!(%cluster, %folder, error = %e, "cannot record application health");
        }
    }
    Ok(desired)
}

/// Writes one application's sync and health in one cluster into its status.
async fn record_app_health(
    state: &AppState,
    cluster: &str,
    folder: &str,
    app: &AppReport,
    revision: Option<&str>,
) -> Result<(), StoreError> {
    let Some((namespace, name)) = crate::delivery::owner(folder) else { return Ok(()) };
    for kind in ["Application", "Workload", "Claim"] {
        let key = ResourceKey::new(kind, &namespace, &name);
        let entry = ClusterReport {
            sync: status::to_value(&app.sync).as_str().unwrap_or_default().to_string(),
            health: status::to_value(&app.health).as_str().unwrap_or_default().to_string(),
            objects: app.objects,
            revision: revision.map(String::from),
            messages: app.messages.iter().take(10).cloned().collect(),
            claims: app.claims.iter().map(|c| json!(c)).collect(),
        };
        let written = state
            .store
            .modify_status(AGENT_ACTOR, &key, |_, status: &mut AppStatus| {
                status.clusters.insert(cluster.to_string(), entry.clone());
            })
            .await;
        match written {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
        if !app.claims.is_empty() {
            crate::migrations::record_readiness(state, cluster, &namespace, &app.claims).await?;
        }
        return Ok(());
    }
    Ok(())
}

/// Marks clusters whose agent fell silent for longer than `after` as
/// `Unreachable`. Runs until the hub stops.
pub async fn watch_heartbeats(state: AppState, after: Duration) {
    let every = (after / 3).clamp(Duration::from_secs(1), Duration::from_secs(15));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = mark_unreachable(&state, after).await {
            tracing::warn!(error = %e, "cannot check agent heartbeats");
        }
    }
}

/// One round of [`watch_heartbeats`]. Returns the clusters it marked.
pub async fn mark_unreachable(state: &AppState, after: Duration) -> Result<Vec<String>, FleetError> {
    let deadline = timestamp(Utc::now() - chrono::Duration::milliseconds(after.as_millis() as i64));
    let mut marked = Vec::new();
    for (cluster, at) in state.store.heartbeats().await? {
        if at.as_str() >= deadline.as_str() {
            continue;
        }
        let key = ResourceKey::new("Cluster", "", &cluster);
        let Ok(resource) = state.store.get(&key).await else { continue };
        let connected = status::status_of::<ClusterStatus>(&resource).agent.and_then(|a| a.connection).as_deref() == Some("Connected");
        if !connected {
            continue;
        }
        let silent = format!("no heartbeat since {at}");
        let mut marking = false;
        update_agent_status(state, &cluster, |agent| {
            // Read again: a revocation may have come since.
            marking = agent.connection.as_deref() == Some("Connected");
            if !marking {
                return;
            }
            agent.connection = Some("Unreachable".into());
            agent.last_heartbeat = Some(at.clone());
            agent.message = Some(silent.clone());
        })
        .await?;
        if !marking {
            continue;
        }
        tracing::warn!(%cluster, last_heartbeat = %at, "cluster unreachable");
        marked.push(cluster);
    }
    Ok(marked)
}
