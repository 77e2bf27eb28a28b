//! `apply`, `get`, `describe` and `delete`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use heimdall_api::history::AuditList;
use heimdall_api::resources::ResourceListBody;
use heimdall_api::resources::{ApplyDocument, ApplyOptions, ApplyRequest, ApplyResponse};
use heimdall_model::kinds::{self, KindInfo};
use heimdall_model::{Resource, parse_documents};

use crate::client::{Client, render_api_error};
use crate::output::{OutputFormat, age, serialize, table};

pub(crate) fn kind(name: &str) -> Result<&'static KindInfo> {
    kinds::by_name(name).with_context(|| {
        let hint = kinds::suggest(name).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
        let known: Vec<&str> = kinds::KINDS.iter().map(|k| k.plural).collect();
        format!("unknown kind {name:?}: expected one of {}{hint}", known.join(", "))
    })
}

/// Splits `NAMESPACE/NAME`; a bare NAME takes `-n` or `default`.
pub(crate) fn namespaced_name(kind: &KindInfo, name: &str, namespace: Option<&str>) -> Result<(Option<String>, String)> {
    match (kind.is_namespaced(), name.split_once('/')) {
        (true, Some((ns, name))) => {
            if namespace.is_some_and(|n| n != ns) {
                bail!("{name:?} names namespace {ns:?} but -n says {:?}", namespace.unwrap_or_default());
            }
            Ok((Some(ns.to_string()), name.to_string()))
        }
        (true, None) => Ok((Some(namespace.unwrap_or("default").to_string()), name.to_string())),
        (false, Some(_)) => bail!("{} is cluster-scoped: give just a name, not {name:?}", kind.kind),
        (false, None) => Ok((None, name.to_string())),
    }
}

fn collection_path(kind: &KindInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.is_namespaced() => format!("/api/v1/namespaces/{ns}/{}", kind.plural),
        _ => format!("/api/v1/{}", kind.plural),
    }
}

pub(crate) fn item_path(kind: &KindInfo, namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", collection_path(kind, namespace))
}

