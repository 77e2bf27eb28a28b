//! The binary as a user runs it: `heimdall up` or `heimdall hub` on a
//! loopback port, then client commands against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

mod common;

use common::{eventually, eventually_or, free_port, run, start, stdout, up, up_on};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// `heimdall completion bash | head` closes the pipe before the script is
/// written: the command ends quietly instead of panicking.
#[test]
fn completion_into_a_closed_pipe_is_not_a_panic() {
    let mut child = Command::new(common::BIN)
        .args(["completion", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("panicked"), "{:?}: {stderr}", output.status);
}

#[test]
fn up_apply_get_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let env = [("HEIMDALL_CONFIG", dir.path().join("client.yaml").display().to_string())];
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let up_args = ["up", "--data-dir", data.to_str().expect("utf-8"), "--listen", &listen, "--no-examples"];
    let hub = start(&up_args, &env, "Heimdall hub ready at", port);
    let token_file = data.join("admin-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).expect("token file").permissions().mode() & 0o777, 0o600);

    let empty = stdout(&run(&["get", "applications", "-o", "json"], &env));
    assert_eq!(serde_json::from_str::<Value>(&empty).expect("json")["items"], Value::Array(vec![]), "--no-examples starts empty");

    let applied = stdout(&run(&["apply", "-f", examples_dir().to_str().expect("utf-8")], &env));
    assert!(applied.contains("application/shop/storefront created"), "{applied}");
    assert!(applied.contains("tenant/shop created"), "{applied}");
    let again = stdout(&run(&["apply", "-f", examples_dir().to_str().expect("utf-8")], &env));
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");

    let list: Value = serde_json::from_str(&stdout(&run(&["get", "applications", "-o", "json"], &env))).expect("json");
    let names: Vec<&str> = list["items"].as_array().expect("items").iter().map(|i| i["metadata"]["name"].as_str().expect("name")).collect();
    assert!(names.contains(&"storefront") && names.contains(&"cart"), "{names:?}");

    let table = stdout(&run(&["get", "clusters", "-l", "env in (prod,staging)"], &env));
    assert!(table.starts_with("NAME") && table.contains("prod-eu-1") && !table.contains("dev-eu-1"), "{table}");

    let described = stdout(&run(&["describe", "application", "shop/storefront"], &env));
    assert!(described.contains("Namespace:    shop") && described.contains("Recent changes:"), "{described}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: web, namespace: shop}\nspec:\n  components:\n    - name: web\n      type: webservice\n      dependsOn: nope\n").expect("write");
    let refused = run(&["apply", "-f", bad.to_str().expect("utf-8")], &env);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bad.yaml") && stderr.contains("spec.components[0].dependsOn"), "{stderr}");

    let deleted = stdout(&run(&["delete", "application", "shop/cart"], &env));
    assert_eq!(deleted.trim(), "application/shop/cart deleted");
    let audit = stdout(&run(&["audit", "--kind", "application", "--name", "cart"], &env));
    assert!(audit.lines().nth(1).is_some_and(|l| l.contains("admin") && l.contains("delete")), "{audit}");

    let wrong_token = run(&["get", "apps", "--token", "hdl_wrong"], &env);
    assert!(!wrong_token.status.success());
    assert!(String::from_utf8_lossy(&wrong_token.stderr).contains("invalid or expired token"));

    drop(hub);
    let hub = start(&up_args, &env, "Heimdall hub ready at", port);
    let kept: Value =
        serde_json::from_str(&stdout(&run(&["get", "app", "shop/storefront", "-o", "json", "--hub", &hub.url], &env))).expect("json");
    assert_eq!(kept["metadata"]["name"], "storefront", "state survives a restart");
    let gone = run(&["get", "app", "shop/cart"], &env);
    assert!(!gone.status.success(), "the deleted app stays deleted (examples are not reloaded)");
}

#[test]
fn up_loads_the_example_organization_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, _port, _hub) = up(dir.path(), &[]);
    let tenants = stdout(&run(&["get", "tenants"], &env));
    assert!(tenants.contains("shop") && tenants.contains("payments"), "{tenants}");
    // Lists come page by page (the hub never answers a whole fleet at once): the same rows however small the pages.
    let all_at_once = stdout(&run(&["get", "environments"], &env));
    let one_by_one = stdout(&run(&["get", "environments", "--chunk-size", "1"], &env));
    assert!(all_at_once.lines().count() >= 4, "a header and three environments: {all_at_once}");
    assert_eq!(one_by_one, all_at_once, "following metadata.continue reads every page");
    let workloads = stdout(&run(&["get", "workloads", "-n", "payments"], &env));
    assert!(workloads.contains("payments-api"), "{workloads}");

    // The example orders app claims a PostgreSQL: CloudNativePG in dev, RDS in prod.
    let claims = stdout(&run(&["get", "claims", "-n", "shop"], &env));
    let row = |cluster: &str| claims.lines().find(|l| l.starts_with("orders-db") && l.contains(cluster)).unwrap_or_default().to_string();
    assert!(row("dev-eu-1").contains("cloudnative-pg") && row("dev-eu-1").contains("orders-db-app"), "{claims}");
    assert!(row("prod-eu-1").contains("aws-rds") && row("prod-eu-1").contains("35.75"), "{claims}");
    let plan = stdout(&run(&["claim", "plan", "shop/orders-db", "--composition", "gcp-cloudsql", "--environment", "prod"], &env));
    assert!(plan.contains("cluster prod-eu-1: aws-rds -> gcp-cloudsql"), "{plan}");
    assert!(plan.contains("1. create beside the old instance: DatabaseInstance/orders-db-gcp"), "{plan}");
    assert!(plan.contains("switch orders (they then read Secret orders-db-cloudsql)"), "{plan}");
    assert!(plan.contains("delete: Instance/orders-db") && plan.contains("cost of the claim: 36.75 -> 29.50"), "{plan}");
    assert!(!plan.contains("dev-eu-1"), "only prod moves: {plan}");
    let started =
        stdout(&run(&["claim", "migrate", "shop/orders-db", "--composition", "gcp-cloudsql", "--environment", "prod", "--hold"], &env));
    assert!(started.contains("consumers stay on the old instance"), "{started}");
    let listed = stdout(&run(&["claim", "list", "shop"], &env));
    assert!(listed.lines().any(|l| l.contains("prod-eu-1") && l.contains("gcp-cloudsql") && l.contains("new")), "{listed}");
    assert!(listed.lines().any(|l| l.contains("prod-eu-1") && l.contains("aws-rds") && l.contains("serving")), "{listed}");
    let migrations = stdout(&run(&["get", "claimmigrations", "-n", "shop"], &env));
    assert!(migrations.contains("orders-db") && migrations.contains("gcp-cloudsql"), "{migrations}");
    let confirmed = run(&["claim", "migrate", "shop/orders-db", "--confirm-delete"], &env);
    assert!(confirmed.status.success(), "{}", String::from_utf8_lossy(&confirmed.stderr));
    let unknown = run(&["claim", "plan", "shop/orders-db", "--composition", "azure"], &env);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("composition \"azure\""), "{}", String::from_utf8_lossy(&unknown.stderr));
}

