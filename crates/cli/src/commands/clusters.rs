//! `heimdall cluster ...`: what connects a cluster to its repository.

use std::process::ExitCode;

use anyhow::Result;
use heimdall_hub::api::clusters::ClusterToken;

use crate::client::Client;

pub async fn token(client: &Client, name: &str) -> Result<ExitCode> {
    let issued: ClusterToken = client.post_json(&format!("/api/v1/clusters/{name}/tokens"), &serde_json::json!({})).await?;
    eprintln!("Token for cluster {name} (shown once; it may read only {}/git/clusters/{name}.git):", client.hub());
    println!("{}", issued.token);
    Ok(ExitCode::SUCCESS)
}
