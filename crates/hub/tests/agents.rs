//! The agent protocol on the router: joining, what each credential may do,
//! revisions and manifests, reports into statuses, unreachable clusters.

mod common;

use std::time::Duration;

use axum::body::Body;
use common::{TestHub, web_app};
use serde_json::{Value, json};

const PUBLIC_KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

async fn join_token(hub: &TestHub, cluster: &str) -> String {
    let (status, body) = hub.call("POST", &format!("/api/v1/clusters/{cluster}/join-tokens"), "application/json", "{}").await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

async fn join(hub: &TestHub, body: Value) -> (u16, Value) {
    let (status, value) = hub.call_with("POST", "/api/v1/agent/join", "application/json", body.to_string(), None).await;
    (status.as_u16(), value)
}

#[tokio::test]
async fn joining_checks_the_request_before_spending_the_token() {
    let hub = TestHub::with_example_platform().await;
    let token = join_token(&hub, "dev-eu-1").await;

    let (status, error) = join(&hub, json!({"joinToken": token, "publicKey": "not-a-key"})).await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["path"], "publicKey");
    let (status, error) = join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY, "clusterName": "prod-eu-1"})).await;
    assert_eq!(status, 422);
    assert!(error["details"][0]["message"].as_str().expect("message").contains("dev-eu-1"));

    let (status, credential) = join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY, "clusterName": "dev-eu-1"})).await;
    assert_eq!(status, 200, "{credential}");
    assert_eq!(credential["cluster"], "dev-eu-1");
    let (status, _) = join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY})).await;
    assert_eq!(status, 401, "a join token works once");
    let (status, _) = join(&hub, json!({"joinToken": "hdl_made_up", "publicKey": PUBLIC_KEY})).await;
    assert_eq!(status, 401);

    let cluster = hub.get("/api/v1/clusters/dev-eu-1").await.1;
    assert_eq!(cluster["status"]["agent"]["publicKey"], PUBLIC_KEY);
    assert_eq!(cluster["status"]["agent"]["connection"], "Connected");
    let audit = hub.get("/api/v1/audit?kind=Cluster&name=dev-eu-1").await.1.to_string();
    assert!(!audit.contains(credential["credential"].as_str().expect("credential")), "credentials never reach the audit trail");
}

#[tokio::test]
async fn each_credential_may_do_only_its_part() {
    let hub = TestHub::with_example_platform().await;
    let token = join_token(&hub, "dev-eu-1").await;
    let credential =
        join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY})).await.1["credential"].as_str().expect("c").to_string();
    let (status, _) = hub.call_with("GET", "/api/v1/applications", "", Body::empty(), Some(&credential)).await;
    assert_eq!(status, 403, "an agent may not use the admin API");
    let (status, _) = hub.call_with("GET", "/api/v1/agent/desired", "", Body::empty(), Some(&credential)).await;
    assert_eq!(status, 200);

    let (_, repo_token) = hub.call("POST", "/api/v1/clusters/dev-eu-1/tokens", "application/json", "{}").await;
    let repo_token = repo_token["token"].as_str().expect("token");
    let (status, _) = hub.call_with("POST", "/api/v1/agent/report", "application/json", "{}", Some(repo_token)).await;
    assert_eq!(status, 403, "a repository token is not an agent credential");

    let (status, rotated) = hub.call_with("POST", "/api/v1/agent/rotate", "application/json", "", Some(&credential)).await;
    assert_eq!(status, 200);
    let (status, _) = hub.call_with("GET", "/api/v1/agent/desired", "", Body::empty(), Some(&credential)).await;
    assert_eq!(status, 401, "the rotated-out credential stops working");
    let fresh = rotated["credential"].as_str().expect("fresh");
    let (status, _) = hub.call_with("GET", "/api/v1/agent/desired", "", Body::empty(), Some(fresh)).await;
    assert_eq!(status, 200);

    let (status, revoked) = hub.call("POST", "/api/v1/clusters/dev-eu-1/revoke", "application/json", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(revoked["revoked"], 2, "the agent credential and the repository token");
    let (status, _) = hub.call_with("GET", "/api/v1/agent/desired", "", Body::empty(), Some(fresh)).await;
    assert_eq!(status, 401);
    assert_eq!(hub.get("/api/v1/clusters/dev-eu-1").await.1["status"]["agent"]["connection"], "Revoked");
}

