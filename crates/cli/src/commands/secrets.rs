//! `heimdall secret set|list|delete|rotate-master-key`. Values go to the
//! hub and never come back: there is no command that shows one.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use base64::Engine;
use heimdall_api::secrets::{Rotation, SecretKeyChange};
use heimdall_model::Resource;
use serde_json::Value;
use zeroize::Zeroizing;

use super::resources::url_encode;
use crate::client::Client;
use crate::output::{OutputFormat, serialize, table};

/// The value from exactly one source.
pub fn read_value(literal: Option<String>, file: Option<&Path>, stdin: bool) -> Result<Zeroizing<Vec<u8>>> {
    match (literal, file, stdin) {
        (Some(literal), None, false) => Ok(Zeroizing::new(literal.into_bytes())),
        (None, Some(path), false) => Ok(Zeroizing::new(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)),
        (None, None, true) => {
            let mut value = Zeroizing::new(Vec::new());
            std::io::stdin().read_to_end(&mut value).context("reading the value from standard input")?;
            // `echo value | heimdall secret set ...` should not store the newline.
            if value.last() == Some(&b'\n') {
                value.pop();
                if value.last() == Some(&b'\r') {
                    value.pop();
                }
            }
            Ok(value)
        }
        _ => bail!("give the value with exactly one of --from-literal, --from-file or --from-stdin"),
    }
}

fn split(secret: &str) -> Result<(&str, &str)> {
    match secret.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => Ok((namespace, name)),
        _ => bail!("expected NAMESPACE/NAME (e.g. shop/web), got {secret:?}"),
    }
}

fn keys_path(namespace: &str, name: &str, key: &str) -> String {
    format!("/api/v1/namespaces/{}/secrets/{}/keys/{}", url_encode(namespace), url_encode(name), url_encode(key))
}

pub async fn set(client: &Client, secret: &str, key: &str, value: Zeroizing<Vec<u8>>) -> Result<ExitCode> {
    let (namespace, name) = split(secret)?;
    let body = serde_json::json!({"value": base64::engine::general_purpose::STANDARD.encode(value.as_slice())});
    drop(value);
    let changed: SecretKeyChange = client.put_json(&keys_path(namespace, name, key), &body).await?;
    println!("secret {}/{} key {} set (version {})", changed.namespace, changed.name, changed.key, changed.version.unwrap_or_default());
    for app in changed.redelivered {
        println!("  re-delivered {app}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(client: &Client, target: &str, output: OutputFormat) -> Result<ExitCode> {
    let secrets: Vec<Resource> = match target.split_once('/') {
        Some((namespace, name)) => {
            vec![client.get(&format!("/api/v1/namespaces/{}/secrets/{}", url_encode(namespace), url_encode(name))).await?]
        }
        None => {
            let list: Value = client.get(&format!("/api/v1/namespaces/{}/secrets", url_encode(target))).await?;
            serde_json::from_value(list.get("items").cloned().unwrap_or_default()).context("the hub's list of secrets")?
        }
    };
    if output != OutputFormat::Table {
        print!("{}", serialize(&secrets, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for secret in &secrets {
        for (key, info) in secret.spec.get("keys").and_then(Value::as_object).into_iter().flatten() {
            let field = |f: &str| info.get(f).map(|v| v.as_str().map_or_else(|| v.to_string(), String::from)).unwrap_or_default();
            rows.push(vec![
                format!("{}/{}", secret.metadata.namespace.as_deref().unwrap_or_default(), secret.metadata.name),
                key.clone(),
                field("version"),
                field("updatedBy"),
                field("updatedAt"),
            ]);
        }
    }
    print!("{}", table(&["SECRET", "KEY", "VERSION", "UPDATED BY", "UPDATED AT"], &rows));
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(client: &Client, secret: &str, key: Option<&str>) -> Result<ExitCode> {
    let (namespace, name) = split(secret)?;
    match key {
        Some(key) => {
            let changed: SecretKeyChange = client.delete(&keys_path(namespace, name, key)).await?;
            println!("secret {}/{} key {} deleted", changed.namespace, changed.name, changed.key);
        }
        None => {
            let _: Value = client.delete(&format!("/api/v1/namespaces/{}/secrets/{}", url_encode(namespace), url_encode(name))).await?;
            println!("secret {namespace}/{name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rotate_master_key(client: &Client) -> Result<ExitCode> {
    let rotation: Rotation = client.post_json("/api/v1/secrets/rotate-master-key", &serde_json::json!({})).await?;
    println!("master key {} is active; {} data keys re-wrapped", rotation.key_id, rotation.rewrapped);
    if !rotation.retired.is_empty() {
        println!("retired: {}", rotation.retired.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
