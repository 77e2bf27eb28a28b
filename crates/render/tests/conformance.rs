//! The shared conformance corpus: every KubeVela Application must render with
//! the built-in definitions, and where KubeVela's own end-to-end expectations
//! are given, Heimdall's output must meet them.

use std::path::{Path, PathBuf};

use heimdall_model::{Resource, decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, Rendered, render};
use serde_json::Value;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("HEIMDALL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    assert!(
        dir.is_dir(),
        "conformance corpus not found at {}: set HEIMDALL_CONFORMANCE_DIR",
        dir.display()
    );
    dir
}

/// The file's Applications (decoded) and its other documents (objects that
/// already exist in the cluster).
fn load(file: &Path) -> (Vec<Resource>, Vec<Value>) {
    let text = std::fs::read_to_string(file).expect("read");
    let mut apps = Vec::new();
    let mut existing = Vec::new();
    for document in parse_documents(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}")) {
        if document.value.get("kind").and_then(Value::as_str) == Some("Application") {
            let decoded = decode(&document.value, &document.source, "default").unwrap_or_else(|e| panic!("{e}"));
            apps.push(decoded.resource);
        } else {
            existing.push(document.value);
        }
    }
    (apps, existing)
}

fn render_ok(app: &Resource, file: &Path) -> Rendered {
    render(app, &file.display().to_string(), &Platform::builtin(), &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_built_in_kubevela_application_renders() {
    let root = corpus().join("kubevela");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("apps"))
        .expect("apps")
        .map(|e| e.expect("entry").path())
        .collect();
    files.extend(
        std::fs::read_dir(root.join("expected"))
            .expect("expected")
            .map(|e| e.expect("entry").path().join("app.yaml")),
    );
    files.sort();
    let mut failures = Vec::new();
    let mut rendered = 0;
    for file in &files {
        let (apps, _) = load(file);
        for app in apps {
            match render(&app, &file.display().to_string(), &Platform::builtin(), &RenderOptions::default()) {
                Ok(_) => rendered += 1,
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} applications failed:\n{}",
        failures.len(),
        rendered + failures.len(),
        failures.join("\n")
    );
    assert!(rendered >= 58, "only {rendered} applications rendered");
}

/// Reads a path of the corpus's expectation syntax: `a.b[0]["c.d"]`.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]")?;
            current = current.get(&after[..end])?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            current = current.get(after[..end].parse::<usize>().ok()?)?;
            rest = &after[end + 1..];
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            current = current.get(&rest_trimmed[..end])?;
            rest = &rest_trimmed[end..];
        }
    }
    Some(current)
}

/// What the API server fills in when a field is left out.
fn api_default(kind: &str, path: &str) -> Option<Value> {
    match (kind, path) {
        ("Deployment" | "StatefulSet", "spec.replicas") => Some(Value::from(1)),
        _ => None,
    }
}

#[test]
fn kubevela_expectations_hold() {
    let root = corpus().join("kubevela/expected");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("expected")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let (apps, existing) = load(&case.join("app.yaml"));
        let app = apps.last().expect("an Application");
        let rendered = render_ok(app, &case.join("app.yaml"));
        let expected: Value = serde_json::to_value(
            serde_json::from_str::<Value>(
                &serde_json::to_string(
                    &parse_documents(&std::fs::read_to_string(case.join("expected.yaml")).expect("read"), "expected.yaml").expect("parse")
                        [0]
                    .value,
                )
                .expect("json"),
            )
            .expect("json"),
        )
        .expect("json");
        let app_namespace = app.metadata.namespace.clone().unwrap_or_default();
        let objects: Vec<&Value> = rendered
            .targets
            .iter()
            .flat_map(|t| t.objects.iter())
            .chain(existing.iter())
            .collect();
        for expectation in expected.get("expectations").and_then(Value::as_array).into_iter().flatten() {
            let field = |k: &str| expectation.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let namespace = expectation
                .get("namespace")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| app_namespace.clone());
            let found = objects.iter().find(|o| {
                o["apiVersion"] == field("apiVersion")
                    && o["kind"] == field("kind")
                    && o["metadata"]["name"] == field("name")
                    && o["metadata"].get("namespace").and_then(Value::as_str).unwrap_or(&namespace) == namespace
            });
            let Some(object) = found else {
                failures.push(format!(
                    "{name}: no {} {} {namespace}/{}",
                    field("apiVersion"),
                    field("kind"),
                    field("name")
                ));
                continue;
            };
            for (path, want) in expectation.get("fields").and_then(Value::as_object).into_iter().flatten() {
                let got = lookup(object, path).cloned().or_else(|| api_default(&field("kind"), path));
                if got.as_ref() != Some(want) {
                    failures.push(format!(
                        "{name}: {} {}: {path} is {got:?}, expected {want}",
                        field("kind"),
                        field("name")
                    ));
                }
            }
        }
        for step in expected.get("workflowSteps").and_then(Value::as_array).into_iter().flatten() {
            let step_name = step["name"].as_str().unwrap_or_default();
            match rendered.workflow.iter().find(|s| s.name == step_name) {
                None => failures.push(format!("{name}: no workflow step {step_name}")),
                Some(status) => {
                    let phase = serde_json::to_value(&status.phase).expect("json");
                    if phase != step["phase"] {
                        failures.push(format!("{name}: step {step_name} is {phase}, expected {}", step["phase"]));
                    }
                    if let Some(contains) = step.get("messageContains").and_then(Value::as_str)
                        && !status.message.as_deref().unwrap_or_default().contains(contains)
                    {
                        failures.push(format!("{name}: step {step_name} message {:?} lacks {contains:?}", status.message));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} expectations failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_multi_environment_dry_run_renders_both_topologies() {
    let file = corpus().join("kubevela/apps/multi-env-topology-override-deploy.yaml");
    let (apps, _) = load(&file);
    let rendered = render_ok(&apps[0], &file);
    let replicas: Vec<(String, Value)> = rendered
        .targets
        .iter()
        .flat_map(|t| {
            t.objects
                .iter()
                .filter(|o| o["kind"] == "Deployment")
                .map(move |o| (t.namespace.clone(), o["spec"]["replicas"].clone()))
        })
        .collect();
    assert_eq!(
        replicas,
        vec![("default".to_string(), Value::from(1)), ("prod".to_string(), Value::from(3))]
    );
}
