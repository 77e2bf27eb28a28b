use std::process::ExitCode;

use anyhow::Result;
use heimdall_api::history::AuditList;

use super::resources::url_encode;
use crate::client::Client;
use crate::output::{OutputFormat, serialize, table};

pub async fn audit(
    client: &Client,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    limit: usize,
    output: OutputFormat,
) -> Result<ExitCode> {
    let mut query = vec![format!("limit={limit}")];
    for (key, value) in [("kind", kind), ("name", name), ("namespace", namespace)] {
        if let Some(value) = value {
            query.push(format!("{key}={}", url_encode(&value)));
        }
    }
    let list: AuditList = client.get(&format!("/api/v1/audit?{}", query.join("&"))).await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&list, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .items
        .iter()
        .map(|e| {
            let object = if e.namespace.is_empty() { e.name.clone() } else { format!("{}/{}", e.namespace, e.name) };
            let changes = e.changes.iter().map(|c| c.path.clone()).collect::<Vec<_>>().join(", ");
            vec![e.revision.to_string(), e.at.clone(), e.actor.clone(), e.verb.clone(), e.kind.clone(), object, changes]
        })
        .collect();
    print!("{}", table(&["REVISION", "AT", "ACTOR", "VERB", "KIND", "OBJECT", "CHANGED"], &rows));
    Ok(ExitCode::SUCCESS)
}
