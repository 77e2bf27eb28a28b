//! Heimdall's spoke agent. It runs in each spoke cluster, connects out to
//! the hub (a spoke never accepts connections), and makes the cluster match
//! the desired state the hub commits to the cluster's repository:
//!
//! - [`hub`]: the outward protocol (join, long-poll for revisions, fetch
//!   manifests, report), retried with backoff and jitter;
//! - [`desired`]: the repository's files as objects with agent hints;
//! - [`sync`]: one pass of apply (server-side apply), prune and health;
//! - [`cluster`]: the `kube` client with discovery;
//! - [`state`]: credential, key and inventory, kept in a Secret or a file;
//! - [`lease`]: one applying replica among several.
//!
//! If the hub is unreachable the agent keeps what it applied: it only
//! changes the cluster after it has read a desired state from the hub.

pub mod cluster;
pub mod desired;
pub mod facts;
pub mod health;
pub mod hub;
pub mod lease;
pub mod state;
pub mod sync;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use age::secrecy::ExposeSecret;
use rand::Rng;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, ClusterError};
use crate::desired::Desired;
use crate::hub::{HubClient, HubError, JoinRequest};
use crate::state::{AgentState, StateError, StateStore};
use crate::sync::{FolderStatus, Inventory};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(
        "no credential is stored for this agent and no join token was given: pass --join-token (or HEIMDALL_JOIN_TOKEN, or --join-token-file)"
    )]
    NoCredential,
    #[error("the stored credential belongs to cluster {stored}, but --cluster-name says {given}")]
    ClusterMismatch { stored: String, given: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The hub's base URL.
    pub hub: String,
    pub join_token: Option<String>,
    /// `None`: the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    pub cluster_name: Option<String>,
    /// The agent's namespace: its state Secret and its Lease live there.
    pub namespace: String,
    /// Keep state in this file instead of a Secret.
    pub state_file: Option<PathBuf>,
    /// PEM of an extra CA to trust for the hub.
    pub hub_ca: Option<Vec<u8>>,
    /// An HTTP proxy to reach the hub through (else `HTTPS_PROXY`/`HTTP_PROXY` apply).
    pub proxy: Option<String>,
    pub drift_interval: Duration,
    pub heartbeat_interval: Duration,
    /// How long the hub may hold a long poll.
    pub poll_wait: Duration,
    /// Parallel requests to the API server.
    pub concurrency: usize,
    pub leader_election: bool,
    /// This replica's name in the Lease.
    pub identity: String,
}

impl Options {
    pub fn new(hub: impl Into<String>) -> Options {
        Options {
            hub: hub.into(),
            join_token: None,
            kubeconfig: None,
            cluster_name: None,
            namespace: "heimdall-system".into(),
            state_file: None,
            hub_ca: None,
            proxy: None,
            drift_interval: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(20),
            poll_wait: Duration::from_secs(25),
            concurrency: 16,
            leader_election: true,
            identity: std::env::var("HOSTNAME").unwrap_or_else(|_| format!("agent-{:08x}", rand::rng().random::<u32>())),
        }
    }
}

/// Exponential backoff with full jitter, 0.5 s up to 30 s.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = (500u64 << self.attempt.min(6)).min(30_000);
        self.attempt += 1;
        Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

enum Event {
    Revision(Option<String>),
    HubDown(String),
    Refused(HubError),
}

