//! The scaffolder through Backstage's `/api/scaffolder/v2` on the router:
//! each example template run as a task (repository, catalog entry,
//! deployed Application), dry runs, values refused up front, a failing
//! step undone, and who sees which task.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use common::TestHub;
use serde_json::{Value, json};

async fn hub_with_templates() -> TestHub {
    let hub = TestHub::with_example_organization().await;
    heimdall_hub::catalog::sync_all(&hub.state).await.expect("catalog");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/templates/catalog-info.yaml");
    let templates = std::path::absolute(templates).expect("absolute");
    let body = json!({"type": "file", "target": templates.display().to_string()}).to_string();
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", body).await;
    assert_eq!(status, 201, "{created}");
    let (_, location) = hub.get(&format!("/api/catalog/locations/{}", created["location"]["id"].as_str().expect("id"))).await;
    assert_eq!(location["status"]["errors"], json!([]), "the example templates read cleanly: {location}");
    hub
}

async fn run_task(hub: &TestHub, token: Option<&str>, template: &str, values: Value) -> (String, Value) {
    let body = json!({"templateRef": format!("template:default/{template}"), "values": values}).to_string();
    let (status, created) =
        hub.call_with("POST", "/api/scaffolder/v2/tasks", "application/json", body, Some(token.unwrap_or(&hub.token))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    for _ in 0..200 {
        let (status, task) =
            hub.call_with("GET", &format!("/api/scaffolder/v2/tasks/{id}"), "", Body::empty(), Some(token.unwrap_or(&hub.token))).await;
        assert_eq!(status, 200, "{task}");
        if task["status"] == "completed" || task["status"] == "failed" {
            return (id, task);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not finish");
}

async fn log_of(hub: &TestHub, id: &str) -> Vec<Value> {
    let (status, events) = hub.get(&format!("/api/scaffolder/v2/tasks/{id}/events")).await;
    assert_eq!(status, 200, "{events}");
    events.as_array().expect("events").clone()
}

fn file(hub: &TestHub, tenant: &str, repo: &str, path: &str) -> Option<String> {
    hub.state.services.read_file(tenant, repo, path).expect("read").map(|b| String::from_utf8(b).expect("utf-8"))
}

#[tokio::test]
async fn each_example_template_makes_a_repository_a_catalog_entry_and_a_deployed_app() {
    let hub = hub_with_templates().await;
    let runs = [
        ("node-service", json!({"name": "basket", "owner": "shop", "port": 9090})),
        ("worker", json!({"name": "mailer", "owner": "shop", "queue": "mail"})),
        ("cron-job", json!({"name": "nightly-report", "owner": "payments", "schedule": "0 2 * * *", "command": "report --all"})),
    ];
    for (template, values) in runs {
        let (id, task) = run_task(&hub, None, template, values.clone()).await;
        let events = log_of(&hub, &id).await;
        assert_eq!(task["status"], "completed", "{template}: {events:#?}");
        let (owner, name) = (values["owner"].as_str().expect("owner"), values["name"].as_str().expect("name"));

        // The repository, served by the hub, with the rendered skeleton.
        let info = file(&hub, owner, name, "catalog-info.yaml").expect("catalog-info.yaml in the repository");
        assert!(info.contains(&format!("name: {name}")) && info.contains(&format!("Application/{owner}/{name}")), "{info}");
        let (status, raw) = hub.get(&format!("/git/services/{owner}/{name}.git/raw/.heimdall/application.yaml")).await;
        assert_eq!(status, 200);
        assert!(raw.as_str().expect("text").contains(&format!("registry.example.com/{owner}/{name}:0.1.0")), "{raw}");
        let (status, _) = hub.get(&format!("/git/services/{owner}/{name}.git/info/refs?service=git-upload-pack")).await;
        assert_eq!(status, 200, "the repository is served over git's smart HTTP");

        // The catalog entry, from the new repository, linked to the Application.
        let (status, entity) = hub.get(&format!("/api/catalog/entities/by-name/component/{owner}/{name}")).await;
        assert_eq!(status, 200, "{entity}");
        assert_eq!(entity["metadata"]["annotations"]["heimdall.dev/application"], format!("Application/{owner}/{name}"));
        assert_eq!(
            entity["metadata"]["annotations"]["backstage.io/managed-by-location"],
            format!("url:http://127.0.0.1:8080/git/services/{owner}/{name}.git/raw/catalog-info.yaml")
        );

        // The Application, stored and delivered to dev only.
        let app = hub.application(owner, name).await;
        assert_eq!(app["metadata"]["name"], name, "{app}");
        let output = &task["output"];
        assert_eq!(output["links"][0]["url"], format!("http://127.0.0.1:8080/git/services/{owner}/{name}.git"));
        assert_eq!(output["links"][1]["entityRef"], format!("component:{owner}/{name}"));
    }
    let dev_commits: Vec<String> = hub.commits("dev-eu-1").iter().map(|c| c.summary.clone()).collect();
    assert!(dev_commits.iter().any(|s| s.contains("basket")), "basket is delivered to dev: {dev_commits:?}");
    for cluster in ["staging-eu-1", "prod-eu-1"] {
        assert!(!hub.commits(cluster).iter().any(|c| c.summary.contains("basket")), "basket is in dev only");
    }
    let schedule = file(&hub, "payments", "nightly-report", ".heimdall/application.yaml").expect("application");
    assert!(schedule.contains(r#"cmd: ["sh", "-c", "report --all"]"#), "{schedule}");
    let ci = file(&hub, "shop", "basket", ".github/workflows/ci.yaml").expect("ci file");
    assert!(ci.contains("${{ github.sha }}"), "the CI file's own expressions are copied as they are: {ci}");
}

#[tokio::test]
async fn a_dry_run_shows_the_files_and_makes_nothing() {
    let hub = hub_with_templates().await;
    let body = json!({"templateRef": "template:default/node-service", "values": {"name": "preview", "owner": "shop"}}).to_string();
    let (status, dry) = hub.call("POST", "/api/scaffolder/v2/dry-run", "application/json", body).await;
    assert_eq!(status, 200, "{dry}");
    let paths: Vec<&str> = dry["directoryContents"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    for expected in ["catalog-info.yaml", ".heimdall/application.yaml", ".github/workflows/ci.yaml", "src/index.js", "Dockerfile"] {
        assert!(paths.contains(&expected), "{expected} in {paths:?}");
    }
    assert_eq!(dry["skipped"], json!(["publish", "register", "deploy"]), "outside actions do not run in a dry run");
    assert!(!hub.state.services.exists("shop", "preview"));
    assert_eq!(hub.get("/api/v1/namespaces/shop/applications/preview").await.0, 404);
    assert_eq!(hub.get("/api/catalog/entities/by-name/component/shop/preview").await.0, 404);

    // Backstage's editor sends the template and its folder.
    let template = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
        "spec": {"parameters": {"properties": {"who": {"type": "string"}}},
            "steps": [{"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton", "values": {"who": "${{ parameters.who }}"}}}]}});
    use base64::Engine;
    let content = base64::engine::general_purpose::STANDARD.encode("hello ${{ values.who }}\n");
    let body = json!({"template": template, "values": {"who": "ada"}, "directoryContents": [{"path": "skeleton/hello.txt", "base64Content": content}]});
    let (status, dry) = hub.call("POST", "/api/scaffolder/v2/dry-run", "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{dry}");
    let hello = dry["directoryContents"][0]["base64Content"].as_str().expect("file");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(hello).expect("base64"), b"hello ada\n");
}

#[tokio::test]
async fn bad_values_are_refused_before_anything_runs() {
    let hub = hub_with_templates().await;
    let body = json!({"templateRef": "template:default/node-service", "values": {"name": "Not A Name", "port": "eighty"}}).to_string();
    let (status, error) = hub.call("POST", "/api/scaffolder/v2/tasks", "application/json", body).await;
    assert_eq!(status, 422, "{error}");
    let paths: Vec<&str> = error["details"].as_array().expect("details").iter().filter_map(|d| d["path"].as_str()).collect();
    assert!(paths.contains(&"values.owner") && paths.contains(&"values.name") && paths.contains(&"values.port"), "{error}");
    let (status, tasks) = hub.get("/api/scaffolder/v2/tasks").await;
    assert_eq!((status.as_u16(), tasks["totalTasks"].clone()), (200, json!(0)), "no task was made");
    let (status, missing) =
        hub.call("POST", "/api/scaffolder/v2/tasks", "application/json", json!({"templateRef": "template:default/nope"}).to_string()).await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test]
async fn a_failing_step_stops_the_task_says_why_and_undoes_what_it_made() {
    let hub = hub_with_templates().await;
    // `cart` runs already: the repository and catalog entry are made, then deploying refuses to replace it.
    let before = hub.application("shop", "cart").await;
    let (id, task) = run_task(&hub, None, "node-service", json!({"name": "cart", "owner": "shop"})).await;
    assert_eq!(task["status"], "failed");
    let events = log_of(&hub, &id).await;
    let completion = events.last().expect("completion");
    assert_eq!(completion["type"], "completion");
    let message = completion["body"]["error"]["message"].as_str().expect("message");
    assert!(message.contains("step deploy (heimdall:apply) failed") && message.contains("Application shop/cart exists"), "{message}");
    let lines: Vec<&str> = events.iter().filter_map(|e| e["body"]["message"].as_str()).collect();
    assert!(lines.iter().any(|l| l.contains("undone: repository shop/cart removed")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("undone: catalog location shop-cart removed")), "{lines:#?}");
    assert!(!hub.state.services.exists("shop", "cart"));
    assert_eq!(hub.get("/api/v1/cataloglocations/shop-cart").await.0, 404);
    assert_eq!(hub.application("shop", "cart").await["spec"], before["spec"], "the running app is untouched");
    let (_, entity) = hub.get("/api/catalog/entities/by-name/component/shop/cart").await;
    assert!(entity["metadata"]["annotations"].get("backstage.io/managed-by-location").is_none(), "the generated entity is back: {entity}");
}

#[tokio::test]
async fn tasks_run_with_the_rights_of_who_started_them_and_only_they_see_them() {
    let hub = hub_with_templates().await;
    let token = |role: &str| {
        let (store, role) = (hub.store.clone(), role.to_string());
        async move {
            let token = heimdall_store::generate_token();
            store.put_token(&format!("token:{}", role.replace(':', "-")), &token, &role, None).await.expect("token");
            token
        }
    };
    let payments = token("tenant:payments:developer").await;
    let shop = token("tenant:shop:developer").await;
    let (id, task) = run_task(&hub, Some(&payments), "worker", json!({"name": "sneaky", "owner": "shop", "queue": "q"})).await;
    assert_eq!(task["status"], "failed");
    let (_, events) = hub.call_with("GET", &format!("/api/scaffolder/v2/tasks/{id}/events"), "", Body::empty(), Some(&payments)).await;
    let last = events.as_array().and_then(|e| e.last()).expect("completion").clone();
    assert!(last["body"]["message"].as_str().expect("message").contains("repositories:create in tenant shop"), "{last}");
    assert!(!hub.state.services.exists("shop", "sneaky"));

    let (status, _) = hub.call_with("GET", &format!("/api/scaffolder/v2/tasks/{id}"), "", Body::empty(), Some(&shop)).await;
    assert_eq!(status, 404, "another person's task is not shown");
    let (_, mine) = hub.call_with("GET", "/api/scaffolder/v2/tasks", "", Body::empty(), Some(&shop)).await;
    assert_eq!(mine["totalTasks"], 0);
    let (_, all) = hub.get("/api/scaffolder/v2/tasks").await;
    assert_eq!(all["totalTasks"], 1, "the platform team sees every task");

    let (_, task) = run_task(&hub, Some(&shop), "worker", json!({"name": "shipper", "owner": "shop", "queue": "q"})).await;
    assert_eq!(task["status"], "completed", "a developer of the tenant creates, registers and deploys");
    let (status, _) = hub.call_with("GET", "/git/services/shop/shipper.git/raw/worker.py", "", Body::empty(), Some(&payments)).await;
    assert_eq!(status, 403, "another tenant cannot read the repository");
}

#[tokio::test]
async fn the_event_stream_sends_the_log_then_the_completion() {
    let hub = hub_with_templates().await;
    let (id, _) = run_task(&hub, None, "cron-job", json!({"name": "sweeper", "owner": "shop"})).await;
    let (status, body) = hub.get(&format!("/api/scaffolder/v2/tasks/{id}/eventstream")).await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("text/event-stream");
    let kinds: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert!(kinds.len() > 4 && kinds[..kinds.len() - 1].iter().all(|k| *k == "log"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"completion"));
    let (_, after) = hub.get(&format!("/api/scaffolder/v2/tasks/{id}/eventstream?after={}", kinds.len() - 2)).await;
    assert_eq!(after.as_str().expect("text").lines().filter(|l| l.starts_with("event: ")).count(), 1, "after skips what was seen");
    let (_, schema) = hub.get("/api/scaffolder/v2/templates/default/template/node-service/parameter-schema").await;
    assert_eq!(schema["steps"].as_array().map(Vec::len), Some(2), "{schema}");
    let (_, actions) = hub.get("/api/scaffolder/v2/actions").await;
    let ids: Vec<&str> = actions.as_array().expect("actions").iter().filter_map(|a| a["id"].as_str()).collect();
    assert!(ids.contains(&"publish:heimdall") && ids.contains(&"fetch:template"), "{ids:?}");
}