#[tokio::test]
async fn revisions_long_poll_and_manifests_come_whole_or_as_changes() {
    let hub = TestHub::with_example_platform().await;
    let token = join_token(&hub, "dev-eu-1").await;
    let credential =
        join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY})).await.1["credential"].as_str().expect("c").to_string();
    let as_agent = |uri: String| {
        let hub = &hub;
        let credential = credential.clone();
        async move { hub.call_with("GET", &uri, "", Body::empty(), Some(&credential)).await }
    };
    let (_, first) = as_agent("/api/v1/agent/desired".into()).await;
    let first = first["revision"].as_str().expect("the repository has a first commit").to_string();

    let started = std::time::Instant::now();
    let (_, same) = as_agent(format!("/api/v1/agent/desired?known={first}&wait=1")).await;
    assert_eq!(same["revision"], first.as_str());
    assert!(started.elapsed() >= Duration::from_millis(900), "an unchanged revision waits");

    let (status, _) = hub.apply_yaml(&web_app("web", "registry.example.com/shop/web:1", Some("{clusters: [dev-eu-1]}")), "").await;
    assert_eq!(status, 200);
    let (_, next) = as_agent(format!("/api/v1/agent/desired?known={first}&wait=30")).await;
    let next = next["revision"].as_str().expect("revision").to_string();
    assert_ne!(next, first);

    let (_, whole) = as_agent(format!("/api/v1/agent/manifests?revision={next}")).await;
    assert_eq!(whole["complete"], true);
    let files: Vec<&String> = whole["files"].as_object().expect("files").keys().collect();
    assert!(files.iter().any(|f| f.starts_with("shop/web/") && f.ends_with(".yaml")), "{files:?}");

    hub.apply_yaml(&web_app("web", "registry.example.com/shop/web:2", Some("{clusters: [dev-eu-1]}")), "").await;
    let (_, third) = as_agent(format!("/api/v1/agent/desired?known={next}&wait=30")).await;
    let third = third["revision"].as_str().expect("revision");
    let (_, changes) = as_agent(format!("/api/v1/agent/manifests?revision={third}&since={next}")).await;
    assert_eq!(changes["complete"], false);
    let changed: Vec<&String> = changes["files"].as_object().expect("files").keys().collect();
    assert!(!changed.is_empty() && changed.len() < files.len(), "only what changed: {changed:?}");

    let (status, error) = as_agent("/api/v1/agent/manifests?revision=0000000000000000000000000000000000000000".into()).await;
    assert_eq!(status, 404, "{error}");
}

