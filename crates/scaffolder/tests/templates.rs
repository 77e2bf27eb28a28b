//! Backstage's own templates from the conformance corpus, run: parameters
//! checked, files fetched and templated, outside actions called in order
//! with their evaluated inputs, outputs wired from step to step, dry runs
//! and failing steps.

use std::path::Path;
use std::sync::Mutex;

use heimdall_model::parse_documents;
use heimdall_scaffolder::{Actions, ScaffolderError, Sources, Template, Workspace, run};
use serde_json::{Map, Value, json};

fn templates() -> std::path::PathBuf {
    heimdall_testsupport::conformance_dir().join("backstage/templates")
}

fn template(name: &str) -> Template {
    let text = std::fs::read_to_string(templates().join(name).join("template.yaml")).expect("read");
    let document = parse_documents(&text, name).expect("parse").remove(0).value;
    Template::from_entity(&document).expect("a template")
}

/// Every file under `dir`, by its path inside it.
fn folder(dir: &Path) -> Workspace {
    let mut files = Workspace::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.strip_prefix(dir).expect("inside").display().to_string(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

/// Records the outside actions a run calls; `fail` makes one fail.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
    fail: Option<&'static str>,
}

impl Actions for Recorder {
    fn provides(&self, action: &str) -> bool {
        ["publish:github", "catalog:register", "notification:send"].contains(&action)
    }

    fn run(&self, action: &str, input: &Value, workspace: &Workspace) -> impl std::future::Future<Output = Result<Value, String>> + Send {
        let result = if self.fail == Some(action) {
            Err("the remote said no".to_string())
        } else {
            self.calls.lock().expect("lock").push((action.to_string(), input.clone()));
            Ok(match action {
                "publish:github" => {
                    json!({"remoteUrl": "https://github.com/shop/cart", "repoContentsUrl": "https://github.com/shop/cart/blob/main", "files": workspace.len()})
                }
                "catalog:register" => json!({"entityRef": "component:default/cart"}),
                _ => json!({}),
            })
        };
        async move { result }
    }
}

fn parameters(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("object")
}

#[test]
fn every_corpus_template_parses() {
    for name in ["demo-template", "docs-template", "example-nodejs-template", "pull-request"] {
        let template = template(name);
        assert!(!template.steps.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn the_nodejs_template_runs_end_to_end() {
    let template = template("example-nodejs-template");
    let sources: Sources = [("./content".to_string(), folder(&templates().join("example-nodejs-template/content")))].into();
    let given =
        template.parameters(&parameters(json!({"name": "cart", "repoUrl": "github.com?owner=shop&repo=cart"}))).expect("valid parameters");
    let actions = Recorder::default();
    let mut lines = Vec::new();
    let outcome = run(&template, &given, json!({"ref": "user:default/alice"}), &sources, &actions, false, |line| lines.push(line))
        .await
        .expect("runs");

    let catalog_info = String::from_utf8(outcome.workspace["catalog-info.yaml"].clone()).expect("utf-8");
    let entity = parse_documents(&catalog_info, "catalog-info.yaml").expect("yaml").remove(0).value;
    let entity = heimdall_catalog::validate(&entity).expect("a valid entity");
    assert_eq!((entity.kind.as_str(), entity.metadata.name.as_str()), ("Component", "cart"));
    let package: Value = serde_json::from_slice(&outcome.workspace["package.json"]).expect("json");
    assert_eq!(package["name"], "cart");
    assert!(outcome.workspace.contains_key("index.js"));

    let calls = actions.calls.lock().expect("lock").clone();
    let names: Vec<&str> = calls.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["publish:github", "catalog:register", "notification:send"]);
    assert_eq!(calls[0].1["description"], "This is cart");
    assert_eq!(calls[0].1["repoUrl"], "github.com?owner=shop&repo=cart");
    assert_eq!(calls[1].1["repoContentsUrl"], "https://github.com/shop/cart/blob/main", "a step reads an earlier step's output");
    assert_eq!(outcome.output["links"][0]["url"], "https://github.com/shop/cart");
    assert_eq!(outcome.output["links"][1]["entityRef"], "component:default/cart");
    assert!(lines.iter().any(|l| l.step.as_deref() == Some("fetch-base") && l.message.contains("templated")), "{lines:?}");
}

#[tokio::test]
async fn a_dry_run_templates_the_files_and_reaches_nothing_outside() {
    let template = template("example-nodejs-template");
    let sources: Sources = [("./content".to_string(), folder(&templates().join("example-nodejs-template/content")))].into();
    let given = parameters(json!({"name": "cart", "repoUrl": "github.com?owner=shop&repo=cart"}));
    let actions = Recorder::default();
    let outcome = run(&template, &given, json!({}), &sources, &actions, true, |_| {}).await.expect("runs");
    assert!(actions.calls.lock().expect("lock").is_empty());
    assert_eq!(outcome.skipped, ["publish", "register", "notify"]);
    assert!(outcome.workspace.contains_key("catalog-info.yaml"));
}

#[tokio::test]
async fn a_failing_step_stops_the_run_and_says_which() {
    let template = template("example-nodejs-template");
    let sources: Sources = [("./content".to_string(), folder(&templates().join("example-nodejs-template/content")))].into();
    let given = parameters(json!({"name": "cart", "repoUrl": "github.com?owner=shop&repo=cart"}));
    let actions = Recorder { fail: Some("publish:github"), ..Default::default() };
    let error = run(&template, &given, json!({}), &sources, &actions, false, |_| {}).await.expect_err("fails");
    assert_eq!(
        error,
        ScaffolderError::Step { step: "publish".into(), action: "publish:github".into(), message: "the remote said no".into() }
    );
    assert!(actions.calls.lock().expect("lock").is_empty(), "nothing after the failing step ran");
}

#[tokio::test]
async fn missing_parameters_and_unknown_actions_are_refused_before_anything_runs() {
    let template = template("example-nodejs-template");
    let problems = template.parameters(&parameters(json!({"name": 3}))).expect_err("refused");
    assert!(problems.contains(&("repoUrl".into(), "required".into())), "{problems:?}");
    assert!(problems.contains(&("name".into(), "expected string".into())), "{problems:?}");

    struct Nothing;
    impl Actions for Nothing {
        fn provides(&self, _: &str) -> bool {
            false
        }
        async fn run(&self, _: &str, _: &Value, _: &Workspace) -> Result<Value, String> {
            Err("never".to_string())
        }
    }
    let error = run(&template, &Map::new(), json!({}), &Sources::new(), &Nothing, false, |_| {}).await.expect_err("refused");
    assert!(matches!(&error, ScaffolderError::Step { step, .. } if step == "publish"), "{error}");
}

fn inline(steps: Value) -> Template {
    Template::from_entity(&json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
        "spec": {"steps": steps}}))
    .expect("a template")
}

async fn dry_run(template: &Template, sources: &Sources) -> (Result<heimdall_scaffolder::Outcome, ScaffolderError>, Vec<String>) {
    let mut log = Vec::new();
    let result = run(template, &Map::new(), json!({}), sources, &Recorder::default(), true, |line| log.push(line.message)).await;
    (result, log)
}

#[tokio::test]
async fn a_run_stays_within_its_budgets() {
    // The reported attack: a few steps each logging a hundred megabytes.
    let huge: Vec<Value> =
        (0..4).map(|i| json!({"id": format!("s{i}"), "action": "debug:log", "input": {"message": "${{ \"x\" * 100000000 }}"}})).collect();
    let (result, log) = dry_run(&inline(json!(huge)), &Sources::new()).await;
    let error = result.expect_err("too large").to_string();
    assert!(error.contains("step s0 (debug:log) failed: its input is 100000015 bytes; at most 262144 bytes are allowed"), "{error}");
    assert!(log.iter().map(String::len).sum::<usize>() < 1024, "nothing large was logged");

    let many: Vec<Value> = (0..101).map(|i| json!({"id": format!("s{i}"), "action": "debug:log"})).collect();
    let refused = Template::from_entity(&json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
        "metadata": {"name": "t"}, "spec": {"steps": many}}))
    .expect_err("too many steps");
    assert_eq!(refused.to_string(), "spec.steps: 101 steps; a template may have at most 100");

    let chatty: Vec<Value> =
        (0..100).map(|i| json!({"id": format!("s{i}"), "action": "debug:log", "input": {"message": "${{ \"y\" * 4000 }}"}})).collect();
    let (result, log) = dry_run(&inline(json!(chatty)), &Sources::new()).await;
    assert!(result.is_ok());
    assert!(log.iter().map(String::len).sum::<usize>() <= heimdall_scaffolder::budget::MAX_LOG_BYTES + 200, "the log is bounded");
    assert!(log.last().is_some_and(|l| l.starts_with("log truncated")), "{:?}", log.last());

    let big_file =
        Sources::from([("./skeleton".to_string(), Workspace::from([("big.txt".to_string(), b"${{ \"z\" * 2000000 }}".to_vec())]))]);
    let fetch = inline(json!([{"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton"}}]));
    let error = dry_run(&fetch, &big_file).await.0.expect_err("too large").to_string();
    assert!(error.contains("the rendered text is") && error.contains("at most 1048576 bytes"), "{error}");

    let values: Map<String, Value> = [("blob".to_string(), json!("v".repeat(300 * 1024)))].into_iter().collect();
    let problems = inline(json!([])).parameters(&values).expect_err("too large");
    assert!(problems[0].1.contains("the values is"), "{problems:?}");
}