#[test]
fn hub_serves_from_postgres_with_a_config_file() {
    let postgres = heimdall_testsupport::Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("hub.yaml");
    std::fs::write(&config, format!("listen: 127.0.0.1:{port}\ndataDir: {}\nlogFormat: json\n", dir.path().join("data").display()))
        .expect("write");
    let env = [("HEIMDALL_DATABASE_URL", postgres.url())];
    let hub = start(&["hub", "--config", config.to_str().expect("utf-8")], &env, "hub ready", port);
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).expect("admin token");
    let client_env = [
        ("HEIMDALL_CONFIG", dir.path().join("client.yaml").display().to_string()),
        ("HEIMDALL_HUB", hub.url.clone()),
        ("HEIMDALL_TOKEN", token.trim().to_string()),
    ];
    stdout(&run(&["apply", "-f", examples_dir().join("platform").to_str().expect("utf-8")], &client_env));
    let clusters: Value = serde_json::from_str(&stdout(&run(&["get", "clusters", "-o", "json"], &client_env))).expect("json");
    assert_eq!(clusters["items"].as_array().map(Vec::len), Some(3));

    let ready = http_get(port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200") && ready.contains(r#"{"status":"ok"}"#), "{ready}");
}

/// A bare HTTP/1.1 GET, enough for the health endpoints.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn completions_are_generated() {
    let script = stdout(&run(&["completion", "bash"], &[]));
    assert!(script.contains("_heimdall()"), "{script}");
    assert!(script.contains("apply") && script.contains("describe"));
}

