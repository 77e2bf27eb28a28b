//! `history`, `diff` and `rollback` of an application.

use std::process::ExitCode;

use anyhow::{Result, bail};
use heimdall_api::history::{Diff, History, RollbackRequest};
use heimdall_model::Resource;

use super::resources::{item_path, kind, namespaced_name, url_encode};
use crate::client::Client;
use crate::output::{OutputFormat, serialize, table};

fn application_path(kind_name: &str, name: &str, namespace: Option<&str>) -> Result<String> {
    let kind = kind(kind_name)?;
    if kind.kind != "Application" {
        bail!("history is kept for applications, not {}", kind.plural);
    }
    let (ns, name) = namespaced_name(kind, name, namespace)?;
    Ok(item_path(kind, ns.as_deref(), &name))
}

/// Long batch summaries keep the table readable; `-o yaml` has them whole.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max - 3).collect::<String>() + "..." }
}

pub async fn history(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>, output: OutputFormat) -> Result<ExitCode> {
    let history: History = client.get(&format!("{}/history", application_path(kind_name, name, namespace)?)).await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&history, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = history
        .items
        .iter()
        .map(|r| {
            let commits =
                r.commits.iter().map(|c| format!("{}@{}", c.cluster, &c.commit[..10.min(c.commit.len())])).collect::<Vec<_>>().join(", ");
            vec![
                r.revision.to_string(),
                r.at.clone(),
                r.actor.clone(),
                shorten(&r.summary, 60),
                if commits.is_empty() { "-".into() } else { commits },
            ]
        })
        .collect();
    print!("{}", table(&["REVISION", "AT", "ACTOR", "CHANGE", "COMMITS"], &rows));
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>, from: &str, to: Option<&str>) -> Result<ExitCode> {
    let mut path = format!("{}/diff?from={}", application_path(kind_name, name, namespace)?, url_encode(from));
    if let Some(to) = to {
        path.push_str(&format!("&to={}", url_encode(to)));
    }
    let diff: Diff = client.get(&path).await?;
    if diff.clusters.is_empty() {
        eprintln!("No differences.");
    }
    for cluster in diff.clusters {
        println!(
            "# cluster {}: {} -> {}",
            cluster.cluster,
            cluster.from.as_deref().unwrap_or("(nothing)"),
            cluster.to.as_deref().unwrap_or("(nothing)")
        );
        print!("{}", cluster.diff);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>, to: &str) -> Result<ExitCode> {
    let path = format!("{}/rollback", application_path(kind_name, name, namespace)?);
    let app: Resource = client.post_json(&path, &RollbackRequest { to: to.to_string() }).await?;
    println!(
        "application/{}/{} rolled back to {to}; now at revision {}",
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name,
        app.metadata.resource_version.as_deref().unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