/// Long-polls the hub for the cluster's revision and passes changes on.
async fn watch_revisions(hub: HubClient, wait: Duration, events: mpsc::Sender<Event>) {
    let mut known: Option<String> = None;
    let mut backoff = Backoff::default();
    loop {
        match hub.desired(known.as_deref(), wait).await {
            Ok(desired) => {
                tracing::debug!(revision = desired.revision.as_deref().unwrap_or_default(), "desired revision");
                backoff.reset();
                if desired.revision != known || known.is_none() {
                    known = desired.revision.clone();
                    if events.send(Event::Revision(desired.revision)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.is_transient() => {
                if events.send(Event::HubDown(e.to_string())).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                let _ = events.send(Event::Refused(e)).await;
                return;
            }
        }
    }
}

/// Retries `operation` while its error is transient.
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut operation: impl FnMut() -> F,
) -> Result<T, E> {
    let mut backoff = Backoff::default();
    loop {
        match operation().await {
            Err(e) if transient(&e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

fn cluster_transient(error: &StateError) -> bool {
    matches!(error, StateError::Secret { source: ClusterError::Transport(_), .. })
        || matches!(error, StateError::Secret { source: ClusterError::Api { code, .. }, .. } if *code >= 500 || *code == 429)
}

/// Rotate a credential with less than this much life left.
const ROTATE_BEFORE: chrono::Duration = chrono::Duration::days(30);

async fn rotate_if_due(hub: &HubClient, state: &mut AgentState) -> Result<bool, HubError> {
    let due = state
        .credential_expires_at
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_some_and(|expiry| expiry.with_timezone(&chrono::Utc) - chrono::Utc::now() < ROTATE_BEFORE);
    if !due {
        return Ok(false);
    }
    let fresh = hub.rotate().await?;
    hub.set_credential(&fresh.credential);
    state.credential = Some(fresh.credential);
    state.credential_expires_at = fresh.expires_at;
    tracing::info!("rotated the hub credential");
    Ok(true)
}

/// Joins (first start) or loads the stored credential.
async fn establish(options: &Options, cluster: &Cluster, store: &StateStore, hub: &HubClient) -> Result<AgentState, AgentError> {
    let mut state = retry("loading the agent state", cluster_transient, || store.load(cluster)).await?;
    if let (Some(stored), Some(given)) = (&state.cluster, &options.cluster_name)
        && stored != given
    {
        return Err(AgentError::ClusterMismatch { stored: stored.clone(), given: given.clone() });
    }
    let identity = match state.identity.as_deref().and_then(|i| i.parse::<age::x25519::Identity>().ok()) {
        Some(identity) => identity,
        None => {
            let identity = age::x25519::Identity::generate();
            state.identity = Some(identity.to_string().expose_secret().to_string());
            identity
        }
    };
    if state.credential.is_none() {
        let join_token = options.join_token.clone().ok_or(AgentError::NoCredential)?;
        let request = JoinRequest { join_token, public_key: identity.to_public().to_string(), cluster_name: options.cluster_name.clone() };
        let credential = retry("joining the hub", HubError::is_transient, || hub.join(&request)).await?;
        tracing::info!(cluster = %credential.cluster, "joined the hub");
        state.cluster = Some(credential.cluster);
        state.credential = Some(credential.credential);
        state.credential_expires_at = credential.expires_at;
        retry("saving the agent state", cluster_transient, || store.save(cluster, &state)).await?;
    }
    hub.set_credential(state.credential.as_deref().unwrap_or_default());
    Ok(state)
}

/// Runs the agent until `shutdown` completes or the hub refuses it.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let cluster = Cluster::connect(options.kubeconfig.as_deref()).await?;
    let store = match &options.state_file {
        Some(path) => StateStore::File(path.clone()),
        None => StateStore::Secret { namespace: options.namespace.clone() },
    };
    let hub = HubClient::new(&options.hub, options.hub_ca.as_deref(), options.proxy.as_deref())?;
    let mut state = establish(&options, &cluster, &store, &hub).await?;
    let cluster_name = state.cluster.clone().unwrap_or_default();
    // Opens the EncryptedSecrets the hub sealed to this agent.
    let identities: Vec<age::x25519::Identity> = state.identity.iter().filter_map(|i| i.parse().ok()).collect();
    tracing::info!(cluster = %cluster_name, hub = %options.hub, "agent running");

    let (events_tx, mut events) = mpsc::channel(16);
    let watcher = tokio::spawn(watch_revisions(hub.clone(), options.poll_wait, events_tx));
    let _stop_watcher = AbortOnDrop(watcher);
    let lease =
        lease::Lease { namespace: options.namespace.clone(), identity: options.identity.clone(), duration: Duration::from_secs(30) };

    let mut drift_tick = tokio::time::interval(options.drift_interval);
    let mut heartbeat_tick = tokio::time::interval(options.heartbeat_interval);
    drift_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut have: Option<String> = None;
    let mut target: Option<String> = None;
    let mut reported: BTreeMap<String, FolderStatus> = BTreeMap::new();
    let mut folders: BTreeMap<String, FolderStatus> = BTreeMap::new();
    let mut last_errors: Vec<sync::ObjectError> = Vec::new();
    let mut drift_total: u64 = 0;
    let mut recent_drift: Vec<String> = Vec::new();
    let mut facts: Option<facts::Facts> = None;
    let mut saved = state.clone();
    let mut election = options.leader_election;
    let mut leader = !election;

    loop {
        let mut pass = false;
        let mut report = false;
        tokio::select! {
            _ = &mut shutdown => break,
            event = events.recv() => match event {
                Some(Event::Revision(revision)) => target = revision,
                Some(Event::HubDown(message)) => tracing::warn!(error = %message, "hub unreachable; keeping the applied state"),
                Some(Event::Refused(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = drift_tick.tick() => pass = true,
            _ = heartbeat_tick.tick() => report = true,
        }
        // The lease is renewed with each heartbeat, well within its duration.
        if election && report {
            let was = leader;
            leader = match lease.acquire(&cluster).await {
                Ok(held) => held,
                // Outside a cluster there may be no agent namespace: then this is the one agent.
                Err(e) if e.code() == Some(404) => {
                    tracing::warn!(namespace = %options.namespace, "no namespace for the lease; leader election is off");
                    election = false;
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the lease");
                    false
                }
            };
            if leader != was {
                tracing::info!(leader, identity = %options.identity, "leadership changed");
            }
        }
        if !leader {
            continue;
        }
        if target.is_some() && target != have {
            let revision = target.clone().unwrap_or_default();
            let since = have.clone().filter(|_| !files.is_empty());
            match hub.manifests(&revision, since.as_deref()).await {
                Ok(manifests) => {
                    if manifests.complete {
                        files.clear();
                    }
                    for path in &manifests.removed {
                        files.remove(path);
                    }
                    files.extend(manifests.files);
                    have = Some(manifests.revision);
                    pass = true;
                }
                Err(HubError::Refused(message)) => return Err(HubError::Refused(message).into()),
                Err(e) => tracing::warn!(error = %e, "cannot fetch the desired state; keeping the applied state"),
            }
        }
        if pass && have.is_some() {
            let mut desired = Desired::from_files(&files);
            desired.open_secrets(&identities);
            let outcome = sync::sync(&cluster, &desired, &mut state.inventory, options.concurrency).await;
            if !outcome.applied.is_empty() || !outcome.pruned.is_empty() || !outcome.errors.is_empty() {
                tracing::info!(
                    revision = have.as_deref().unwrap_or_default(),
                    applied = outcome.applied.len(),
                    pruned = outcome.pruned.len(),
                    drift = outcome.drift.len(),
                    errors = outcome.errors.len(),
                    "synced"
                );
            }
            drift_total += outcome.drift.len() as u64;
            recent_drift.extend(outcome.drift.iter().map(ToString::to_string));
            let excess = recent_drift.len().saturating_sub(20);
            recent_drift.drain(..excess);
            state.applied_revision = have.clone();
            folders = outcome.folders;
            report = report || folders != reported || outcome.errors != last_errors || !outcome.drift.is_empty();
            last_errors = outcome.errors;
        }
        if report {
            match rotate_if_due(&hub, &mut state).await {
                Ok(_) => {}
                Err(HubError::Refused(message)) => return Err(HubError::Refused(message).into()),
                Err(e) => tracing::warn!(error = %e, "cannot rotate the credential"),
            }
            match facts::gather(&cluster).await {
                Ok(gathered) => facts = Some(gathered),
                Err(e) => tracing::warn!(error = %e, "cannot gather cluster facts"),
            }
            let changed: BTreeMap<&String, &FolderStatus> = folders.iter().filter(|(f, s)| reported.get(*f) != Some(*s)).collect();
            let body = hub::Report {
                facts: facts.clone(),
                applied_revision: state.applied_revision.clone(),
                leader: Some(options.identity.clone()),
                drift: Some(heimdall_api::agent::Drift { corrected: drift_total, recent: recent_drift.to_vec() }),
                errors: last_errors.clone(),
                apps: changed.into_iter().map(|(folder, status)| (folder.clone(), status.report())).collect(),
            };
            match hub.report(&body).await {
                Ok(_) => reported = folders.clone(),
                Err(HubError::Refused(message)) => return Err(HubError::Refused(message).into()),
                Err(e) => {
                    // The hub may have lost what it had; say everything again next time.
                    reported.clear();
                    tracing::warn!(error = %e, "cannot report to the hub");
                }
            }
        }
        if state != saved {
            match store.save(&cluster, &state).await {
                Ok(()) => saved = state.clone(),
                Err(e) => tracing::warn!(error = %e, "cannot save the agent state"),
            }
        }
    }
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Re-exported for the benchmark and tests: one sync pass.
pub async fn sync_once(
    cluster: &Cluster,
    files: &BTreeMap<String, String>,
    inventory: &mut Inventory,
    concurrency: usize,
) -> sync::Outcome {
    sync::sync(cluster, &Desired::from_files(files), inventory, concurrency).await
}