#[test]
fn render_works_offline_for_every_target() {
    let platform = examples_dir().join("platform");
    let storefront = examples_dir().join("apps/shop/storefront.yaml");
    let yaml = stdout(&run(&["render", "-f", storefront.to_str().expect("utf-8"), "--platform", platform.to_str().expect("utf-8")], &[]));
    assert!(yaml.contains("# cluster: dev-eu-1, namespace: shop, environment: dev"), "{yaml}");
    assert!(yaml.contains("(held until step approve-prod is approved)"), "{yaml}");
    assert!(yaml.contains("example.com/platform: heimdall"), "org defaults are applied: {yaml}");

    let json: Value = serde_json::from_str(&stdout(&run(
        &[
            "render",
            "-f",
            storefront.to_str().expect("utf-8"),
            "--platform",
            platform.to_str().expect("utf-8"),
            "--env",
            "prod",
            "--approve",
            "approve-prod",
            "-o",
            "json",
        ],
        &[],
    )))
    .expect("json");
    let targets = json[0]["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "only prod");
    let deployment = targets[0]["objects"].as_array().expect("objects").iter().find(|o| o["kind"] == "Deployment").expect("deployment");
    assert_eq!(deployment["spec"]["replicas"], 4, "the prod override applies");

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kubevela/apps");
    let all = run(&["render", "-f", corpus.to_str().expect("utf-8")], &[]);
    assert!(all.status.success(), "the whole KubeVela corpus renders from the CLI: {}", String::from_utf8_lossy(&all.stderr));

    let bad = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(bad.path(), "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: x}\nspec:\n  components:\n    - {name: x, type: webservice, properties: {image: registry.example.com/x:latest}}\n").expect("write");
    let refused = run(&["render", "-f", bad.path().to_str().expect("utf-8"), "--platform", platform.to_str().expect("utf-8")], &[]);
    assert!(!refused.status.success(), "a policy violation fails the render");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("violation") && String::from_utf8_lossy(&refused.stderr).contains(":latest"));
}

#[test]
fn up_renders_the_examples_and_approvals_promote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, _port, _hub) = up(dir.path(), &[]);
    let apps = stdout(&run(&["get", "applications"], &env));
    assert!(apps.lines().any(|l| l.contains("storefront") && l.contains("Suspended")), "{apps}");
    assert!(apps.lines().any(|l| l.contains("cart") && l.contains("Rendered")), "{apps}");
    let approved = stdout(&run(&["approve", "application", "shop/storefront", "--step", "approve-prod"], &env));
    assert!(approved.contains("phase Rendered"), "{approved}");
    let app: Value = serde_json::from_str(&stdout(&run(&["get", "app", "shop/storefront", "-o", "json"], &env))).expect("json");
    let states: Vec<&str> =
        app["status"]["targets"].as_array().expect("targets").iter().map(|t| t["state"].as_str().expect("state")).collect();
    assert_eq!(states, ["Ready", "Ready"]);
}

fn git_clone(url: &str, into: &Path) -> Output {
    Command::new("git")
        .args(["clone", "-q", url, into.to_str().expect("utf-8")])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs")
}

