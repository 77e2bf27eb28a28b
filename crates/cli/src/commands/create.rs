//! `heimdall create`: run a software template as the portal's wizard does,
//! through the hub's scaffolder API. `--set name=value` fills the form
//! (typed by the template's schema), the task's log streams as it runs
//! (server-sent events), and its links are printed at the end.
//! Without `--template`, the templates in the catalog are listed.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::resources::url_encode;
use crate::client::Client;
use crate::output::table;

pub fn parse_set(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected name=value, got {text:?}"))?;
    if key.is_empty() {
        return Err(format!("expected name=value, got {text:?}"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// The value typed by the property's schema: `--set port=8080` is a number when the form wants one.
fn typed(name: &str, text: &str, schema: Option<&Value>) -> Result<Value> {
    let wanted = schema.and_then(|s| s.get("type")).and_then(Value::as_str).unwrap_or("string");
    Ok(match wanted {
        "integer" => json!(text.parse::<i64>().with_context(|| format!("--set {name}: expected an integer, got {text:?}"))?),
        "number" => json!(text.parse::<f64>().with_context(|| format!("--set {name}: expected a number, got {text:?}"))?),
        "boolean" => json!(text.parse::<bool>().with_context(|| format!("--set {name}: expected true or false, got {text:?}"))?),
        "array" | "object" => serde_json::from_str(text).with_context(|| format!("--set {name}: expected JSON ({wanted})"))?,
        _ => json!(text),
    })
}

fn template_path(template: &str) -> Result<(String, String)> {
    let name = template.strip_prefix("template:").unwrap_or(template);
    let (namespace, name) = name.split_once('/').unwrap_or(("default", name));
    if name.is_empty() || name.contains('/') {
        bail!("expected a template name like node-service or template:default/node-service, got {template:?}");
    }
    Ok((namespace.to_string(), name.to_string()))
}

pub async fn list(client: &Client) -> Result<ExitCode> {
    let page: Value = client.get("/api/catalog/entities/by-query?filter=kind=template&orderField=metadata.name,asc&limit=500").await?;
    let rows: Vec<Vec<String>> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let text = |pointer: &str| t.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string();
            vec![text("/metadata/name"), text("/spec/type"), text("/metadata/title")]
        })
        .collect();
    if rows.is_empty() {
        println!("No templates in the catalog: register a location with Template entities (see docs/templates.md).");
    } else {
        print!("{}", table(&["NAME", "TYPE", "TITLE"], &rows));
        println!("\nRun one: heimdall create --template NAME --set name=... --set owner=...");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn create(client: &Client, template: &str, sets: &[(String, String)], dry_run: bool) -> Result<ExitCode> {
    let (namespace, name) = template_path(template)?;
    let schema: Value = client
        .get(&format!("/api/scaffolder/v2/templates/{}/template/{}/parameter-schema", url_encode(&namespace), url_encode(&name)))
        .await?;
    let properties: Map<String, Value> = schema["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|step| step.pointer("/schema/properties").and_then(Value::as_object))
        .flat_map(|p| p.clone())
        .collect();
    let mut values = Map::new();
    for (key, text) in sets {
        if !properties.contains_key(key) {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            bail!("--set {key}: template {name} has no parameter {key:?} (it has: {})", known.join(", "));
        }
        values.insert(key.clone(), typed(key, text, properties.get(key))?);
    }
    let template_ref = format!("template:{namespace}/{name}");
    if dry_run {
        let result: Value = client.post_json("/api/scaffolder/v2/dry-run", &json!({"templateRef": template_ref, "values": values})).await?;
        for line in result["log"].as_array().into_iter().flatten() {
            print_log(&line["body"]);
        }
        let files = result["directoryContents"].as_array().cloned().unwrap_or_default();
        println!("\nWould create {} file(s):", files.len());
        for file in &files {
            let size = file["base64Content"]
                .as_str()
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
                .map_or(0, |bytes| bytes.len());
            println!("  {}  ({size} bytes)", file["path"].as_str().unwrap_or_default());
        }
        let skipped: Vec<&str> = result["skipped"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !skipped.is_empty() {
            println!("Not run in a dry run: {}", skipped.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let created: Value = client.post_json("/api/scaffolder/v2/tasks", &json!({"templateRef": template_ref, "values": values})).await?;
    let id = created["id"].as_str().context("the hub's answer has no task id")?.to_string();
    println!("Task {id} started ({template_ref})");
    let mut response = client.stream(&format!("/api/scaffolder/v2/tasks/{id}/eventstream")).await?;
    let mut buffer = String::new();
    let mut outcome = None;
    while let Some(chunk) = response.chunk().await.context("reading the task's log")? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (kind, data) = sse_event(&block);
            let Ok(event) = serde_json::from_str::<Value>(&data) else { continue };
            match kind.as_str() {
                "log" => print_log(&event["body"]),
                "completion" => outcome = Some(event["body"].clone()),
                _ => {}
            }
        }
    }
    let Some(outcome) = outcome else {
        bail!("the hub closed the task's log before it finished: see heimdall's portal or GET /api/scaffolder/v2/tasks/{id}")
    };
    if outcome["status"] != "completed" {
        eprintln!("error: {}", outcome["error"]["message"].as_str().unwrap_or("the task failed"));
        return Ok(ExitCode::FAILURE);
    }
    print_output(&outcome["output"]);
    Ok(ExitCode::SUCCESS)
}

/// `(event, data)` of one server-sent event.
fn sse_event(block: &str) -> (String, String) {
    let mut kind = String::from("message");
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = value.trim().to_string();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (kind, data.join("\n"))
}

fn print_log(body: &Value) {
    let message = body["message"].as_str().unwrap_or_default();
    match body["stepId"].as_str() {
        Some(step) => println!("  [{step}] {message}"),
        None => println!("  {message}"),
    }
}

fn print_output(output: &Value) {
    println!("Done.");
    for link in output["links"].as_array().into_iter().flatten() {
        let title = link["title"].as_str().unwrap_or("link");
        if let Some(url) = link["url"].as_str() {
            println!("  {title}: {url}");
        } else if let Some(entity) = link["entityRef"].as_str() {
            println!("  {title}: {entity}");
        }
    }
    for text in output["text"].as_array().into_iter().flatten() {
        println!("\n{}:\n{}", text["title"].as_str().unwrap_or("Note"), text["content"].as_str().unwrap_or_default().trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_the_type_the_form_wants() {
        let integer = json!({"type": "integer"});
        assert_eq!(typed("port", "8080", Some(&integer)).expect("integer"), json!(8080));
        assert!(typed("port", "eighty", Some(&integer)).is_err());
        assert_eq!(typed("name", "cart", None).expect("string"), json!("cart"));
        assert_eq!(typed("on", "true", Some(&json!({"type": "boolean"}))).expect("bool"), json!(true));
        assert_eq!(parse_set("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_set("novalue").is_err());
        assert_eq!(template_path("node-service").expect("name"), ("default".into(), "node-service".into()));
        assert_eq!(template_path("template:team/x").expect("ref"), ("team".into(), "x".into()));
    }

    #[test]
    fn server_sent_events_are_read_by_their_fields() {
        let (kind, data) = sse_event("event: log\nid: 3\ndata: {\"a\":1}\n\n");
        assert_eq!((kind.as_str(), data.as_str()), ("log", "{\"a\":1}"));
        assert_eq!(sse_event(": keep-alive\n\n").0, "message");
    }
}
