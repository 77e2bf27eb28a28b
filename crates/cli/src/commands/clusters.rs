//! `heimdall cluster ...`: what connects a cluster to its repository.

use std::process::ExitCode;

use anyhow::Result;
use heimdall_hub::api::clusters::ClusterToken;
use heimdall_hub::api::gitops::{BootstrapRequest, Rebuilt};

use crate::client::Client;

pub async fn token(client: &Client, name: &str) -> Result<ExitCode> {
    let issued: ClusterToken = client.post_json(&format!("/api/v1/clusters/{name}/tokens"), &serde_json::json!({})).await?;
    eprintln!("Token for cluster {name} (shown once; it may read only {}/git/clusters/{name}.git):", client.hub());
    println!("{}", issued.token);
    Ok(ExitCode::SUCCESS)
}

pub async fn bootstrap(client: &Client, name: &str, hub_url: Option<String>, issue_token: bool) -> Result<ExitCode> {
    let token = if issue_token {
        let issued: ClusterToken = client.post_json(&format!("/api/v1/clusters/{name}/tokens"), &serde_json::json!({})).await?;
        Some(issued.token)
    } else {
        None
    };
    let request = BootstrapRequest { hub_url: hub_url.unwrap_or_else(|| client.hub().to_string()), token };
    print!("{}", client.post_text(&format!("/api/v1/clusters/{name}/bootstrap"), &request).await?);
    Ok(ExitCode::SUCCESS)
}

pub async fn rebuild(client: &Client, cluster: &str) -> Result<ExitCode> {
    let rebuilt: Rebuilt = client.post_json(&format!("/api/v1/clusters/{cluster}/rebuild"), &serde_json::json!({})).await?;
    if let Some(aside) = &rebuilt.set_aside {
        eprintln!("The old repository was moved to {aside}.");
    }
    println!("repository of cluster {} rebuilt in {} commit(s)", rebuilt.cluster, rebuilt.commits.len());
    Ok(ExitCode::SUCCESS)
}