#[test]
fn cluster_repositories_clone_over_http_with_per_cluster_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (env, port, hub) = up(dir.path(), &[]);
    let token = stdout(&run(&["cluster", "token", "dev-eu-1"], &env)).trim().to_string();
    assert!(token.starts_with("hdl_"), "{token}");
    let with = |token: &str, cluster: &str| format!("http://agent:{token}@127.0.0.1:{port}/git/clusters/{cluster}.git");

    let clone = dir.path().join("dev");
    let cloned = git_clone(&with(&token, "dev-eu-1"), &clone);
    assert!(cloned.status.success(), "{}", String::from_utf8_lossy(&cloned.stderr));
    assert!(clone.join("shop/cart/kustomization.yaml").exists(), "the example cart app is delivered to dev");
    let kustomized = Command::new("kubectl").args(["kustomize", clone.to_str().expect("utf-8")]).output().expect("kubectl");
    assert!(kustomized.status.success(), "{}", String::from_utf8_lossy(&kustomized.stderr));
    assert!(String::from_utf8_lossy(&kustomized.stdout).contains("kind: Deployment"));

    let refused = git_clone(&with(&token, "prod-eu-1"), &dir.path().join("prod"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{}", String::from_utf8_lossy(&refused.stderr));
    let anonymous = git_clone(&format!("{}/git/clusters/dev-eu-1.git", hub.url), &dir.path().join("anon"));
    assert!(!anonymous.status.success(), "no token, no clone");

    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token");
    let all = git_clone(&with(admin.trim(), "prod-eu-1"), &dir.path().join("prod-admin"));
    assert!(all.status.success(), "the admin token reads every repository: {}", String::from_utf8_lossy(&all.stderr));

    let api = run(&["get", "apps", "--token", &token], &env);
    assert!(
        !api.status.success() && String::from_utf8_lossy(&api.stderr).contains("missing permission api:use"),
        "a cluster token is not an API token"
    );
}

#[test]
fn cluster_add_agent_apply_health_and_hub_restart() {
    use heimdall_testsupport::fake_kube::FakeKube;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeKube::start());
    fake.create(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
    let (env, port, hub) = up(dir.path(), &[]);

    let token = stdout(&run(&["cluster", "add", "spoke-1", "--label", "env=dev", "--label", "region=eu"], &env)).trim().to_string();
    assert!(token.starts_with("hdl_"), "the join token is printed alone on stdout");

    let agent_args = |token: Option<&str>| {
        let mut args = vec!["agent", "--hub", &hub.url, "--kubeconfig", kubeconfig.to_str().expect("utf-8"), "--cluster-name", "spoke-1"];
        args.extend(["--drift-interval", "1s", "--heartbeat-interval", "1s"]);
        if let Some(token) = token {
            args.extend(["--join-token", token]);
        }
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = agent_args(Some(&token));
    let agent = start(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("HEIMDALL_LOG", "info,heimdall_agent=debug".to_string())],
        "agent running",
        port,
    );

    // Once joined, a fresh install manifest (with a fresh join token) does not disturb the agent.
    let manifest = stdout(&run(&["cluster", "install-manifest", "spoke-1", "--namespaced", "shop"], &env));
    for kind in ["kind: Namespace", "kind: ServiceAccount", "kind: ClusterRole", "kind: Secret", "kind: Deployment"] {
        assert!(manifest.contains(kind), "install manifest lacks {kind}");
    }
    assert!(manifest.contains("rights only in namespaces shop"));

    let app = dir.path().join("web.yaml");
    std::fs::write(
        &app,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: web, namespace: shop}\nspec:\n  components:\n    - name: web\n      type: worker\n      properties: {image: registry.example.com/shop/web:1}\n  policies:\n    - {name: where, type: topology, properties: {clusters: [spoke-1]}}\n",
    )
    .expect("write app");
    stdout(&run(&["apply", "-f", app.to_str().expect("utf-8")], &env));
    let image = |fake: &FakeKube| {
        fake.get("apps/v1", "Deployment", "shop", "web")
            .and_then(|d| d.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).map(String::from))
    };
    if eventually_or("the agent applies the deployment", || image(&fake).filter(|i| i.ends_with("web:1"))).is_none() {
        panic!("the agent never applied the deployment; it said:\n{}\nthe hub said:\n{}", agent.last_lines(60), hub.last_lines(30));
    }
    assert!(fake.roll_out("shop", "web"));
    eventually("heimdall get applications shows health per cluster", || {
        let table = stdout(&run(&["get", "applications", "-n", "shop"], &env));
        table.lines().any(|l| l.starts_with("web ") && l.contains("spoke-1:Synced/Healthy")).then_some(())
    });
    let clusters = stdout(&run(&["get", "clusters"], &env));
    assert!(clusters.lines().any(|l| l.contains("spoke-1") && l.contains("Connected") && l.contains("Synced")), "{clusters}");

    // The hub stops for a while and comes back on its address: nothing is lost, the agent reconnects.
    drop(hub);
    std::thread::sleep(Duration::from_secs(2));
    assert!(image(&fake).is_some_and(|i| i.ends_with("web:1")), "the cluster keeps its state while the hub is away");
    let (env, _port, hub) = up_on(dir.path(), port, &[]);
    std::fs::write(&app, std::fs::read_to_string(&app).expect("read").replace("web:1", "web:2")).expect("write");
    stdout(&run(&["apply", "-f", app.to_str().expect("utf-8")], &env));
    let applied = eventually_or("the reconnected agent applies the change", || image(&fake).filter(|i| i.ends_with("web:2")));
    assert!(applied.is_some(), "agent output:\n{}\nhub output:\n{}", agent.last_lines(60), hub.last_lines(30));
    drop(agent);
}

