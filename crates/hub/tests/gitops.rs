//! Delivery to the cluster repositories, through the API.

mod common;

use axum::http::StatusCode;
use common::TestHub;
use serde_json::json;

fn web(name: &str, image: &str, topology: &str) -> String {
    common::web_app(name, image, Some(topology))
}

#[tokio::test]
async fn an_apply_commits_to_exactly_the_clusters_it_targets() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dev = hub.commits("dev-eu-1");
    let (email, summary, trailers) = (&dev[0].author.email, &dev[0].summary, &dev[0].trailers);
    assert_eq!(summary, "apply application shop/web by admin");
    assert_eq!(email, "admin@heimdall.invalid");
    let version = body["results"][0]["resourceVersion"].as_str().expect("rv");
    assert!(trailers.iter().any(|(k, v)| k == "Heimdall-Resource" && v.starts_with("Application/shop/web=")), "{trailers:?}");
    assert!(trailers.iter().any(|(k, _)| k == "Heimdall-Event"), "{trailers:?}; rv {version}");
    assert!(hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/web"));
    for other in ["staging-eu-1", "prod-eu-1"] {
        assert!(hub.commits(other).iter().all(|c| !c.summary.contains("shop/web")), "{other} got no commit for shop/web");
        assert!(!hub.state.repos.folders(other).expect("folders").contains("shop/web"));
    }

    let before = hub.commits("dev-eu-1").len();
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    assert_eq!(hub.commits("dev-eu-1").len(), before, "re-applying the same document commits nothing");

    // Moving the app to staging removes it from dev in the same change.
    let (status, body) = hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: staging}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/web"));
    assert!(hub.state.repos.folders("staging-eu-1").expect("folders").contains("shop/web"));

    let (status, _) = hub.call("DELETE", "/api/v1/namespaces/shop/applications/web", "", axum::body::Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!hub.state.repos.folders("staging-eu-1").expect("folders").contains("shop/web"));
    assert_eq!(hub.commits("staging-eu-1")[0].summary, "delete application shop/web by admin");
}

