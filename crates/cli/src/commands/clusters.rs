//! `heimdall cluster ...`: what connects a cluster to its repository.

use std::process::ExitCode;

use anyhow::Result;
use heimdall_api::clusters::ClusterToken;
use heimdall_api::clusters::JoinToken;
use heimdall_api::clusters::{BootstrapRequest, Rebuilt};
use heimdall_api::clusters::{InstallRequest, JoinTokenRequest, Revoked};

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

/// `24h`, `30m`, `7d`, `90s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("expected a duration like 24h, 30m or 7d, got {text:?}"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("expected a duration like 24h, 30m or 7d, got {text:?}")),
    };
    Ok(std::time::Duration::from_secs(number * factor))
}

/// Creates the Cluster and a one-time join token for its agent.
pub async fn add(client: &Client, name: &str, labels: &[(String, String)], delivery: &str, ttl: std::time::Duration) -> Result<ExitCode> {
    let labels: serde_json::Map<String, serde_json::Value> = labels.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let cluster = serde_json::json!({
        "apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"delivery": delivery},
    });
    let _: serde_json::Value = client.post_json("/api/v1/clusters", &cluster).await?;
    let request = JoinTokenRequest { ttl_seconds: Some(ttl.as_secs()) };
    let token: JoinToken = client.post_json(&format!("/api/v1/clusters/{name}/join-tokens"), &request).await?;
    eprintln!("Cluster {name} created. Join token (works once, until {}):", token.expires_at);
    println!("{}", token.token);
    eprintln!("Next, either run the agent with this token:");
    eprintln!("  heimdall agent --hub {} --join-token <token> --kubeconfig <file>", client.hub());
    eprintln!("or install it in the cluster (this issues a fresh token and retires the one above):");
    eprintln!("  heimdall cluster install-manifest {name} | kubectl apply -f -");
    Ok(ExitCode::SUCCESS)
}

pub async fn join_token(client: &Client, name: &str, ttl: std::time::Duration) -> Result<ExitCode> {
    let request = JoinTokenRequest { ttl_seconds: Some(ttl.as_secs()) };
    let token: JoinToken = client.post_json(&format!("/api/v1/clusters/{name}/join-tokens"), &request).await?;
    eprintln!("Join token for cluster {name} (works once, until {}; any earlier unspent one no longer works):", token.expires_at);
    println!("{}", token.token);
    Ok(ExitCode::SUCCESS)
}

pub async fn install_manifest(client: &Client, name: &str, request: InstallRequest) -> Result<ExitCode> {
    print!("{}", client.post_text(&format!("/api/v1/clusters/{name}/install-manifest"), &request).await?);
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke(client: &Client, name: &str) -> Result<ExitCode> {
    let revoked: Revoked = client.post_json(&format!("/api/v1/clusters/{name}/revoke"), &serde_json::json!({})).await?;
    println!("cluster {}: {} credential(s) revoked; its agent is refused from now on", revoked.cluster, revoked.revoked);
    Ok(ExitCode::SUCCESS)
}