#[tokio::test]
async fn reports_become_statuses_and_silence_becomes_unreachable() {
    let hub = TestHub::with_example_platform().await;
    hub.apply_yaml(&web_app("web", "registry.example.com/shop/web:1", Some("{clusters: [dev-eu-1]}")), "").await;
    let token = join_token(&hub, "dev-eu-1").await;
    let credential =
        join(&hub, json!({"joinToken": token, "publicKey": PUBLIC_KEY})).await.1["credential"].as_str().expect("c").to_string();
    let head = hub.state.repos.head("dev-eu-1").expect("repo").expect("head");
    let report = json!({
        "facts": {"kubernetesVersion": "v1.33.1", "nodes": 3},
        "appliedRevision": head,
        "drift": {"corrected": 2},
        "apps": {"shop/web": {"sync": "Synced", "health": "Degraded", "messages": ["Deployment shop/web: 0 of 1 replicas available"], "objects": 1}},
    });
    let (status, answer) = hub.call_with("POST", "/api/v1/agent/report", "application/json", report.to_string(), Some(&credential)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["revision"], head.as_str());

    let agent = hub.get("/api/v1/clusters/dev-eu-1").await.1["status"]["agent"].clone();
    assert_eq!(agent["sync"], "Synced");
    assert_eq!(agent["facts"]["nodes"], 3);
    assert_eq!(agent["drift"]["corrected"], 2);
    let app = hub.application("shop", "web").await;
    assert_eq!(app["status"]["clusters"]["dev-eu-1"]["health"], "Degraded");
    assert_eq!(app["status"]["phase"], "Rendered", "the renderer's status is kept beside the agent's");

    // Heartbeats are not events: the same report again writes no status and no audit event.
    let before = hub.state.store.revision().await.expect("revision");
    let beats = hub.state.store.heartbeats().await.expect("heartbeats");
    let (status, _) = hub.call_with("POST", "/api/v1/agent/report", "application/json", report.to_string(), Some(&credential)).await;
    assert_eq!(status, 200);
    assert_eq!(hub.state.store.revision().await.expect("revision"), before, "an unchanged report is no event");
    let beat = |beats: &[(String, String)]| beats.iter().find(|(c, _)| c == "dev-eu-1").map(|(_, at)| at.clone());
    let now = hub.state.store.heartbeats().await.expect("heartbeats");
    assert!(beat(&now).is_some() && beat(&now) >= beat(&beats), "the heartbeat is recorded apart: {beats:?} then {now:?}");

    // A re-render keeps what the agent reported.
    hub.apply_yaml(&web_app("web", "registry.example.com/shop/web:2", Some("{clusters: [dev-eu-1]}")), "").await;
    assert_eq!(hub.application("shop", "web").await["status"]["clusters"]["dev-eu-1"]["health"], "Degraded");

    let bad = json!({"apps": {"shop/web": {"sync": "Synced", "health": "Fine"}}});
    let (status, _) = hub.call_with("POST", "/api/v1/agent/report", "application/json", bad.to_string(), Some(&credential)).await;
    assert_eq!(status, 422, "health must be one of the known states");

    let marked = heimdall_hub::fleet::mark_unreachable(&hub.state, Duration::from_secs(3600)).await.expect("check");
    assert!(marked.is_empty(), "heard from just now");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let marked = heimdall_hub::fleet::mark_unreachable(&hub.state, Duration::from_millis(10)).await.expect("check");
    assert_eq!(marked, vec!["dev-eu-1".to_string()]);
    let agent = hub.get("/api/v1/clusters/dev-eu-1").await.1["status"]["agent"].clone();
    assert_eq!(agent["connection"], "Unreachable");
    assert!(agent["message"].as_str().expect("message").starts_with("no heartbeat since"));

    // Revoked while a report was on its way (authenticated before the revocation):
    // the report, written after it, does not make the cluster Connected again.
    hub.call("POST", "/api/v1/clusters/dev-eu-1/revoke", "application/json", "{}").await;
    let in_flight: heimdall_hub::fleet::AgentReport = serde_json::from_value(report).expect("report");
    heimdall_hub::fleet::record_report(&hub.state, "dev-eu-1", in_flight).await.expect("recorded");
    assert_eq!(hub.get("/api/v1/clusters/dev-eu-1").await.1["status"]["agent"]["connection"], "Revoked");
    let marked = heimdall_hub::fleet::mark_unreachable(&hub.state, Duration::from_millis(10)).await.expect("check");
    assert!(marked.is_empty(), "a revoked cluster is not marked unreachable");
    assert_eq!(hub.get("/api/v1/clusters/dev-eu-1").await.1["status"]["agent"]["connection"], "Revoked");
}