#[tokio::test]
async fn a_put_is_admitted_and_delivered_like_an_apply() {
    let hub = TestHub::with_example_platform().await;
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    let (status, body) = hub
        .call("PUT", "/api/v1/namespaces/shop/applications/web", "application/yaml", web("web", "docker.io/nginx:1", "{environment: dev}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "policies apply to PUT too: {body}");
    let (status, body) = hub
        .call(
            "PUT",
            "/api/v1/namespaces/shop/applications/web",
            "application/yaml",
            web("web", "registry.example.com/shop/web:2.0", "{environment: dev}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hub.commits("dev-eu-1")[0].summary, "update application shop/web by admin");
}

#[tokio::test]
async fn held_targets_are_delivered_when_approved() {
    let hub = TestHub::with_example_platform().await;
    let storefront =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/shop/storefront.yaml"))
            .expect("read");
    hub.apply_yaml(&storefront, "").await;
    assert!(hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/storefront"));
    assert!(!hub.state.repos.folders("prod-eu-1").expect("folders").contains("shop/storefront"), "production waits for approval");
    let (status, body) = hub
        .call(
            "POST",
            "/api/v1/namespaces/shop/applications/storefront/approve",
            "application/json",
            json!({"step": "approve-prod"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(hub.state.repos.folders("prod-eu-1").expect("folders").contains("shop/storefront"));
    assert_eq!(hub.commits("prod-eu-1")[0].summary, "approve step approve-prod of application shop/storefront by admin");
}

#[tokio::test]
async fn a_lost_commit_is_made_when_the_hub_reconciles() {
    let hub = TestHub::with_example_platform().await;
    // Simulate a crash between the store write and the commit: store directly.
    let document = heimdall_model::parse_documents(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "app.yaml")
        .expect("parse")
        .remove(0);
    let app = heimdall_model::decode(&document.value, "app.yaml", "default").expect("valid").resource;
    hub.store.write("alice", app, heimdall_store::ApplyMode::Apply).await.expect("stored");
    assert!(!hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/web"), "the commit was lost");
    heimdall_hub::reconcile::render_all(&hub.state).await.expect("reconcile");
    assert!(hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/web"), "reconciling at start makes it");
    assert!(hub.commits("dev-eu-1")[0].summary.starts_with("reconcile every cluster with the store"), "{:?}", hub.commits("dev-eu-1")[0]);
    heimdall_hub::reconcile::render_all(&hub.state).await.expect("reconcile again");
    assert!(hub.commits("dev-eu-1")[0].summary.starts_with("reconcile"), "a second reconcile finds nothing to do");
}

#[tokio::test]
async fn history_diff_and_rollback() {
    let hub = TestHub::with_example_platform().await;
    let (_, v1) = hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    let first = v1["results"][0]["resourceVersion"].as_str().expect("rv").parse::<i64>().expect("number");
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:2.0", "{environment: dev}"), "").await;

    let (status, history) = hub.get("/api/v1/namespaces/shop/applications/web/history").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let items = history["items"].as_array().expect("items");
    let with_commits: Vec<&serde_json::Value> = items.iter().filter(|i| !i["commits"].as_array().expect("commits").is_empty()).collect();
    assert_eq!(with_commits.len(), 2, "two revisions reached a cluster: {history}");
    assert_eq!(with_commits[0]["commits"][0]["cluster"], "dev-eu-1");
    assert_eq!(with_commits[0]["actor"], "admin");

    let (status, diff) = hub.get(&format!("/api/v1/namespaces/shop/applications/web/diff?from={first}")).await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let text = diff["clusters"][0]["diff"].as_str().expect("diff");
    assert!(
        text.contains("-  - image: registry.example.com/shop/web:1.0")
            || text.contains("-      - image: registry.example.com/shop/web:1.0")
            || text.contains("web:1.0"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with('+') && l.contains("web:2.0")), "{text}");

    let (status, rolled) = hub
        .call("POST", "/api/v1/namespaces/shop/applications/web/rollback", "application/json", json!({"to": first.to_string()}).to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["spec"]["components"][0]["properties"]["image"], "registry.example.com/shop/web:1.0");
    let latest = &hub.commits("dev-eu-1")[0];
    assert_eq!(latest.summary, format!("roll back to revision {first}: application shop/web by admin"));
    let (_, audit) = hub.get("/api/v1/audit?kind=app&name=web&limit=5").await;
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["verb"] == "update" && e["actor"] == "admin" && e["revision"].as_i64() > Some(first))
    );

    let commit = hub.commits("dev-eu-1")[2].id.clone();
    let (status, by_commit) = hub.get(&format!("/api/v1/namespaces/shop/applications/web/diff?from={}", &commit[..12])).await;
    assert_eq!(status, StatusCode::OK, "a commit id works as a revision: {by_commit}");
    let (status, body) =
        hub.call("POST", "/api/v1/namespaces/shop/applications/web/rollback", "application/json", json!({"to": "1"}).to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_broken_repository_shows_on_readyz_and_is_rebuilt() {
    let hub = TestHub::with_example_platform().await;
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    let (status, _) = hub.call_with("GET", "/readyz", "", axum::body::Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK);
    let path = hub.state.repos.path("dev-eu-1").expect("path");
    std::fs::remove_dir_all(path.join("objects")).expect("damage");
    std::fs::create_dir_all(path.join("objects")).expect("empty");
    let (status, body) = hub.call_with("GET", "/readyz", "", axum::body::Body::empty(), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["details"][0]["document"], "Cluster dev-eu-1");
    assert!(body["details"][0]["message"].as_str().expect("message").starts_with("Corrupt"), "{body}");

    let (status, rebuilt) = hub.call("POST", "/api/v1/clusters/dev-eu-1/rebuild", "application/json", "{}".to_string()).await;
    assert_eq!(status, StatusCode::OK, "{rebuilt}");
    assert!(rebuilt["setAside"].as_str().is_some_and(|p| p.contains("dev-eu-1.git.broken-1")));
    assert!(hub.state.repos.folders("dev-eu-1").expect("folders").contains("shop/web"), "the desired state is back");
    assert!(
        hub.commits("dev-eu-1")[0].summary.starts_with("rebuild the repository of cluster dev-eu-1 from the store"),
        "{:?}",
        hub.commits("dev-eu-1")[0]
    );
    let (status, _) = hub.call_with("GET", "/readyz", "", axum::body::Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, cluster) = hub.get("/api/v1/clusters/dev-eu-1").await;
    assert_eq!(cluster["status"]["repository"]["state"], "Healthy", "{cluster}");
}

#[tokio::test]
async fn bootstrap_manifests_point_argo_cd_and_flux_at_the_repository() {
    let hub = TestHub::with_example_platform().await;
    for (name, delivery) in [("edge-argo", "argocd"), ("edge-flux", "flux")] {
        let (status, body) = hub
            .apply_yaml(&format!("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}, labels: {{env: dev}}}}\nspec: {{delivery: {delivery}}}\n"), "")
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let request = json!({"hubUrl": "https://hub.example.com/", "token": "hdl_x"}).to_string();
    let (status, argo) = hub.call("POST", "/api/v1/clusters/edge-argo/bootstrap", "application/json", request.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let argo = argo.as_str().expect("yaml");
    assert!(argo.contains("kind: Application") && argo.contains("repoURL: https://hub.example.com/git/clusters/edge-argo.git"), "{argo}");
    assert!(argo.contains("argocd.argoproj.io/secret-type: repository") && argo.contains("password: hdl_x"), "{argo}");
    let documents = heimdall_model::parse_documents(argo, "argo.yaml").expect("valid YAML");
    assert_eq!(documents.len(), 2);
    let (_, flux) = hub.call("POST", "/api/v1/clusters/edge-flux/bootstrap", "application/json", request.clone()).await;
    let flux = flux.as_str().expect("yaml");
    assert!(flux.contains("kind: GitRepository") && flux.contains("kind: Kustomization") && flux.contains("branch: main"), "{flux}");
    let (status, body) = hub.call("POST", "/api/v1/clusters/dev-eu-1/bootstrap", "application/json", request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "agent clusters get the agent's install manifest instead: {body}");
    assert!(hub.state.repos.exists("edge-argo"), "a new cluster gets its repository at once");
}

#[tokio::test]
async fn a_mirror_receives_every_commit() {
    let hub = TestHub::with_example_platform().await;
    let remote = tempfile::tempdir().expect("tempdir");
    let init = std::process::Command::new("git").args(["init", "--bare", "-q"]).arg(remote.path()).status().expect("git");
    assert!(init.success());
    let cluster = format!(
        "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: dev-eu-1, labels: {{env: dev, region: eu-west-1}}}}\nspec:\n  mirror: {{url: \"file://{}\"}}\n",
        remote.path().display()
    );
    let (status, body) = hub.apply_yaml(&cluster, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0", "{environment: dev}"), "").await;
    let head = hub.state.repos.head("dev-eu-1").expect("head").expect("commit");
    let mirrored =
        std::process::Command::new("git").arg("--git-dir").arg(remote.path()).args(["rev-parse", "refs/heads/main"]).output().expect("git");
    assert_eq!(String::from_utf8_lossy(&mirrored.stdout).trim(), head, "the mirror has the newest commit");
    let (_, cluster) = hub.get("/api/v1/clusters/dev-eu-1").await;
    assert_eq!(cluster["status"]["mirror"]["state"], "Synced", "{cluster}");
}
