//! The shared conformance corpus: every KubeVela Application must render with
//! the built-in definitions, and where KubeVela's own end-to-end expectations
//! are given, Heimdall's output must meet them.

use std::path::{Path, PathBuf};

use heimdall_model::{Resource, decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, Rendered, render};
use serde_json::Value;

fn corpus() -> PathBuf {
    heimdall_testsupport::conformance_dir()
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
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("apps")).expect("apps").map(|e| e.expect("entry").path()).collect();
    files.extend(std::fs::read_dir(root.join("expected")).expect("expected").map(|e| e.expect("entry").path().join("app.yaml")));
    files.sort();
    let mut failures = Vec::new();
    let mut rendered = 0;
    for file in &files {
        let (apps, _) = load(file);
        for app in apps {
            match render(&app, &file.display().to_string(), &Platform::builtin(), &RenderOptions::default()) {
                Ok(output) => {
                    rendered += 1;
                    failures.extend(leaving_problems(&output).into_iter().map(|p| format!("{}: {p}", file.display())));
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} applications failed:\n{}", failures.len(), rendered + failures.len(), failures.join("\n"));
    assert!(rendered >= 58, "only {rendered} applications rendered");
}

/// What every object of an application that leaves the renderer is: checked
/// against Kubernetes' own types, labelled for the agent to prune what it
/// owns, with canonical quantities. Problems, one per object and rule.
fn leaving_problems(rendered: &Rendered) -> Vec<String> {
    use heimdall_api::labels::{APP, OAM_NAME};
    let mut problems = Vec::new();
    for object in rendered.targets.iter().flat_map(|t| t.objects.iter()) {
        let name = format!("{} {}", object["kind"].as_str().unwrap_or("?"), object["metadata"]["name"].as_str().unwrap_or("?"));
        if let Err(e) = heimdall_render::validate::check(object) {
            problems.push(format!("{name} does not pass the Kubernetes types: {e:?}"));
        }
        for label in [OAM_NAME, APP] {
            if object["metadata"]["labels"][label].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name} lacks the label {label}"));
            }
        }
        let mut canonical = object.clone();
        heimdall_render::validate::normalize_quantities(&mut canonical);
        if canonical != *object {
            problems.push(format!("{name} has quantities that are not canonical"));
        }
    }
    problems
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
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root).expect("expected").map(|e| e.expect("entry").path()).collect();
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
        let objects: Vec<&Value> = rendered.targets.iter().flat_map(|t| t.objects.iter()).chain(existing.iter()).collect();
        for expectation in expected.get("expectations").and_then(Value::as_array).into_iter().flatten() {
            let field = |k: &str| expectation.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let namespace = expectation.get("namespace").and_then(Value::as_str).map(String::from).unwrap_or_else(|| app_namespace.clone());
            let found = objects.iter().find(|o| {
                o["apiVersion"] == field("apiVersion")
                    && o["kind"] == field("kind")
                    && o["metadata"]["name"] == field("name")
                    && o["metadata"].get("namespace").and_then(Value::as_str).unwrap_or(&namespace) == namespace
            });
            let Some(object) = found else {
                failures.push(format!("{name}: no {} {} {namespace}/{}", field("apiVersion"), field("kind"), field("name")));
                continue;
            };
            for (path, want) in expectation.get("fields").and_then(Value::as_object).into_iter().flatten() {
                let got = lookup(object, path).cloned().or_else(|| api_default(&field("kind"), path));
                if got.as_ref() != Some(want) {
                    failures.push(format!("{name}: {} {}: {path} is {got:?}, expected {want}", field("kind"), field("name")));
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
    assert!(failures.is_empty(), "{} expectations failed:\n{}", failures.len(), failures.join("\n"));
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
            t.objects.iter().filter(|o| o["kind"] == "Deployment").map(move |o| (t.namespace.clone(), o["spec"]["replicas"].clone()))
        })
        .collect();
    assert_eq!(replicas, vec![("default".to_string(), Value::from(1)), ("prod".to_string(), Value::from(3))]);
}

fn score_files() -> Vec<PathBuf> {
    let root = corpus().join("score");
    let mut files = Vec::new();
    let mut pending = vec![root.join("examples"), root.join("spec-samples")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn score_workloads_render_or_name_the_capability_they_need() {
    let builtin = heimdall_render::score::BUILTIN_RESOURCE_TYPES;
    let (mut rendered, mut needs_capability) = (0, 0);
    let mut failures = Vec::new();
    for file in score_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        let mut document = parse_documents(&text, &file.display().to_string()).expect("parse").remove(0);
        let folder = file.parent().expect("folder").to_path_buf();
        // score-full.yaml names a source the corpus does not ship; its render
        // then fails on its resource types, which is what is checked below.
        let _ = heimdall_render::score::inline_file_sources(&mut document.value, |source| {
            std::fs::read_to_string(folder.join(source)).map_err(|e| e.to_string())
        });
        let app = decode(&document.value, &document.source, "default").unwrap_or_else(|e| panic!("{e}")).resource;
        let types: Vec<String> = app
            .spec
            .get("resources")
            .and_then(Value::as_object)
            .map(|r| r.values().filter_map(|v| v["type"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        let options = RenderOptions { score_image: Some("registry.example.com/image:1".into()), ..Default::default() };
        let result = render(&app, &file.display().to_string(), &Platform::builtin(), &options);
        if types.iter().all(|t| builtin.contains(&t.as_str())) {
            match result {
                Ok(output) => {
                    rendered += 1;
                    let text = serde_json::to_string(&output.targets).expect("json");
                    if text.contains("${") {
                        failures.push(format!("{}: a placeholder was left unresolved", file.display()));
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        } else {
            match result {
                Ok(_) => failures.push(format!("{}: uses {types:?} but rendered without a Capability", file.display())),
                Err(e) if e.to_string().contains("Capability") => needs_capability += 1,
                Err(e) => failures.push(format!("unexpected error: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rendered + needs_capability, 36);
    assert!(rendered >= 29, "only {rendered} Score workloads rendered");
}

#[test]
fn score_placeholders_resolve_to_resource_outputs() {
    let file = corpus().join("score/examples/samples/traderx/trade-service/score.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    let document = parse_documents(&text, "trade-service").expect("parse").remove(0);
    let app = decode(&document.value, &document.source, "shop").expect("valid").resource;
    let rendered = render_ok(&app, &file);
    let deployment = rendered.targets[0].objects.iter().find(|o| o["kind"] == "Deployment").expect("deployment");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |name: &str| env.as_array().and_then(|e| e.iter().find(|v| v["name"] == name)).map(|v| v["value"].clone());
    assert_eq!(value("DATABASE_TCP_HOST"), Some(Value::from("database")));
    assert_eq!(value("PEOPLE_SERVICE_HOST"), Some(Value::from("people-service")));
    let service = rendered.targets[0].objects.iter().find(|o| o["kind"] == "Service").expect("service");
    assert_eq!(service["spec"]["ports"][0]["port"], 18092);
}