#[tokio::test]
async fn install_manifests_validate_their_input() {
    let hub = TestHub::with_example_platform().await;
    let (status, error) =
        hub.call("POST", "/api/v1/clusters/dev-eu-1/install-manifest", "application/json", json!({"hubUrl": "ftp://x"}).to_string()).await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["path"], "hubUrl");
    let (status, error) = hub
        .call(
            "POST",
            "/api/v1/clusters/dev-eu-1/install-manifest",
            "application/json",
            json!({"hubUrl": "https://hub", "namespaces": ["ok", "Bad_NS"]}).to_string(),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["path"], "namespaces[1]");
    let (status, _) =
        hub.call("POST", "/api/v1/clusters/nope/install-manifest", "application/json", json!({"hubUrl": "https://hub"}).to_string()).await;
    assert_eq!(status, 404);
    let (status, yaml) = hub
        .call("POST", "/api/v1/clusters/dev-eu-1/install-manifest", "application/json", json!({"hubUrl": "https://hub"}).to_string())
        .await;
    assert_eq!(status, 200);
    assert!(yaml.as_str().expect("yaml").contains("kind: Deployment"));
}

/// A request as an agent speaking `versions` (protocol, oldest hub protocol) sends it; `None`: an agent from before versions.
async fn as_agent(
    hub: &TestHub,
    method: &str,
    uri: &str,
    credential: Option<&str>,
    versions: Option<(u32, u32)>,
    body: Value,
) -> (u16, Value) {
    let mut request = axum::http::Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(credential) = credential {
        request = request.header("authorization", format!("Bearer {credential}"));
    }
    if let Some((version, oldest)) = versions {
        request = request.header("heimdall-agent-protocol", version.to_string()).header("heimdall-agent-protocol-min", oldest.to_string());
    }
    let response = tower::ServiceExt::oneshot(hub.router.clone(), request.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("response");
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["heimdall-agent-protocol"],
        heimdall_api::agent::PROTOCOL_VERSION.to_string(),
        "the hub says its version"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn agents_a_version_apart_are_served_and_others_are_told_both_versions() {
    use heimdall_api::agent::PROTOCOL_VERSION;
    let hub = TestHub::with_example_platform().await;
    let token = join_token(&hub, "dev-eu-1").await;
    // The previous version: no version headers, no optional field.
    let (status, credential) =
        as_agent(&hub, "POST", "/api/v1/agent/join", None, None, json!({"joinToken": token, "publicKey": PUBLIC_KEY})).await;
    assert_eq!(status, 200, "{credential}");
    let credential = credential["credential"].as_str().expect("credential").to_string();
    let older = json!({"appliedRevision": null, "apps": {}});
    let (status, body) = as_agent(&hub, "POST", "/api/v1/agent/report", Some(&credential), None, older).await;
    assert_eq!(status, 200, "{body}");

    // The next version: one more field everywhere; it still talks to this hub, which says which version it speaks.
    let next = json!({"facts": {"kubernetesVersion": "v1.40.0", "nodes": 3, "gpus": 8}, "leader": "agent-0", "wholeNewSection": {"x": 1},
        "apps": {"shop/web": {"sync": "Synced", "health": "Healthy", "objects": 2, "costPerHour": 0.3}}});
    let (status, body) =
        as_agent(&hub, "POST", "/api/v1/agent/report", Some(&credential), Some((PROTOCOL_VERSION + 1, PROTOCOL_VERSION)), next).await;
    assert_eq!(status, 200, "{body}");
    let cluster = hub.get("/api/v1/clusters/dev-eu-1").await.1;
    assert_eq!(cluster["status"]["agent"]["facts"]["kubernetesVersion"], "v1.40.0", "{cluster}");

    // An agent that needs a newer hub, and one older than the hub serves: each told why, naming both versions.
    let (status, refused) =
        as_agent(&hub, "GET", "/api/v1/agent/desired", Some(&credential), Some((PROTOCOL_VERSION + 2, PROTOCOL_VERSION + 1)), json!({}))
            .await;
    assert_eq!(status, 426, "{refused}");
    assert_eq!(refused["reason"], "UpgradeRequired");
    let message = refused["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("protocol {} to {}", PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 2))
            && message.contains(&format!("this hub speaks protocol {PROTOCOL_VERSION}")),
        "{message}"
    );
    let (status, refused) = as_agent(&hub, "GET", "/api/v1/agent/desired", Some(&credential), Some((0, 0)), json!({})).await;
    assert_eq!(status, 426, "{refused}");
    assert!(refused["message"].as_str().expect("message").contains("upgrade the agent"));
}