fn read_documents(files: &[PathBuf]) -> Result<Vec<ApplyDocument>> {
    let mut documents = Vec::new();
    let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(|f| f.as_os_str() == "-");
    if !stdin.is_empty() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        documents.extend(parse_documents(&text, "<stdin>").map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
    documents.extend(crate::files::read_with_sources(&paths)?);
    if documents.is_empty() {
        bail!("no documents found in {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(documents.into_iter().map(|d| ApplyDocument { source: d.source, object: d.value }).collect())
}

pub async fn apply(
    client: &Client,
    files: &[PathBuf],
    namespace: Option<String>,
    dry_run: bool,
    continue_on_error: bool,
) -> Result<ExitCode> {
    let request = ApplyRequest { documents: read_documents(files)?, options: ApplyOptions { namespace, dry_run, continue_on_error } };
    let response: ApplyResponse = client.post_json("/api/v1/apply", &request).await?;
    let suffix = if response.dry_run { " (dry run)" } else { "" };
    for result in &response.results {
        let singular = kinds::by_kind(&result.kind).map_or(result.kind.to_lowercase(), |k| k.singular.to_string());
        let name = match &result.namespace {
            Some(ns) => format!("{ns}/{}", result.name),
            None => result.name.clone(),
        };
        let outcome = serde_json::to_value(result.outcome)?;
        println!("{singular}/{name} {}{suffix}", outcome.as_str().unwrap_or_default());
    }
    if response.errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let refused = heimdall_api::ApiError {
        status: 422,
        reason: "Invalid".into(),
        message: format!("{} problem(s); the documents above were applied, these were not:", response.errors.len()),
        details: response.errors,
        permission: None,
    };
    eprintln!("error: {}", render_api_error(&refused));
    Ok(ExitCode::FAILURE)
}

fn rows(kind: &KindInfo, items: &[Resource], with_namespace: bool) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let now = chrono::Utc::now();
    let mut headers = Vec::new();
    if with_namespace {
        headers.push("NAMESPACE");
    }
    headers.push("NAME");
    headers.extend(kind.columns.iter().map(|(header, _)| *header));
    headers.push("AGE");
    let rows = items
        .iter()
        .map(|item| {
            let mut row = Vec::new();
            if with_namespace {
                row.push(item.metadata.namespace.clone().unwrap_or_default());
            }
            row.push(item.metadata.name.clone());
            row.extend(kind.columns.iter().map(|(_, cell)| cell(item)));
            row.push(age(item.metadata.creation_timestamp.as_deref(), now));
            row
        })
        .collect();
    (headers, rows)
}

pub async fn get(
    client: &Client,
    kind_name: &str,
    name: Option<&str>,
    namespace: Option<&str>,
    selector: Option<&str>,
    chunk_size: usize,
    output: OutputFormat,
) -> Result<ExitCode> {
    let kind = kind(kind_name)?;
    if let Some(name) = name {
        let (ns, name) = namespaced_name(kind, name, namespace)?;
        let resource: Resource = client.get(&item_path(kind, ns.as_deref(), &name)).await?;
        match output {
            OutputFormat::Table => {
                let (headers, rows) = rows(kind, std::slice::from_ref(&resource), kind.is_namespaced());
                print!("{}", table(&headers, &rows));
            }
            format => print!("{}", serialize(&resource, format)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Page by page, as kubectl's --chunk-size does: no answer holds the whole fleet.
    let mut path = format!("{}?limit={}", collection_path(kind, namespace), chunk_size.max(1));
    if let Some(selector) = selector {
        path.push_str(&format!("&labelSelector={}", url_encode(selector)));
    }
    let mut list: ResourceListBody = client.get(&path).await?;
    while let Some(token) = list.metadata.continue_token.take() {
        let mut next: ResourceListBody = client.get(&format!("{path}&continue={}", url_encode(&token))).await?;
        list.items.append(&mut next.items);
        list.metadata.continue_token = next.metadata.continue_token;
    }
    match output {
        OutputFormat::Table if list.items.is_empty() => eprintln!("No {} found.", kind.plural),
        OutputFormat::Table => {
            let (headers, rows) = rows(kind, &list.items, kind.is_namespaced() && namespace.is_none());
            print!("{}", table(&headers, &rows));
        }
        format => print!("{}", serialize(&list, format)?),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) use heimdall_api::url_encode;

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|line| format!("{}{line}\n", " ".repeat(by))).collect()
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "<none>".into();
    }
    map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n              ")
}

pub async fn describe(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>) -> Result<ExitCode> {
    let kind = kind(kind_name)?;
    let (ns, name) = namespaced_name(kind, name, namespace)?;
    let resource: Resource = client.get(&item_path(kind, ns.as_deref(), &name)).await?;
    let meta = &resource.metadata;
    let mut out = String::new();
    out.push_str(&format!("Name:         {}\n", meta.name));
    if let Some(ns) = &meta.namespace {
        out.push_str(&format!("Namespace:    {ns}\n"));
    }
    out.push_str(&format!("Kind:         {} ({})\n", resource.kind, resource.api_version));
    out.push_str(&format!("Labels:       {}\n", pairs(&meta.labels)));
    out.push_str(&format!("Annotations:  {}\n", pairs(&meta.annotations)));
    out.push_str(&format!("UID:          {}\n", meta.uid.as_deref().unwrap_or_default()));
    out.push_str(&format!(
        "Revision:     {} (generation {})\n",
        meta.resource_version.as_deref().unwrap_or_default(),
        meta.generation.unwrap_or_default()
    ));
    out.push_str(&format!("Created:      {}\n", meta.creation_timestamp.as_deref().unwrap_or_default()));
    out.push_str("Spec:\n");
    out.push_str(&indent(&serialize(&resource.spec, OutputFormat::Yaml)?, 2));
    out.push_str("Status:\n");
    match &resource.status {
        Some(status) => out.push_str(&indent(&serialize(status, OutputFormat::Yaml)?, 2)),
        None => out.push_str("  <none>\n"),
    }

    let mut query = format!("/api/v1/audit?kind={}&name={}&limit=5", kind.kind, url_encode(&name));
    if let Some(ns) = &ns {
        query.push_str(&format!("&namespace={}", url_encode(ns)));
    }
    let audit: AuditList = client.get(&query).await?;
    out.push_str("Recent changes:\n");
    let rows: Vec<Vec<String>> = audit
        .items
        .iter()
        .map(|e| {
            vec![
                e.revision.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.verb.clone(),
                e.changes.iter().map(|c| c.path.clone()).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    out.push_str(&indent(&table(&["REVISION", "AT", "ACTOR", "VERB", "CHANGED"], &rows), 2));
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub async fn approve(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>, step: &str) -> Result<ExitCode> {
    let kind = kind(kind_name)?;
    if kind.kind != "Application" {
        bail!("only applications have workflows to approve, not {}", kind.plural);
    }
    let (ns, name) = namespaced_name(kind, name, namespace)?;
    let path = format!("{}/approve", item_path(kind, ns.as_deref(), &name));
    let app: Resource = client.post_json(&path, &serde_json::json!({"step": step})).await?;
    let phase = heimdall_model::status::status_of::<heimdall_model::status::AppStatus>(&app).phase.unwrap_or_else(|| "Pending".into());
    println!("application/{}/{name} step {step} approved; phase {phase}", ns.unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(client: &Client, kind_name: &str, name: &str, namespace: Option<&str>) -> Result<ExitCode> {
    let kind = kind(kind_name)?;
    let (ns, name) = namespaced_name(kind, name, namespace)?;
    let deleted: Resource = client.delete(&item_path(kind, ns.as_deref(), &name)).await?;
    let shown = match &deleted.metadata.namespace {
        Some(ns) => format!("{ns}/{}", deleted.metadata.name),
        None => deleted.metadata.name.clone(),
    };
    println!("{}/{shown} deleted", kind.singular);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_by_scope() {
        let app = kinds::by_name("app").expect("kind");
        let cluster = kinds::by_name("cluster").expect("kind");
        assert_eq!(namespaced_name(app, "shop/web", None).expect("ok"), (Some("shop".into()), "web".into()));
        assert_eq!(namespaced_name(app, "web", Some("shop")).expect("ok"), (Some("shop".into()), "web".into()));
        assert_eq!(namespaced_name(app, "web", None).expect("ok"), (Some("default".into()), "web".into()));
        assert!(namespaced_name(app, "shop/web", Some("other")).is_err());
        assert!(namespaced_name(cluster, "a/b", None).is_err());
        assert_eq!(item_path(cluster, None, "prod-1"), "/api/v1/clusters/prod-1");
        assert_eq!(item_path(app, Some("shop"), "web"), "/api/v1/namespaces/shop/applications/web");
    }

    #[test]
    fn selectors_are_encoded() {
        assert_eq!(url_encode("env in (a,b)"), "env%20in%20%28a%2Cb%29");
    }
}
