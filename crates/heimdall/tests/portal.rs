//! The portal in a real browser: Debian's headless Chromium driven through
//! chromedriver (WebDriver, with fantoccini) against `heimdall up`, with a
//! real agent reporting from a spoke (the fake API server). Sign in, search,
//! open an entity and see its deployments' health, create a service
//! through the template wizard and watch its log, set a secret. Screenshots
//! of the main pages go to `target/tmp/portal-screenshots/` (CI artifacts).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, eventually_or, free_port, run, start, stdout, up};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port; fails (never skips) when Chromium is not installed: scripts/test.sh installs it.
fn chromedriver() -> (Driver, String) {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(Path::new(binary).exists(), "{binary} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)");
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    eventually("chromedriver answers", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    (driver, url)
}

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

async fn browser(driver_url: &str, profile: &Path) -> Client {
    browser_with(driver_url, profile, &[]).await
}

async fn browser_with(driver_url: &str, profile: &Path, more: &[&str]) -> Client {
    // Without the background-networking flags Chromium keeps calling out, and this machine's closed network refuses it.
    let args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1360,1000",
    ]
    .iter()
    .chain(more)
    .map(|a| a.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), serde_json::json!({"binary": CHROMIUM, "args": args}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .expect("a Chromium session")
}

async fn screenshot(driver: &Client, path: &Path) {
    let png = driver.screenshot().await.expect("screenshot");
    std::fs::write(path, png).expect("write screenshot");
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn wait_for(driver: &Client, locator: Locator<'_>) -> Element {
    driver.wait().at_most(Duration::from_secs(30)).for_element(locator).await.expect("element appears")
}

/// Waits until an element of `css` has text that contains `text` (or is it, when `exact`).
async fn wait_for_text_as(driver: &Client, css: &str, text: &str, exact: bool) -> Element {
    let mut seen = String::new();
    for _ in 0..600 {
        if let Ok(element) = driver.find(Locator::Css(css)).await
            && let Ok(found) = element.text().await
        {
            if (exact && found.trim() == text) || (!exact && found.contains(text)) {
                return element;
            }
            seen = found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} never showed {text:?}; last: {seen:?}");
}

async fn wait_for_text(driver: &Client, css: &str, text: &str) -> Element {
    wait_for_text_as(driver, css, text, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_search_open_an_entity_create_a_service_and_set_a_secret() {
    use heimdall_testsupport::fake_kube::FakeKube;
    let fake = FakeKube::start().await;
    fake.create(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
    let (env, port, hub) = up(dir.path(), &[]);
    let admin = std::fs::read_to_string(dir.path().join("data/admin-token")).expect("admin token").trim().to_string();

    // A spoke in dev with a real agent, so deployments have health to show.
    let join = stdout(&run(&["cluster", "add", "spoke-1", "--label", "env=dev"], &env)).trim().to_string();
    let agent_args = [
        "agent",
        "--hub",
        &hub.url,
        "--kubeconfig",
        kubeconfig.to_str().expect("utf-8"),
        "--cluster-name",
        "spoke-1",
        "--join-token",
        &join,
        "--drift-interval",
        "1s",
        "--heartbeat-interval",
        "1s",
    ];
    let agent = start(&agent_args, &[("HEIMDALL_LOG", "info,heimdall_agent=debug".to_string())], "agent running", port);
    // The hub re-renders the fleet for the new cluster and the agent reports; on a busy machine that takes a while.
    // (block_in_place: the fake API server runs on this runtime and must keep answering.)
    let reported = tokio::task::block_in_place(|| {
        eventually_or("spoke-1 reports storefront's health", || {
            let out = run(&["get", "application", "storefront", "-n", "shop", "-o", "json"], &env);
            let app: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            app.pointer("/status/clusters/spoke-1/health").and_then(|h| h.as_str()).map(String::from)
        })
    });
    assert!(reported.is_some(), "spoke-1 never reported storefront's health; the agent said:\n{}", agent.last_lines(60));

    let (_chromedriver, driver_url) = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let driver = browser(&driver_url, profile.path()).await;
    let shots = screenshots();
    let base = format!("http://127.0.0.1:{port}");

    // Sign in: a page of the portal sends you to the sign-in page and back.
    driver.goto(&format!("{base}/catalog")).await.expect("open");
    let token = wait_for(&driver, Locator::Id("token")).await;
    screenshot(&driver, &shots.join("sign-in.png")).await;
    token.send_keys("hdl_wrong").await.expect("type");
    token.send_keys(ENTER).await.expect("submit");
    wait_for_text(&driver, ".error", "invalid or expired token").await;
    let token = wait_for(&driver, Locator::Id("token")).await;
    token.send_keys(&admin).await.expect("type");
    token.send_keys(ENTER).await.expect("submit");
    wait_for_text(&driver, "#signed-in-as", "admin").await;
    assert!(driver.current_url().await.expect("url").path().starts_with("/catalog"), "back where sign-in began");
    wait_for_text(&driver, "#total", "entities").await;
    screenshot(&driver, &shots.join("catalog.png")).await;

    // Search as you type (htmx), then a facet.
    let search = driver.find(Locator::Id("q")).await.expect("search box");
    search.send_keys("storefront").await.expect("type");
    // The component, and the shop group whose description names the storefront.
    wait_for_text_as(&driver, "#total", "2 entities", true).await;
    let results = driver.find(Locator::Id("results")).await.expect("results").text().await.expect("text");
    assert!(results.contains("storefront") && !results.contains("landing") && !results.contains("payments-api"), "{results}");
    driver.find(Locator::Css("input[name='kind'][value='Component']")).await.expect("kind facet").click().await.expect("filter");
    wait_for_text_as(&driver, "#total", "1 entity", true).await;
    assert!(driver.current_url().await.expect("url").query().unwrap_or_default().contains("kind=Component"), "the filter is in the URL");

    // The entity page: about, relations, and its deployments with the agent's health.
    driver.find(Locator::LinkText("storefront")).await.expect("result link").click().await.expect("open entity");
    wait_for_text(&driver, "h1", "storefront").await;
    let health = wait_for_deployment_health(&driver, &format!("{base}/catalog/shop/component/storefront"), "spoke-1").await;
    assert!(!health.is_empty(), "the spoke's agent reported health");
    let relations = driver.find(Locator::Css("ul.relations")).await.expect("relations").text().await.expect("text");
    assert!(relations.contains("ownedBy group:default/shop"), "{relations}");
    assert!(driver.find(Locator::Css("svg.graph")).await.is_ok(), "the relations graph is drawn");
    screenshot(&driver, &shots.join("entity.png")).await;

    // Create a service through the template wizard and watch its log.
    driver.goto(&format!("{base}/create")).await.expect("open create");
    screenshot(&driver, &shots.join("templates.png")).await;
    driver.find(Locator::LinkText("Node.js HTTP service")).await.expect("template card").click().await.expect("choose");
    let name = wait_for(&driver, Locator::Id("f-name")).await;
    name.send_keys("wishlist").await.expect("type");
    driver.find(Locator::Css("#f-owner option[value='shop']")).await.expect("shop as owner").click().await.expect("select");
    screenshot(&driver, &shots.join("wizard.png")).await;
    driver.find(Locator::Id("create")).await.expect("create button").click().await.expect("submit");
    wait_for_text(&driver, "#task-status", "completed").await;
    let log = driver.find(Locator::Css("ol.log")).await.expect("log").text().await.expect("text");
    assert!(log.contains("Create the repository (publish:heimdall)") && log.contains("Deploy to dev (heimdall:apply)"), "{log}");
    screenshot(&driver, &shots.join("task.png")).await;
    driver.find(Locator::LinkText("Open in catalog")).await.expect("catalog link").click().await.expect("open");
    wait_for_text(&driver, "h1", "wishlist").await;
    let deployments = wait_for(&driver, Locator::Css("#deployments-section table")).await.text().await.expect("text");
    assert!(deployments.contains("dev") && !deployments.contains("prod"), "the new service runs in dev only: {deployments}");

    // Set a secret: the value goes in, never comes back.
    driver.goto(&format!("{base}/tenants/shop")).await.expect("open tenant");
    wait_for(&driver, Locator::Id("secret-form")).await;
    driver.find(Locator::Id("secret")).await.expect("secret").send_keys("wishlist-db").await.expect("type");
    driver.find(Locator::Id("key")).await.expect("key").send_keys("password").await.expect("type");
    driver.find(Locator::Id("value")).await.expect("value").send_keys("s3cr3t-value-xyz").await.expect("type");
    driver.find(Locator::Css("#secret-form button")).await.expect("set").click().await.expect("submit");
    wait_for_text(&driver, ".notice", "Set shop/wishlist-db key password (version 1)").await;
    let table = driver.find(Locator::Css("table.secrets")).await.expect("secrets").text().await.expect("text");
    assert!(table.contains("wishlist-db") && table.contains("password"), "{table}");
    assert!(!driver.source().await.expect("source").contains("s3cr3t-value-xyz"), "the value is never shown");
    screenshot(&driver, &shots.join("tenant.png")).await;

    driver.goto(&format!("{base}/clusters")).await.expect("open clusters");
    wait_for_text(&driver, "#spoke-1", "Connected").await;
    screenshot(&driver, &shots.join("clusters.png")).await;
    driver.goto(&format!("{base}/audit?kind=Application")).await.expect("open audit");
    wait_for_text(&driver, "table.audit", "wishlist").await;
    screenshot(&driver, &shots.join("audit.png")).await;

    // Signing out ends the session.
    driver.find(Locator::Css("form.who button")).await.expect("sign out").click().await.expect("sign out");
    wait_for(&driver, Locator::Id("token")).await;
    driver.goto(&format!("{base}/tenants/shop")).await.expect("open");
    wait_for(&driver, Locator::Id("token")).await;
    driver.close().await.expect("quit");
}

/// Reloads the entity page until the cluster's row shows a health; returns it.
async fn wait_for_deployment_health(driver: &Client, url: &str, cluster: &str) -> String {
    for _ in 0..60 {
        driver.goto(url).await.expect("reload");
        if let Ok(cell) = driver.find(Locator::Css(&format!("tr[data-cluster='{cluster}'] [data-health]"))).await {
            let health = cell.attr("data-health").await.expect("attr").unwrap_or_default();
            if !health.is_empty() {
                return health;
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    panic!("no health for {cluster} on {url}: {}", driver.source().await.unwrap_or_default());
}

const LINK_TEMPLATE: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: link-test, title: Link test}
spec:
  owner: group:default/platform-team
  type: service
  parameters:
    - title: The note
      properties:
        note: {title: Note, type: string, default: hello}
  steps:
    - id: say
      name: Say it
      action: debug:log
      input: {message: "${{ parameters.note }}"}
  output:
    links:
      - title: Runbook
        url: "javascript:document.body.setAttribute('data-pwned','yes')"
      - title: Docs
        url: https://docs.example.com/
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_http2_sign_in_and_forms_work_and_no_link_runs_a_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert, key) = (dir.path().join("hub.crt"), dir.path().join("hub.key"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    let config = dir.path().join("hub.yaml");
    std::fs::write(&config, format!("tls: {{certFile: {}, keyFile: {}}}\n", cert.display(), key.display())).expect("config");
    let (_env, port, _hub) = up(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let admin = std::fs::read_to_string(dir.path().join("data/admin-token")).expect("admin token").trim().to_string();
    let base = format!("https://localhost:{port}");

    // A template whose output links to a script: the platform team's mistake, or a value gone wrong.
    let template = dir.path().join("templates/catalog-info.yaml");
    std::fs::create_dir_all(template.parent().expect("parent")).expect("dir");
    std::fs::write(&template, LINK_TEMPLATE).expect("template");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let registered = http
        .post(format!("{base}/api/catalog/locations"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"type": "file", "target": template.display().to_string()}))
        .send()
        .await
        .expect("hub answers over TLS");
    assert_eq!(registered.status(), 201, "{}", registered.text().await.unwrap_or_default());

    let (_chromedriver, driver_url) = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let driver = browser_with(&driver_url, profile.path(), &["--ignore-certificate-errors"]).await;
    let shots = screenshots();

    // Sign in with the form: a same-origin POST over HTTP/2, where browsers send no Host header.
    driver.goto(&format!("{base}/create/default/link-test")).await.expect("open");
    let token = wait_for(&driver, Locator::Id("token")).await;
    let protocol = driver.execute("return performance.getEntriesByType('navigation')[0].nextHopProtocol", vec![]).await.expect("protocol");
    assert_eq!(protocol, "h2", "the browser speaks HTTP/2 to the hub");
    token.send_keys(&admin).await.expect("type");
    token.send_keys(ENTER).await.expect("submit");
    wait_for_text(&driver, "#signed-in-as", "admin").await;

    // A form: the wizard starts a task.
    wait_for(&driver, Locator::Id("create")).await.click().await.expect("submit");
    wait_for_text(&driver, "#task-status", "completed").await;
    screenshot(&driver, &shots.join("task-links.png")).await;
    let links = wait_for_text(&driver, "#task-links", "Runbook").await;
    let anchors = links.find_all(Locator::Css("a")).await.expect("anchors");
    let mut targets = Vec::new();
    for anchor in &anchors {
        targets.push(anchor.attr("href").await.expect("href").unwrap_or_default());
    }
    assert_eq!(targets, ["https://docs.example.com/"], "the script is shown as text, never as a link");
    links.find(Locator::XPath(".//li[contains(., 'Runbook')]")).await.expect("runbook").click().await.expect("click");
    let pwned = driver.execute("return document.body.getAttribute('data-pwned')", vec![]).await.expect("script");
    assert_eq!(pwned, serde_json::Value::Null, "no script ran");

    // Even a script link on the page would not run: the Content Security Policy forbids it.
    driver
        .execute("var a = document.createElement('a'); a.id = 'planted'; a.href = \"javascript:document.body.setAttribute('data-pwned','yes')\"; a.textContent = 'x'; document.body.appendChild(a);", vec![])
        .await
        .expect("plant");
    driver.find(Locator::Id("planted")).await.expect("planted").click().await.expect("click");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pwned = driver.execute("return document.body.getAttribute('data-pwned')", vec![]).await.expect("script");
    assert_eq!(pwned, serde_json::Value::Null, "the policy blocks javascript: URLs");

    // Signing out is a form too, and ends the session.
    driver.find(Locator::Css("form.who button")).await.expect("sign out").click().await.expect("sign out");
    wait_for(&driver, Locator::Id("token")).await;
    driver.close().await.expect("quit");
}
