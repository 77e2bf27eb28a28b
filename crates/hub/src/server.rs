//! Opening the hub's data, bootstrapping a fresh one, and serving HTTP(S).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use heimdall_store::Store;

use crate::admission::apply_documents;
use crate::auth::Role;
use crate::config::{HubConfig, TlsConfig};
use crate::state::AppState;
use crate::{HubError, api};
use heimdall_api::resources::{ApplyOptions, ApplyResponse};

/// Name of the admin token in the store and of its file in the data dir.
pub const ADMIN_TOKEN: &str = "admin-token";
/// The audit trail's name for what the hub does by itself at start-up.
const BOOTSTRAP_ACTOR: &str = "heimdall-up";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |source| HubError::Io { path: path.to_path_buf(), source }
}

/// Creates the data dir (private to its owner) and connects to the store.
pub async fn open(config: &HubConfig) -> Result<AppState, HubError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir.join("git")).map_err(io_error(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
    let store = Store::connect(&config.database_url()).await?;
    tracing::info!(backend = ?store.backend(), data_dir = %dir.display(), "store ready");
    let mut state = AppState::new(store, dir.join("git"));
    state.agent_unreachable_after = std::time::Duration::from_secs(config.agent_unreachable_after_seconds.max(1));
    state.public_url = config.public_url();
    state.fetch = std::sync::Arc::new(config.catalog.clone());
    state.secure_cookies = config.tls.is_some() || state.public_url.starts_with("https://");
    if let Some(oidc) = &config.oidc {
        if oidc.client_secret.as_deref().is_none_or(str::is_empty) {
            return Err(HubError::Config("oidc.clientSecret (or HEIMDALL_OIDC_CLIENT_SECRET) is required for the portal's sign-in".into()));
        }
        tracing::info!(issuer = %oidc.issuer, client = %oidc.client_id, "single sign-on configured");
        state.oidc = Some(std::sync::Arc::new(crate::oidc::Oidc::new(oidc.clone())));
    }
    let key_file = config.master_key_file.clone().unwrap_or_else(|| dir.join("master.key"));
    state.secrets = std::sync::Arc::new(crate::secrets::Secrets::open(&key_file, &state.store).await?);
    state.rendering.reload(&state.store).await?;
    Ok(state)
}

pub struct AdminToken {
    pub path: PathBuf,
    pub token: String,
    pub created: bool,
}

/// Makes sure `DATA_DIR/admin-token` exists (mode 0600) and that the store
/// accepts it. The store keeps only its hash.
pub async fn ensure_admin_token(store: &Store, data_dir: &Path) -> Result<AdminToken, HubError> {
    let path = data_dir.join(ADMIN_TOKEN);
    let (token, created) = match std::fs::read_to_string(&path) {
        Ok(text) => (text.trim().to_string(), false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = heimdall_store::generate_token();
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io_error(&path))?;
            writeln!(file, "{token}").map_err(io_error(&path))?;
            (token, true)
        }
        Err(e) => return Err(io_error(&path)(e)),
    };
    if token.is_empty() {
        return Err(HubError::Config(format!("{} is empty: delete it and restart to generate a new admin token", path.display())));
    }
    store.put_token("admin", &token, Role::PLATFORM_ADMIN, None).await?;
    Ok(AdminToken { path, token, created })
}

/// Applies `(origin, text)` manifests as one all-or-nothing change.
pub async fn load_manifests(state: &AppState, files: Vec<(String, String)>) -> Result<ApplyResponse, HubError> {
    let mut documents = Vec::new();
    for (origin, text) in files {
        documents.extend(heimdall_model::parse_documents(&text, &origin).map_err(|e| HubError::Examples(e.to_string()))?);
    }
    apply_documents(state, &crate::auth::Principal::system(BOOTSTRAP_ACTOR), documents, &ApplyOptions::default())
        .await
        .map_err(|e| HubError::Examples(e.report()))
}

/// Registers each catalog-info file as a `file` CatalogLocation named
/// `<prefix>-<its folder>`, so the catalog reads it (and follows its Location
/// entities) like any location the platform team registers.
pub async fn register_catalog_locations(state: &AppState, prefix: &str, roots: &[PathBuf]) -> Result<ApplyResponse, HubError> {
    let mut documents = Vec::new();
    for root in roots {
        let folder = root.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or("catalog");
        let name: String =
            format!("{prefix}-{folder}").to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let document = serde_json::json!({
            "apiVersion": heimdall_model::spec::platform::GROUP_VERSION,
            "kind": crate::catalog::locations::LOCATION_KIND,
            "metadata": {"name": name},
            "spec": {"type": "file", "target": root.display().to_string()},
        });
        documents.push((format!("{}", root.display()), serde_json::to_string(&document).map_err(|e| HubError::Examples(e.to_string()))?));
    }
    load_manifests(state, documents).await
}

/// Serves the API on `listener` until `shutdown` completes, over TLS when configured.
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Option<&TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let reconciler = tokio::spawn(crate::reconcile::supervise(state.clone()));
    let heartbeats = tokio::spawn(crate::fleet::watch_heartbeats(state.clone(), state.agent_unreachable_after));
    let catalog = tokio::spawn(crate::catalog::follow(state.clone()));
    let locations = tokio::spawn(crate::catalog::locations::refresh_every_interval(state.clone()));
    let app = api::router(state);
    let address = listener.local_addr().map_err(|source| HubError::Serve(source.to_string()))?;
    listener.set_nonblocking(true).map_err(|source| HubError::Serve(source.to_string()))?;
    match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| HubError::Serve(source.to_string()))?;
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| HubError::Serve(e.to_string()))?;
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file).await.map_err(|e| {
                HubError::Config(format!("TLS certificate {} or key {}: {e}", tls.cert_file.display(), tls.key_file.display()))
            })?;
            let handle = axum_server::Handle::new();
            let on_shutdown = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                on_shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            axum_server::from_tcp_rustls(listener, config)
                .map_err(|e| HubError::Serve(e.to_string()))?
                .handle(handle)
                .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
                .map_err(|e| HubError::Serve(e.to_string()))?;
        }
    }
    reconciler.abort();
    heartbeats.abort();
    catalog.abort();
    locations.abort();
    tracing::info!(%address, "hub stopped");
    Ok(())
}
