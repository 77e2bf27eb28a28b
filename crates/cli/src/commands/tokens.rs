//! `heimdall token create|list|revoke`: API tokens for machines and CI.

use std::process::ExitCode;

use anyhow::Result;
use heimdall_api::auth::{CreatedToken, TokenSummary};

use super::resources::url_encode;
use crate::client::Client;
use crate::output::{OutputFormat, serialize, table};

pub async fn create(client: &Client, name: &str, role: &str, tenant: Option<&str>, ttl: Option<std::time::Duration>) -> Result<ExitCode> {
    let mut request = serde_json::json!({"name": name, "role": role});
    if let Some(tenant) = tenant {
        request["tenant"] = tenant.into();
    }
    if let Some(ttl) = ttl {
        request["ttlSeconds"] = ttl.as_secs().into();
    }
    let created: CreatedToken = client.post_json("/api/v1/tokens", &request).await?;
    // The token alone on stdout, so `$(heimdall token create ...)` captures just it.
    println!("{}", created.token);
    eprintln!(
        "Token {} with role {}, expires {}; shown once; store it now.",
        created.name,
        created.role,
        created.expires_at.as_deref().unwrap_or("never")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn list(client: &Client, output: OutputFormat) -> Result<ExitCode> {
    let tokens: Vec<TokenSummary> = client.get("/api/v1/tokens").await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&tokens, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = tokens
        .into_iter()
        .map(|t| {
            let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
            vec![t.name, t.role, t.created_at, or_dash(t.expires_at), or_dash(t.last_used_at)]
        })
        .collect();
    print!("{}", table(&["NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED"], &rows));
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke(client: &Client, name: &str) -> Result<ExitCode> {
    let revoked: TokenSummary = client.delete(&format!("/api/v1/tokens/{}", url_encode(name))).await?;
    println!("token {} ({}) revoked", revoked.name, revoked.role);
    Ok(ExitCode::SUCCESS)
}
