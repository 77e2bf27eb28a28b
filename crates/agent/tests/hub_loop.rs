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

    /// Loads the example organization's platform (environments, clusters, tenants...).
    async fn load_example_platform(&self) {
        let platform = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
        heimdall_hub::server::load_manifests(&self.state, heimdall_cli::files::read_manifests(&platform).expect("read"))
            .await
            .expect("platform");
    }

    /// Registers a cluster with `labels` and returns a join token for its agent.
    async fn register(&self, cluster: &str, labels: Value) -> String {
        let document = json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": cluster, "labels": labels}, "spec": {}});
        self.admin(reqwest::Method::POST, "/api/v1/clusters", Some(document)).await;
        let join =
            self.admin(reqwest::Method::POST, &format!("/api/v1/clusters/{cluster}/join-tokens"), Some(json!({"ttlSeconds": 600}))).await;
        join["token"].as_str().expect("join token").to_string()
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
    let join_token = hub.register("spoke-1", json!({})).await;
    let fake = FakeKube::start().await;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
    (fake, kubeconfig, join_token)
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
    hub.load_example_platform().await;
    let join_token = hub.register("spoke-1", json!({"env": "dev"})).await;

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

/// Everything written to the log, for the plaintext scan.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

fn secret_app(name: &str, clusters: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations: {{secrets.heimdall.dev/rollout: \"true\"}}\nspec:\n  components:\n    - name: {name}\n      type: worker\n      properties:\n        image: registry.example.com/shop/{name}:1\n        env:\n          - name: DB_PASSWORD\n            valueFrom: {{secretKeyRef: {{name: {name}-db, key: password}}}}\n  policies:\n    - {{name: where, type: topology, properties: {{clusters: [{clusters}]}}}}\n"
    )
}

/// Every file of every commit of every cluster repository, as git shows them.
fn repository_text(git_root: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(git_root).expect("git root").flatten() {
        for args in [vec!["log", "-p", "--all"], vec!["cat-file", "--batch-all-objects", "--batch"]] {
            let output = std::process::Command::new("git").arg("--git-dir").arg(entry.path()).args(&args).output().expect("git runs");
            text.push_str(&String::from_utf8_lossy(&output.stdout));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_the_cluster_sealed_and_plaintext_appears_nowhere_else() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let logs = LogBuffer::default();
    let _ = tracing_subscriber::fmt().with_writer(logs.clone()).with_env_filter("debug").with_ansi(false).try_init();
    let first = "pa55-first-Vq7zK2";
    let second = "pa55-second-Lr9wX4";
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("hub");
    let hub = Hub::start(&data_dir, None).await;
    let mut responses: Vec<String> = Vec::new();

    // Two clusters, each with its agent and its fake API server.
    let (fake, kubeconfig, join_token) = spoke(&hub, dir.path()).await;
    let mut options = agent_options(&hub, &kubeconfig, Some(join_token));
    options.state_file = Some(dir.path().join("agent-1.state"));
    let agent = spawn_agent(options);
    let join_2 = hub.register("spoke-2", json!({})).await;
    let fake_2 = FakeKube::start().await;
    let kubeconfig_2 = dir.path().join("kubeconfig-2");
    std::fs::write(&kubeconfig_2, fake_2.kubeconfig()).expect("kubeconfig");
    let mut options_2 = agent_options(&hub, &kubeconfig_2, Some(join_2));
    options_2.cluster_name = Some("spoke-2".into());
    options_2.state_file = Some(dir.path().join("agent-2.state"));
    let agent_2 = spawn_agent(options_2);
    for cluster in ["spoke-1", "spoke-2"] {
        eventually("both agents joined", || async {
            let (_, value) = hub.call(reqwest::Method::GET, &format!("/api/v1/clusters/{cluster}"), None, Some(&hub.token)).await;
            value.pointer("/status/agent/publicKey").is_some().then_some(())
        })
        .await;
    }

    // A reference to a secret that does not exist is refused before anything is committed.
    let commits_before = hub.state.repos.head("spoke-1").expect("head");
    let refused = hub
        .client
        .post(format!("{}/api/v1/apply", hub.url()))
        .bearer_auth(&hub.token)
        .header("content-type", "application/yaml")
        .body(secret_app("web", "spoke-1, spoke-2"))
        .send()
        .await
        .expect("apply");
    assert_eq!(refused.status().as_u16(), 422);
    let refused = refused.text().await.expect("body");
    assert!(
        refused.contains("web-db") && refused.contains("does not exist") && refused.contains("heimdall secret set shop/web-db password"),
        "{refused}"
    );
    assert!(refused.contains("env[0]"), "the error names where the secret is read: {refused}");
    responses.push(refused);
    assert_eq!(hub.state.repos.head("spoke-1").expect("head"), commits_before, "nothing committed");

    // Bad names and keys are refused without echoing the value.
    for (path, expected) in [
        ("/api/v1/namespaces/shop/secrets/Web_DB/keys/password", "secret name"),
        ("/api/v1/namespaces/shop/secrets/web-db/keys/pass%20word", "secret key"),
    ] {
        let (status, body) = hub.call(reqwest::Method::PUT, path, Some(json!({"value": b64(first)})), Some(&hub.token)).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(body.to_string().contains(expected), "{body}");
        responses.push(body.to_string());
    }

    // Set it, then deploy an application that reads it.
    let (status, set) = hub
        .call(
            reqwest::Method::PUT,
            "/api/v1/namespaces/shop/secrets/web-db/keys/password",
            Some(json!({"value": b64(first)})),
            Some(&hub.token),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["version"], 1);
    responses.push(set.to_string());
    hub.apply(&secret_app("web", "spoke-1, spoke-2")).await;
    for (fake, cluster) in [(&fake, "spoke-1"), (&fake_2, "spoke-2")] {
        let secret =
            eventually(&format!("the agent of {cluster} created the Secret"), || async { fake.get("v1", "Secret", "shop", "web-db") })
                .await;
        assert_eq!(secret["data"]["password"], b64(first), "{cluster}");
        assert_eq!(secret["metadata"]["labels"]["app.kubernetes.io/managed-by"], "heimdall");
    }
    let checksum = |fake: &FakeKube| {
        fake.get("apps/v1", "Deployment", "shop", "web")
            .and_then(|d| d.pointer("/spec/template/metadata/annotations/secrets.heimdall.dev~1checksum").cloned())
    };
    let first_checksum = eventually("the Deployment carries the secret checksum", || async { checksum(&fake) }).await;

    // The repository holds the sealed object only; the other cluster's agent cannot open it.
    let head = hub.state.repos.head("spoke-1").expect("head").expect("commit");
    let files = hub.state.repos.files_at("spoke-1", &head, "shop/web").expect("files");
    let sealed: Value = serde_saphyr::from_str(files.get("encryptedsecret-web-db.yaml").expect("sealed file")).expect("yaml");
    assert_eq!(sealed["kind"], "EncryptedSecret");
    let identity_of = |file: &str| -> age::x25519::Identity {
        let packed = std::fs::read(dir.path().join(file)).expect("agent state");
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(packed.as_slice()), &mut json).expect("gzip");
        let state: Value = serde_json::from_slice(&json).expect("json");
        state["identity"].as_str().expect("identity").parse().expect("age identity")
    };
    heimdall_secrets::agent::open(&sealed, &[identity_of("agent-1.state")]).expect("its own agent opens it");
    let refused = heimdall_secrets::agent::open(&sealed, &[identity_of("agent-2.state")]).expect_err("another cluster's agent");
    assert!(matches!(refused, heimdall_secrets::SecretsError::Decrypt { .. }), "{refused}");

    // A new value is a new version, re-delivered, and rolls the pods that read it.
    let (status, set) = hub
        .call(
            reqwest::Method::PUT,
            "/api/v1/namespaces/shop/secrets/web-db/keys/password",
            Some(json!({"value": b64(second)})),
            Some(&hub.token),
        )
        .await;
    assert_eq!((status, set["version"].as_i64()), (200, Some(2)), "{set}");
    assert_eq!(set["redelivered"], json!(["Application/shop/web"]));
    responses.push(set.to_string());
    eventually("the cluster has the new value", || async {
        (fake.get("v1", "Secret", "shop", "web-db")?["data"]["password"] == b64(second)).then_some(())
    })
    .await;
    eventually("the pods roll", || async { checksum(&fake).filter(|c| *c != first_checksum) }).await;
    let (_, listed) = hub.call(reqwest::Method::GET, "/api/v1/namespaces/shop/secrets/web-db", None, Some(&hub.token)).await;
    assert_eq!(listed["spec"]["keys"]["password"]["version"], 2);
    assert_eq!(listed["spec"]["keys"]["password"]["updatedBy"], "admin");
    responses.push(listed.to_string());
    let (_, audit) = hub.call(reqwest::Method::GET, "/api/v1/audit?kind=Secret", None, Some(&hub.token)).await;
    responses.push(audit.to_string());
    // Writing a Secret document directly is not a way around the API.
    let direct = hub
        .client
        .post(format!("{}/api/v1/apply", hub.url()))
        .bearer_auth(&hub.token)
        .header("content-type", "application/yaml")
        .body("apiVersion: secrets.heimdall.dev/v1alpha1\nkind: Secret\nmetadata: {name: web-db, namespace: shop}\nspec: {keys: {}}\n")
        .send()
        .await
        .expect("apply");
    assert_eq!(direct.status().as_u16(), 422);
    responses.push(direct.text().await.expect("body"));

    // Master-key rotation re-wraps every data key; nothing is lost.
    let old_key_file = std::fs::read_to_string(data_dir.join("master.key")).expect("key file");
    let (status, rotation) = hub.call(reqwest::Method::POST, "/api/v1/secrets/rotate-master-key", None, Some(&hub.token)).await;
    assert_eq!(status, 200, "{rotation}");
    assert_eq!(rotation["rewrapped"], 1);
    assert_eq!(rotation["retired"].as_array().map(Vec::len), Some(1));
    responses.push(rotation.to_string());
    let new_key_file = std::fs::read_to_string(data_dir.join("master.key")).expect("key file");
    assert!(new_key_file.contains(rotation["keyId"].as_str().expect("id")) && new_key_file != old_key_file);
    // The value still opens: deleting the Secret from the cluster makes the agent re-create it from a re-seal.
    let (status, _) = hub
        .call(
            reqwest::Method::PUT,
            "/api/v1/namespaces/shop/secrets/web-db/keys/user",
            Some(json!({"value": b64("app")})),
            Some(&hub.token),
        )
        .await;
    assert_eq!(status, 200);
    eventually("both keys arrive after the rotation", || async {
        let secret = fake.get("v1", "Secret", "shop", "web-db")?;
        (secret["data"]["password"] == b64(second) && secret["data"]["user"] == b64("app")).then_some(())
    })
    .await;

    agent.abort();
    agent_2.abort();
    hub.stop().await;

    // A restart with the rotated key file opens; a wrong key file fails loudly.
    let config = HubConfig { data_dir: data_dir.clone(), ..HubConfig::default() };
    let reopened = heimdall_hub::server::open(&config).await.expect("the rotated key file opens the store");
    reopened.store.close().await;
    std::fs::rename(data_dir.join("master.key"), dir.path().join("master.key.saved")).expect("move");
    std::fs::write(data_dir.join("master.key"), heimdall_secrets::keyring::Keyring::generate().to_file_text().expect("key").as_bytes())
        .expect("wrong key");
    let wrong = heimdall_hub::server::open(&config).await.expect_err("a wrong key file");
    assert!(wrong.to_string().contains("wrong key file"), "{wrong}");
    std::fs::remove_file(data_dir.join("master.key")).expect("remove");
    let missing = heimdall_hub::server::open(&config).await.expect_err("a missing key file");
    assert!(missing.to_string().contains("is missing"), "{missing}");

    // The scan: git, the database, the log and every API answer.
    let logged = String::from_utf8_lossy(&logs.0.lock().expect("log").clone()).to_string();
    assert!(logged.contains("secret value set"), "the log is captured");
    let mut database = Vec::new();
    for file in ["heimdall.db", "heimdall.db-wal"] {
        database.extend(std::fs::read(data_dir.join(file)).unwrap_or_default());
    }
    let database = String::from_utf8_lossy(&database).to_string();
    let repositories = repository_text(&data_dir.join("git").join("clusters"));
    assert!(repositories.contains("EncryptedSecret"), "the scan reads the repositories");
    for plaintext in [first, second] {
        for (place, text) in [("git", &repositories), ("database", &database), ("log", &logged), ("API", &responses.join("\n"))] {
            assert!(!text.contains(plaintext), "{place} contains a secret value");
            assert!(!text.contains(&b64(plaintext)), "{place} contains a secret value in base64");
        }
    }
}

const ORDERS_IN_PROD: &str = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: orders, namespace: shop}
spec:
  components:
    - name: orders-db
      type: postgresql
      properties: {highAvailability: true, storageGB: 50}
    - name: orders
      type: webservice
      dependsOn: [orders-db]
      properties:
        image: registry.example.com/shop/orders:2.3.0
        ports: [{port: 8080, expose: true}]
      traits:
        - {type: scaler, properties: {replicas: 2}}
  policies:
    - {name: prod, type: topology, properties: {clusters: [spoke-1]}}
"#;

fn crd(group: &str, kind: &str, plural: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"kind": kind, "plural": plural},
            "versions": [{"name": "v1beta1", "served": true, "storage": true}]}})
}