/// Backstage's own `@backstage/catalog-client` against `heimdall up`: the
/// example organization's components and groups, pages with cursors, full
/// text, by-ref lookups, facets and validation, as a Backstage frontend or
/// plugin would call them.
#[test]
fn backstage_catalog_client_works_against_the_catalog_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_env, port, _hub) = up(dir.path(), &[]);
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).expect("admin token");
    let hub = format!("http://127.0.0.1:{port}");
    // The catalog follows the event log: the examples reach it moments after start.
    let result = eventually("the client sees the example organization", || {
        let result = heimdall_testsupport::backstage_catalog_client(&hub, token.trim());
        (result["listed"].as_array().map_or(0, Vec::len) >= 6).then_some(result)
    });
    let listed: Vec<&str> = result["listed"].as_array().expect("listed").iter().filter_map(Value::as_str).collect();
    assert!(listed.contains(&"Component:shop/storefront") && listed.contains(&"Component:payments/settlement"), "{listed:?}");
    let mut sorted = listed.clone();
    sorted.sort_by_key(|r| r.rsplit('/').next().unwrap_or_default().to_string());
    assert_eq!(listed, sorted, "ordered by name as asked");
    assert_eq!(result["firstPage"]["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(result["firstPage"]["totalItems"].as_u64(), Some(listed.len() as u64));
    assert_eq!(result["firstPage"]["hasNext"], true);
    assert_eq!(result["secondPage"]["hasPrev"], true);
    let both: Vec<&Value> =
        result["firstPage"]["items"].as_array().into_iter().chain(result["secondPage"]["items"].as_array()).flatten().collect();
    assert_eq!(both.iter().map(|v| v.as_str().unwrap_or_default()).collect::<Vec<_>>(), listed[..4], "cursor pages continue the order");
    assert_eq!(result["searched"], json!(["Component:shop/storefront"]));
    assert_eq!(result["storefront"]["annotation"], "Application/shop/storefront");
    assert!(result["storefront"]["relations"].to_string().contains(r#""targetRef":"group:default/shop","type":"ownedBy""#), "{result}");
    assert_eq!(result["missing"], true, "an unknown ref is undefined, not an error");
    assert_eq!(result["byRefs"], json!(["Group:default/shop", null]));
    let kinds = result["facets"]["kind"].as_array().expect("kind facet");
    assert!(kinds.iter().any(|f| f["value"] == "Component" && f["count"].as_u64() == Some(listed.len() as u64)), "{kinds:?}");
    assert_eq!(result["valid"], json!({"valid": true}));
    assert_eq!(result["invalid"]["valid"], false);
    let reasons = result["invalid"]["errors"].to_string();
    assert!(reasons.contains("metadata.name") && reasons.contains("spec.lifecycle"), "Backstage's errors[] names each field: {reasons}");
    let shop: Vec<&str> = listed.iter().copied().filter(|r| r.starts_with("Component:shop/")).collect();
    assert_eq!(result["predicate"]["total"].as_u64(), Some(shop.len() as u64), "{result}");
    let pages: Vec<&str> = result["predicate"]["first"]
        .as_array()
        .into_iter()
        .chain(result["predicate"]["second"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(pages, shop[..4], "a predicate query pages on by POST in name order");
}

#[test]
fn create_from_a_template_makes_a_repository_to_clone_a_catalog_entry_and_an_app_in_dev() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, port, _hub) = up(dir.path(), &[]);
    // `heimdall up` wrote the embedded templates under the data dir and registered them; the catalog reads them at once.
    let listed = eventually("the example templates are in the catalog", || {
        let out = run(&["create"], &env);
        let text = stdout(&out);
        text.contains("node-service").then_some(text)
    });
    assert!(listed.contains("worker") && listed.contains("cron-job"), "{listed}");

    let dry = run(&["create", "--template", "node-service", "--set", "name=cart2", "--set", "owner=shop", "--dry-run"], &env);
    let dry_text = stdout(&dry);
    assert!(dry.status.success() && dry_text.contains(".heimdall/application.yaml") && dry_text.contains("publish"), "{dry_text}");

    let created = run(&["create", "--template", "node-service", "--set", "name=cart2", "--set", "owner=shop", "--set", "port=9000"], &env);
    let text = stdout(&created);
    assert!(created.status.success(), "{text}\n{}", String::from_utf8_lossy(&created.stderr));
    assert!(text.contains("[publish] Create the repository (publish:heimdall)") && text.contains("[deploy]"), "the log streams: {text}");
    let repository = format!("http://127.0.0.1:{port}/git/services/shop/cart2.git");
    assert!(text.contains(&format!("Repository: {repository}")), "{text}");

    let admin = std::fs::read_to_string(dir.path().join("data/admin-token")).expect("admin token");
    let clone = dir.path().join("cart2");
    let cloned = git_clone(&format!("http://me:{}@127.0.0.1:{port}/git/services/shop/cart2.git", admin.trim()), &clone);
    assert!(cloned.status.success(), "{}", String::from_utf8_lossy(&cloned.stderr));
    let application = std::fs::read_to_string(clone.join(".heimdall/application.yaml")).expect("the Application is in the repository");
    assert!(application.contains("port: 9000"), "--set port=9000 reached the skeleton as a number: {application}");

    let app = run(&["get", "application", "cart2", "-n", "shop", "-o", "json"], &env);
    assert!(app.status.success(), "the app is deployed: {}", String::from_utf8_lossy(&app.stderr));
    let entity: Value = serde_json::from_str(&http_get_with(port, "/api/catalog/entities/by-name/component/shop/cart2", admin.trim()))
        .expect("entity JSON");
    assert_eq!(entity["metadata"]["annotations"]["heimdall.dev/application"], "Application/shop/cart2");

    let again = run(&["create", "--template", "node-service", "--set", "name=cart2", "--set", "owner=shop"], &env);
    assert!(!again.status.success(), "a second service of the same name fails");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"), "{}", String::from_utf8_lossy(&again.stderr));
    let bad = run(&["create", "--template", "node-service", "--set", "colour=blue"], &env);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no parameter \"colour\""), "{}", String::from_utf8_lossy(&bad.stderr));
}

fn http_get_with(port: u16, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // HTTP/1.0: the body is not chunked.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// `heimdall bench fleet` runs a hub of its own on a small fleet and prints
/// what it measured; the numbers come from the hub it started, and the
/// renders reached every cluster.
#[test]
fn bench_fleet_measures_a_hub_of_its_own() {
    let home = tempfile::tempdir().expect("home");
    let (xdg, config) = (home.path().join("xdg"), home.path().join("config.yaml"));
    let env = [
        ("HOME", home.path().display().to_string()),
        ("XDG_CONFIG_HOME", xdg.display().to_string()),
        ("HEIMDALL_CONFIG", config.display().to_string()),
    ];
    let output = run(&["bench", "fleet", "--apps", "6", "--tenants", "2", "--clusters", "4", "--batch", "4", "--changes", "3"], &env);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("| 6 applications, 2 tenants, 4 clusters | Measured |"), "{text}");
    assert!(text.contains("| targets per application (rendered) | 4 |"), "{text}");
    for row in ["importing 6 applications", "one application changed", "portal entity page", "hub memory", "git storage", "hub restart"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("| {row}"))), "no row {row}: {text}");
    }
    assert!(!home.path().join(".config").exists() && !xdg.exists() && !config.exists(), "the benchmark wrote no CLI context of ours");
}
