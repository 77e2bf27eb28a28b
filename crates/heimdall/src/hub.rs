//! `heimdall up` and `heimdall hub`: run a hub in this process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use heimdall_hub::HubConfig;
use heimdall_hub::config::LogFormat;
use heimdall_hub::server;
use tracing_subscriber::EnvFilter;

use heimdall_cli::context::{ClientConfig, ConfigLock, Context, config_path};

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HEIMDALL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

fn bind(listen: &str) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}; pass --listen with a free address"))
}

fn url(config: &HubConfig, listener: &std::net::TcpListener) -> Result<String> {
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    Ok(format!("{scheme}://{}", listener.local_addr()?))
}

pub struct UpOptions {
    /// A hub config file; without one, the defaults (and no environment variables).
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub examples: Option<PathBuf>,
    pub no_examples: bool,
}

pub async fn up(options: UpOptions) -> Result<ExitCode> {
    let mut config = match &options.config {
        Some(file) => HubConfig::load(Some(file), |name| std::env::var(name).ok())?,
        None => HubConfig::default(),
    };
    init_logging(config.log_format);
    if let Some(data_dir) = options.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = options.listen {
        config.listen = listen;
    }
    config.data_dir = std::path::absolute(&config.data_dir).with_context(|| format!("resolving {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.clone();
    let listener = bind(&config.listen)?;
    let hub_url = url(&config, &listener)?;
    // With --listen 127.0.0.1:0 only the bound address is right for the sign-in redirect.
    config.public_url.get_or_insert_with(|| hub_url.clone());
    let state = server::open(&config).await?;
    let fresh = state.store.revision().await? == 0;
    let token = server::ensure_admin_token(&state.store, &data_dir).await?;
    println!("Admin token: {} (mode 0600{})", token.path.display(), if token.created { ", new" } else { "" });

    if fresh && !options.no_examples {
        let files = match &options.examples {
            Some(dir) => heimdall_cli::files::read_manifests(dir)?,
            None => heimdall_hub::examples::embedded(),
        };
        let loaded = server::load_manifests(&state, files).await?;
        // Templates and catalog files are read by the catalog from disk, so the embedded ones are written out first.
        let catalogs = match &options.examples {
            Some(dir) => heimdall_hub::examples::catalog_roots(&std::path::absolute(dir)?),
            None => heimdall_hub::examples::write_embedded_catalogs(&data_dir.join("examples"))?,
        };
        server::register_catalog_locations(&state, "examples", &catalogs).await?;
        println!("Loaded the example organization: {} resources, {} catalog locations", loaded.results.len(), catalogs.len());
    }

    let path = config_path();
    {
        let _lock = ConfigLock::acquire(&path).await?;
        let mut client_config = ClientConfig::load(&path)?;
        client_config
            .contexts
            .insert("local".into(), Context { hub: hub_url.clone(), token_file: Some(token.path.clone()), ..Context::default() });
        client_config.current_context = Some("local".into());
        client_config.save(&path)?;
    }
    println!("CLI context \"local\" written to {}", path.display());
    if let Some(oidc) = &config.oidc {
        println!("Single sign-on with {} (heimdall login)", oidc.issuer);
    }

    println!("Heimdall hub ready at {hub_url} (API under {hub_url}/api/v1, OpenAPI at {hub_url}/api/openapi.json)");
    server::serve(listener, state, config.tls.as_ref(), shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn hub(config_file: Option<PathBuf>) -> Result<ExitCode> {
    let config = HubConfig::load(config_file.as_deref(), |name| std::env::var(name).ok())?;
    init_logging(config.log_format);
    let listener = bind(&config.listen)?;
    let state = server::open(&config).await?;
    let token = server::ensure_admin_token(&state.store, &config.data_dir).await?;
    tracing::info!(path = %token.path.display(), created = token.created, "admin token");
    let hub_url = url(&config, &listener)?;
    tracing::info!(url = %hub_url, "hub ready");
    server::serve(listener, state, config.tls.as_ref(), shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
