//! Hub and agent as tasks on loopback, the cluster a fake API server: join,
//! apply, health back to the hub, drift, prune, token replay, hub outage,
//! restart without a join token, unreachable, revocation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heimdall_agent::{AgentError, Options};
use heimdall_hub::config::TlsConfig;
use heimdall_hub::{AppState, HubConfig};
use heimdall_testsupport::fake_kube::FakeKube;
use serde_json::{Value, json};

struct Hub {
    state: AppState,
    addr: SocketAddr,
    /// `https://localhost` with TLS, else `http://127.0.0.1`.
    base: String,
    /// Trusts the hub's certificate, if it has one.
    client: reqwest::Client,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hub {
    async fn start(data_dir: &Path, addr: Option<SocketAddr>) -> Hub {
        Self::start_with(data_dir, addr, None).await
    }

    async fn start_with(data_dir: &Path, addr: Option<SocketAddr>, tls: Option<TlsConfig>) -> Hub {
        let mut client = reqwest::Client::builder();
        if let Some(tls) = &tls {
            let pem = std::fs::read(&tls.cert_file).expect("certificate");
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"));
        }
        let client = client.build().expect("client");
        let config = HubConfig { data_dir: data_dir.to_path_buf(), agent_unreachable_after_seconds: 2, ..HubConfig::default() };
        let state = heimdall_hub::server::open(&config).await.expect("open hub");
        let token = heimdall_hub::server::ensure_admin_token(&state.store, data_dir).await.expect("admin token").token;
        let listener = std::net::TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"))).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let base = if tls.is_some() { format!("https://localhost:{}", addr.port()) } else { format!("http://{addr}") };
        let task = tokio::spawn(async move {
            heimdall_hub::server::serve(listener, serving, tls.as_ref(), async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Hub { state, addr, base, client, token, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
        self.state.store.close().await;
    }

    fn url(&self) -> String {
        self.base.clone()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("hub answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body, Some(&self.token)).await;
        assert!(status < 300, "{path}: {status} {}", value.get("message").and_then(Value::as_str).unwrap_or_default());
        value
    }

    async fn apply(&self, yaml: &str) {
        let response = self
            .client
            .post(format!("{}/api/v1/apply", self.url()))
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .await
            .expect("apply");
        assert!(response.status().is_success(), "apply: {}", response.text().await.unwrap_or_default());
    }

    async fn cluster_agent(&self) -> Value {
        self.admin(reqwest::Method::GET, "/api/v1/clusters/spoke-1", None).await.pointer("/status/agent").cloned().unwrap_or(Value::Null)
    }
}

/// Polls `check` until it returns `Some`, failing after 30 s with `what`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn app(name: &str, image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  components:\n    - name: {name}\n      type: worker\n      properties: {{image: {image}}}\n  policies:\n    - {{name: where, type: topology, properties: {{clusters: [spoke-1]}}}}\n"
    )
}

fn agent_options(hub: &Hub, kubeconfig: &Path, join_token: Option<String>) -> Options {
    let mut options = Options::new(hub.url());
    options.join_token = join_token;
    options.kubeconfig = Some(kubeconfig.to_path_buf());
    options.cluster_name = Some("spoke-1".into());
    options.drift_interval = Duration::from_millis(300);
    options.heartbeat_interval = Duration::from_millis(300);
    options.poll_wait = Duration::from_secs(2);
    options.identity = "agent-test".into();
    options
}

fn spawn_agent(options: Options) -> tokio::task::JoinHandle<Result<(), AgentError>> {
    tokio::spawn(heimdall_agent::run(options, std::future::pending()))
}

fn image_of(fake: &FakeKube, name: &str) -> Option<String> {
    fake.get("apps/v1", "Deployment", "shop", name)?.pointer("/spec/template/spec/containers/0/image")?.as_str().map(String::from)
}

/// Registers cluster `spoke-1` (no labels), starts its fake API server and
/// writes its kubeconfig into `dir`. Returns the server, the kubeconfig and a join token.
async fn spoke(hub: &Hub, dir: &Path) -> (FakeKube, PathBuf, String) {
    hub.admin(
        reqwest::Method::POST,
        "/api/v1/clusters",
        Some(json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "spoke-1"}, "spec": {}})),
    )
    .await;
    let join = hub.admin(reqwest::Method::POST, "/api/v1/clusters/spoke-1/join-tokens", None).await;
    let fake = FakeKube::start().await;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
    (fake, kubeconfig, join["token"].as_str().expect("join token").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reaches_the_hub_through_an_http_proxy() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Hub::start(&dir.path().join("hub"), None).await;
    let (_fake, kubeconfig, join_token) = spoke(&hub, dir.path()).await;
    let proxy = heimdall_testsupport::forward_proxy::ForwardProxy::start().await;
    let mut options = agent_options(&hub, &kubeconfig, Some(join_token));
    options.proxy = Some(proxy.url());
    options.state_file = Some(dir.path().join("agent.state"));
    let agent = spawn_agent(options);
    eventually("the agent joined through the proxy and reported", || async {
        Some(hub.cluster_agent().await).filter(|a| a["connection"] == "Connected" && a.get("facts").is_some())
    })
    .await;
    assert!(proxy.connections() > 0, "every request to the hub goes through the proxy");
    agent.abort();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_trusts_a_hub_signed_by_a_private_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let tls = TlsConfig { cert_file: dir.path().join("tls.crt"), key_file: dir.path().join("tls.key") };
    std::fs::write(&tls.cert_file, certified.cert.pem()).expect("cert");
    std::fs::write(&tls.key_file, certified.signing_key.serialize_pem()).expect("key");
    let hub = Hub::start_with(&dir.path().join("hub"), None, Some(tls)).await;
    let (_fake, kubeconfig, join_token) = spoke(&hub, dir.path()).await;
    let mut options = agent_options(&hub, &kubeconfig, Some(join_token));
    options.hub_ca = Some(certified.cert.pem().into_bytes());
    options.state_file = Some(dir.path().join("agent.state"));
    let agent = spawn_agent(options);
    eventually("the agent joined over TLS", || async { Some(hub.cluster_agent().await).filter(|a| a["connection"] == "Connected") }).await;
    agent.abort();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_loop_from_join_to_revocation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir: PathBuf = dir.path().join("hub");
    let hub = Hub::start(&data_dir, None).await;
    let platform = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
    heimdall_hub::server::load_manifests(&hub.state, heimdall_hub::examples::read_manifests(&platform).expect("read"))
        .await
        .expect("platform");
    hub.admin(
        reqwest::Method::POST,
        "/api/v1/clusters",
        Some(json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": "spoke-1", "labels": {"env": "dev"}}, "spec": {}})),
    )
    .await;
    let join = hub.admin(reqwest::Method::POST, "/api/v1/clusters/spoke-1/join-tokens", Some(json!({"ttlSeconds": 600}))).await;
    let join_token = join["token"].as_str().expect("token").to_string();

    let fake = FakeKube::start().await;
    fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");

    // Join.
    let agent = spawn_agent(agent_options(&hub, &kubeconfig, Some(join_token.clone())));
    let status = eventually("the agent joined and reported", || async {
        let agent = hub.cluster_agent().await;
        (agent["connection"] == "Connected" && agent.get("facts").is_some()).then_some(agent)
    })
    .await;
    assert!(status["publicKey"].as_str().is_some_and(|k| k.starts_with("age1")));
    assert_eq!(status["facts"]["kubernetesVersion"], "v1.33.0-fake");
    assert_eq!(status["facts"]["nodes"], 1);
    let (replayed, error) = hub
        .call(reqwest::Method::POST, "/api/v1/agent/join", Some(json!({"joinToken": join_token, "publicKey": status["publicKey"]})), None)
        .await;
    assert_eq!(replayed, 401, "a spent join token is refused: {error}");

    // Apply: objects appear, health flows back.
    hub.apply(&app("web", "registry.example.com/shop/nginx:1")).await;
    eventually("the deployment is applied", || async {
        (image_of(&fake, "web").as_deref() == Some("registry.example.com/shop/nginx:1")).then_some(())
    })
    .await;
    let health = |hub: &Hub| {
        let hub_url = hub.url();
        let token = hub.token.clone();
        async move {
            let app: Value = reqwest::Client::new()
                .get(format!("{hub_url}/api/v1/namespaces/shop/applications/web"))
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            app.pointer("/status/clusters/spoke-1").cloned()
        }
    };
    eventually("the hub shows the app progressing", || async { health(&hub).await.filter(|h| h["health"] == "Progressing") }).await;
    assert!(fake.roll_out("shop", "web"));
    let healthy = eventually("the hub shows the app healthy", || async { health(&hub).await.filter(|h| h["health"] == "Healthy") }).await;
    assert_eq!(healthy["sync"], "Synced");
    let agent_status =
        eventually("the cluster is in sync", || async { Some(hub.cluster_agent().await).filter(|a| a["sync"] == "Synced") }).await;
    assert_eq!(agent_status["appliedRevision"], agent_status["desiredRevision"]);

    // Drift is repaired and counted.
    fake.mutate("apps/v1", "Deployment", "shop", "web", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:1"));
    eventually("drift is repaired", || async {
        (image_of(&fake, "web").as_deref() == Some("registry.example.com/shop/nginx:1")).then_some(())
    })
    .await;
    eventually("the hub counts the drift", || async {
        let agent = hub.cluster_agent().await;
        (agent.pointer("/drift/corrected").and_then(Value::as_u64).unwrap_or(0) >= 1).then_some(())
    })
    .await;

    // Deleting an application prunes its objects.
    hub.apply(&app("api", "registry.example.com/shop/api:1")).await;
    eventually("the second app is applied", || async { image_of(&fake, "api").map(|_| ()) }).await;
    hub.admin(reqwest::Method::DELETE, "/api/v1/namespaces/shop/applications/api", None).await;
    eventually("the deleted app is pruned", || async { image_of(&fake, "api").is_none().then_some(()) }).await;

    // The hub goes away: nothing is deleted; it comes back: the agent reconnects by itself.
    let addr = hub.addr;
    hub.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        image_of(&fake, "web").as_deref(),
        Some("registry.example.com/shop/nginx:1"),
        "the agent keeps the applied state while the hub is away"
    );
    let hub = Hub::start(&data_dir, Some(addr)).await;
    hub.apply(&app("web", "registry.example.com/shop/nginx:2")).await;
    eventually("the agent applies the change after the outage", || async {
        (image_of(&fake, "web").as_deref() == Some("registry.example.com/shop/nginx:2")).then_some(())
    })
    .await;

    // A silent agent makes its cluster Unreachable; a restarted one needs no join token.
    agent.abort();
    eventually("the cluster becomes unreachable", || async {
        Some(hub.cluster_agent().await).filter(|a| a["connection"] == "Unreachable")
    })
    .await;
    let agent = spawn_agent(agent_options(&hub, &kubeconfig, None));
    eventually("the restarted agent reconnects with its stored credential", || async {
        Some(hub.cluster_agent().await).filter(|a| a["connection"] == "Connected")
    })
    .await;

    // Revoked: the agent is refused and stops; what it applied stays.
    hub.admin(reqwest::Method::POST, "/api/v1/clusters/spoke-1/revoke", Some(json!({}))).await;
    let ended = tokio::time::timeout(Duration::from_secs(30), agent).await.expect("the agent stops").expect("no panic");
    assert!(matches!(ended, Err(AgentError::Hub(heimdall_agent::hub::HubError::Refused(_)))), "{ended:?}");
    assert_eq!(hub.cluster_agent().await["connection"], "Revoked");
    assert_eq!(image_of(&fake, "web").as_deref(), Some("registry.example.com/shop/nginx:2"));
    hub.stop().await;
}
