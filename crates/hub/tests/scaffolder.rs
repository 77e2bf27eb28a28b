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

/// The injection of the security test: a value that, written unescaped into
/// catalog-info.yaml, would add a `javascript:` link and a Location document.
const INJECTION: &str = "x\" at 1 (UTC).\n  links:\n    - {title: Runbook, url: \"javascript:fetch('/api/v1/tokens',{method:'POST'})\"}\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: steal}\nspec: {target: \"http://169.254.169.254/latest/meta-data/\"}\n#";

#[tokio::test]
async fn template_values_are_data_in_the_files_they_fill() {
    let hub = hub_with_templates().await;
    let developer = hub.token_for("tenant:shop:developer").await;
    let values = json!({"name": "nightly", "owner": "shop", "schedule": "0 3 * * *", "command": INJECTION});
    let (id, task) = run_task(&hub, Some(&developer), "cron-job", values).await;
    assert_eq!(task["status"], "completed", "{:#?}", log_of(&hub, &id).await);
    let info = file(&hub, "shop", "nightly", "catalog-info.yaml").expect("catalog-info.yaml");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&info).expect("YAML");
    assert_eq!(documents.len(), 1, "no document was added: {info}");
    assert!(documents[0]["metadata"].get("links").is_none(), "no link was added: {info}");
    assert!(
        documents[0]["metadata"]["description"].as_str().expect("description").contains(INJECTION),
        "the value is the description's text"
    );
    let (status, entity) = hub.get("/api/catalog/entities/by-name/component/shop/nightly").await;
    assert_eq!(status, 200, "{entity}");
    assert!(entity["metadata"].get("links").is_none_or(|l| l == &json!([])), "{entity}");
    let (_, locations) = hub.get("/api/catalog/entities/by-query?filter=kind=location").await;
    assert!(!locations.to_string().contains("169.254.169.254"), "{locations}");
}

#[tokio::test]
async fn links_that_run_code_are_refused_and_never_rendered_as_links() {
    let hub = hub_with_templates().await;
    let entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "evil",
        "links": [{"url": " JaVa\tScRiPt:alert(document.cookie)", "title": "Runbook"}]},
        "spec": {"type": "service", "lifecycle": "production", "owner": "shop"}});
    let body = json!({"entity": entity, "location": "url:https://example.com/catalog-info.yaml"}).to_string();
    let (status, answer) = hub.call("POST", "/api/catalog/validate-entity", "application/json", body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("metadata.links[0].url") && answer.to_string().contains("not an http(s) or relative URL"),
        "{answer}"
    );
}

/// A local server that counts its requests and answers a secret.
async fn secret_server() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "aws_secret_access_key: METADATA-SECRET\n  broken: [" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (address, hits, server)
}

#[tokio::test]
async fn a_tenants_catalog_file_names_only_its_own_repositories_and_the_hub_fetches_no_private_address() {
    let hub = hub_with_templates().await;
    let (address, hits, server) = secret_server().await;
    let catalog = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{name: more}}\nspec:\n  targets: [\"http://{address}/latest/meta-data/\", ./other.yaml]\n---\napiVersion: scaffolder.backstage.io/v1beta3\nkind: template\nmetadata: {{name: trojan}}\nspec: {{type: service, owner: shop, steps: []}}\n"
    );
    let files = std::collections::BTreeMap::from([
        ("catalog-info.yaml".to_string(), catalog.into_bytes()),
        ("other.yaml".to_string(), b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: other}\nspec: {type: service, lifecycle: production, owner: shop}\n".to_vec()),
    ]);
    let change = heimdall_gitops::Change { author: heimdall_hub::delivery::author("alice"), message: "init".into(), trailers: vec![] };
    hub.state.services.create("shop", "sneaky", &files, &change).expect("repository");
    let developer = hub.token_for("tenant:shop:developer").await;
    let template = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "register"},
        "spec": {"steps": [{"id": "register", "action": "catalog:register",
            "input": {"catalogInfoUrl": "http://127.0.0.1:8080/git/services/shop/sneaky.git/raw/catalog-info.yaml"}}]}});
    // Only the platform team dry-runs a template it sends whole.
    let (status, refused) = hub
        .call_with(
            "POST",
            "/api/scaffolder/v2/dry-run",
            "application/json",
            json!({"template": template, "values": {}}).to_string(),
            Some(&developer),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["message"].as_str().expect("message").contains("templateRef"), "{refused}");

    let location = json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "CatalogLocation", "metadata": {"name": "shop-sneaky"},
        "spec": {"type": "url", "target": "http://127.0.0.1:8080/git/services/shop/sneaky.git/raw/catalog-info.yaml"}});
    let (status, body) = hub.call("POST", "/api/v1/apply", "application/yaml", serde_saphyr::to_string(&location).expect("yaml")).await;
    assert_eq!(status, 200, "{body}");
    let stored = hub.store.get(&heimdall_model::ResourceKey::new("CatalogLocation", "", "shop-sneaky")).await.expect("stored");
    let read = heimdall_hub::catalog::locations::ingest(&hub.state, &stored).await.expect("read");
    let errors = serde_json::to_string(&read.errors).expect("json");
    assert!(errors.contains("may name only files of its repositories in this hub"), "{errors}");
    assert!(errors.contains("may not provide software templates"), "{errors}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the private address was never asked");
    assert!(read.entities.iter().any(|e| e.metadata.name == "other"), "its own files are read");
    assert!(!read.entities.iter().any(|e| e.kind.eq_ignore_ascii_case("Template")), "not even written as `template`");

    // The platform team's own URL location: still no private address by default, and nothing of an answer echoed.
    let body = json!({"type": "url", "target": format!("http://{address}/catalog-info.yaml")}).to_string();
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", body).await;
    assert_eq!(status, 201, "{created}");
    let (_, location) = hub.get(&format!("/api/catalog/locations/{}", created["location"]["id"].as_str().expect("id"))).await;
    let errors = location["status"]["errors"].to_string();
    assert!(errors.contains("an address of the hub's own network"), "{errors}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Allowed, it is fetched; a parse error names the line, not what the server said.
    let hub = hub.with_state(|state| {
        state.fetch =
            std::sync::Arc::new(heimdall_hub::fetch::FetchPolicy { allowed_hosts: vec!["127.0.0.1".into()], allow_private_networks: false })
    });
    let body = json!({"type": "url", "target": format!("http://{address}/again.yaml")}).to_string();
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (_, location) = hub.get(&format!("/api/catalog/locations/{}", created["location"]["id"].as_str().expect("id"))).await;
    let errors = location["status"]["errors"].to_string();
    assert!(errors.contains("not valid YAML") && !errors.contains("METADATA-SECRET"), "{errors}");
    server.abort();
}

#[tokio::test]
async fn a_dry_run_cannot_make_the_hub_hold_much() {
    let hub = hub_with_templates().await;
    let steps: Vec<Value> =
        (0..4).map(|i| json!({"id": format!("log{i}"), "action": "debug:log", "input": {"message": "${{ \"x\" * 100000000 }}"}})).collect();
    let template =
        json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "big"}, "spec": {"steps": steps}});
    let (status, answer) =
        hub.call("POST", "/api/scaffolder/v2/dry-run", "application/json", json!({"template": template, "values": {}}).to_string()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().len() < 4096, "a short answer, not 400 MB");
    assert!(answer["message"].as_str().expect("message").contains("at most 262144 bytes"), "{answer}");
}