/// The Secret the orders Deployment reads its database password from.
fn password_secret(fake: &FakeKube) -> Option<String> {
    let deployment = fake.get("apps/v1", "Deployment", "shop", "orders")?;
    let env = deployment.pointer("/spec/template/spec/containers/0/env")?.as_array()?.clone();
    let entry = env.into_iter().find(|e| e["name"] == "ORDERS_DB_PASSWORD")?;
    entry.pointer("/valueFrom/secretKeyRef/name")?.as_str().map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_moves_from_rds_to_cloud_sql_new_first_switch_when_ready_delete_only_when_confirmed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Hub::start(&dir.path().join("hub"), None).await;
    hub.load_example_platform().await;
    let join_token = hub.register("spoke-1", json!({"env": "prod"})).await;
    let fake = FakeKube::start().await;
    fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    // The providers' kinds, as Crossplane's providers install them.
    fake.create(crd("rds.aws.m.upbound.io", "Instance", "instances"));
    fake.create(crd("sql.gcp.m.upbound.io", "DatabaseInstance", "databaseinstances"));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
    let agent = spawn_agent(agent_options(&hub, &kubeconfig, Some(join_token)));

    hub.apply(ORDERS_IN_PROD).await;
    let rds = || fake.get("rds.aws.m.upbound.io/v1beta1", "Instance", "shop", "orders-db");
    let cloud_sql = || fake.get("sql.gcp.m.upbound.io/v1beta1", "DatabaseInstance", "shop", "orders-db-gcp");
    eventually("RDS is claimed and the web service reads its secret", || async {
        (rds().is_some() && password_secret(&fake).as_deref() == Some("orders-db-rds")).then_some(())
    })
    .await;
    assert_eq!(rds().and_then(|i| i.pointer("/spec/forProvider/multiAz").cloned()), Some(json!(true)));

    // The plan says what would happen and changes nothing.
    let plan = hub
        .admin(reqwest::Method::POST, "/api/v1/namespaces/shop/claims/orders-db/plan", Some(json!({"composition": "gcp-cloudsql"})))
        .await;
    assert_eq!(plan["steps"][0]["from"], "aws-rds");
    assert_eq!(plan["steps"][0]["create"], json!(["DatabaseInstance/orders-db-gcp"]));
    assert_eq!(plan["steps"][0]["switch"], json!(["orders"]));
    assert_eq!(plan["steps"][0]["switchToSecret"], "orders-db-cloudsql");
    assert_eq!(plan["steps"][0]["delete"], json!(["Instance/orders-db"]));
    assert_eq!(plan["costBefore"], 35.75);
    assert_eq!(plan["costAfter"], 28.5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cloud_sql().is_none(), "a plan creates nothing");

    // Migrate, held while the data is copied: the new instance comes first, consumers stay on the old one.
    let migration = |spec: &str| {
        format!(
            "apiVersion: platform.heimdall.dev/v1alpha1\nkind: ClaimMigration\nmetadata: {{name: orders-db, namespace: shop}}\nspec: {{composition: gcp-cloudsql{spec}}}\n"
        )
    };
    hub.apply(&migration(", hold: true")).await;
    eventually("Cloud SQL is created beside RDS", || async { cloud_sql().map(|_| ()) }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(rds().is_some(), "the old instance stays");
    assert_eq!(password_secret(&fake).as_deref(), Some("orders-db-rds"), "consumers wait until the new instance is ready");

    // The provider reports ready: consumers switch, the old instance stays until confirmed.
    assert!(fake.set_status(
        "sql.gcp.m.upbound.io/v1beta1",
        "DatabaseInstance",
        "shop",
        "orders-db-gcp",
        json!({"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "True"}]}),
    ));
    eventually("the hub records the new instance ready", || async {
        let status = hub.admin(reqwest::Method::GET, "/api/v1/namespaces/shop/claimmigrations/orders-db", None).await;
        (status.pointer("/status/ready") == Some(&json!(["spoke-1"]))).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(password_secret(&fake).as_deref(), Some("orders-db-rds"), "held: consumers stay while the data is copied");
    hub.apply(&migration("")).await;
    eventually("consumers read the Cloud SQL secret", || async {
        (password_secret(&fake).as_deref() == Some("orders-db-cloudsql")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(rds().is_some(), "nothing is deleted without --confirm-delete");

    // Confirmed: the old instance goes.
    hub.apply(&migration(", confirmDelete: true")).await;
    eventually("RDS is deleted", || async { rds().is_none().then_some(()) }).await;
    assert!(cloud_sql().is_some());
    let instances = eventually("the hub shows one ready Cloud SQL instance", || async {
        let list = hub.admin(reqwest::Method::GET, "/api/v1/namespaces/shop/claim-instances", None).await;
        let list = list.as_array().cloned().unwrap_or_default();
        (list.len() == 1 && list[0]["state"] == "Ready").then_some(list)
    })
    .await;
    assert_eq!(instances[0]["composition"], "gcp-cloudsql");
    assert_eq!(instances[0]["consumers"], json!(["orders"]));
    assert_eq!(instances[0]["cost"], 28.5);
    assert!(instances[0]["messages"][0].as_str().is_some_and(|m| m.contains("Ready=True, Synced=True")), "{instances:?}");
    agent.abort();
    hub.stop().await;
}
