//! Score workloads (score.dev/v1b1). A Score file has no `kind` and keeps its
//! fields at the top level; Heimdall stores it as kind `Workload` with those
//! fields under `spec`, so every stored document has the same envelope.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::problem::Problem;

pub const API_VERSION: &str = "score.dev/v1b1";
/// Top-level fields of a Score file that belong in `spec`.
pub const SPEC_FIELDS: &[&str] = &["containers", "service", "resources"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    pub containers: BTreeMap<String, Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ResourceRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// A map (current form) or a list (deprecated form); the renderer normalises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub ports: BTreeMap<String, ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequest {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

pub(crate) fn validate(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<WorkloadSpec>(spec, "spec") {
        Ok(spec) if spec.containers.is_empty() => {
            vec![Problem::new("spec.containers", "expected at least one container")]
        }
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}

/// Replaces each file's relative `source:` with its `content`, reading
/// through `read` (the model does no IO). Call it where the Score
/// file's folder is known: `heimdall apply` and `heimdall render` do.
pub fn inline_file_sources(document: &mut Value, mut read: impl FnMut(&str) -> Result<String, String>) -> Result<(), Problem> {
    let Some(containers) = document.get_mut("containers").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (container_name, container) in containers.iter_mut() {
        let Some(files) = container.get_mut("files") else { continue };
        let entries: Vec<&mut Value> = match files {
            Value::Object(map) => map.values_mut().collect(),
            Value::Array(items) => items.iter_mut().collect(),
            _ => continue,
        };
        for file in entries {
            let Some(source) = file.get("source").and_then(Value::as_str).map(String::from) else {
                continue;
            };
            let content = read(&source)
                .map_err(|e| Problem::new(format!("containers.{container_name}.files"), format!("cannot read source {source:?}: {e}")))?;
            if let Some(file) = file.as_object_mut() {
                file.remove("source");
                file.insert("content".into(), json!(content));
            }
        }
    }
    Ok(())
}
