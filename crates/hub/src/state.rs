use std::path::PathBuf;
use std::sync::Arc;

use heimdall_gitops::Repositories;
use heimdall_store::Store;

use crate::metrics::Metrics;
use crate::rendering::Rendering;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub rendering: Arc<Rendering>,
    /// The per-cluster git repositories.
    pub repos: Arc<Repositories>,
    /// The service repositories the scaffolder creates (`publish:heimdall`).
    pub services: Arc<heimdall_gitops::ServiceRepositories>,
    /// Scaffolder tasks run by this replica.
    pub tasks: crate::scaffolder::tasks::Tasks,
    /// Moves after every batch of commits, so agents' long polls answer at once.
    pub commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// A cluster whose agent is silent this long is `Unreachable`.
    pub agent_unreachable_after: std::time::Duration,
    /// Held from reading or writing the store until the commits are made, by
    /// every path that delivers (the functions that commit take its guard):
    /// a reconcile that rendered what it read can
    /// then never commit over a newer change made meanwhile.
    pub delivery: Arc<crate::delivery::DeliveryLock>,
    /// The identity provider, when single sign-on is configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// The URL people reach the hub at (for sign-in redirects).
    pub public_url: String,
    /// Cookies carry `Secure` when the hub serves HTTPS.
    pub secure_cookies: bool,
    /// Identities recorded as User/Group by this process, so a bearer token
    /// is not a write per request.
    pub seen_identities: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
    /// The master keys of secrets at rest.
    pub secrets: Arc<crate::secrets::Secrets>,
    /// The software catalog (Backstage entities), kept current from the event log.
    pub catalog: crate::catalog::SoftwareCatalog,
    /// What URLs others name the hub may fetch (catalog locations).
    pub fetch: Arc<crate::fetch::FetchPolicy>,
    /// Failed authentications per client, for the rate limit.
    pub auth_failures: Arc<crate::authentication::AuthFailures>,
    /// When each catalog location was last read on request, so refreshes cannot make the hub fetch without pause.
    pub location_reads: Arc<parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// How often a long-lived stream (a watch, a task's event stream) asks whether its credential still holds.
    pub credential_recheck: std::time::Duration,
}

impl AppState {
    /// Wires the store's operation timings into the metrics; repositories
    /// live under `git_root`. The platform starts as the built-in one;
    /// [`crate::server::open`] loads the stored one.
    pub fn new(store: Store, git_root: impl Into<PathBuf>) -> Self {
        let metrics = Arc::new(Metrics::default());
        let store = store.with_observer(metrics.clone());
        let git_root = git_root.into();
        Self {
            services: Arc::new(heimdall_gitops::ServiceRepositories::new(git_root.clone())),
            tasks: Default::default(),
            store,
            metrics,
            rendering: Arc::new(Rendering::default()),
            repos: Arc::new(Repositories::new(git_root)),
            commits: Arc::new(tokio::sync::watch::channel(0).0),
            agent_unreachable_after: std::time::Duration::from_secs(90),
            delivery: Arc::default(),
            oidc: None,
            public_url: "http://127.0.0.1:8080".into(),
            secure_cookies: false,
            seen_identities: Arc::default(),
            secrets: Arc::default(),
            catalog: Default::default(),
            fetch: Arc::default(),
            auth_failures: Arc::default(),
            credential_recheck: std::time::Duration::from_secs(5),
            location_reads: Arc::default(),
        }
    }
}
