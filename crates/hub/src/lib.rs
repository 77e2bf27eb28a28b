//! Heimdall's hub: the REST API over the store, authentication, metrics,
//! configuration and start-up. The binary's `up` and `hub` commands are thin
//! wrappers over [`server`].

pub mod actors;
pub mod admission;
pub mod api;
pub mod auth;
pub mod authentication;
pub mod catalog;
pub mod claims;
pub mod config;
pub mod delivery;
pub mod error;
pub mod examples;
pub mod fetch;
pub mod fleet;
pub mod git;
pub mod history;
pub mod identity;
pub mod install;
pub mod metrics;
pub mod migrations;
pub mod oidc;
pub mod portal;
pub mod reconcile;
pub mod rejection;
pub mod rendering;
pub mod repositories;
pub mod scaffolder;
pub mod secret_values;
pub mod secrets;
pub mod server;
pub mod state;
pub mod web;

use std::path::PathBuf;

pub use api::router;
pub use config::HubConfig;
pub use error::ApiError;
pub use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] heimdall_store::StoreError),
    #[error("loading manifests: {0}")]
    Examples(String),
    #[error("serving: {0}")]
    Serve(String),
}
