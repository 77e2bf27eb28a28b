//! The portal in a real browser: Debian's headless Chromium driven through
//! chromedriver (WebDriver, with thirtyfour) against `heimdall up`, with a
//! real agent reporting from a spoke (the fake API server). Sign in, search,
//! open an entity and see its deployments' health, create a service
//! through the template wizard and watch its log, set a secret. Screenshots
//! of the main pages go to `target/tmp/portal-screenshots/` (CI artifacts).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, free_port, run, start, stdout, up};
use thirtyfour::prelude::*;
use thirtyfour::{ChromiumLikeCapabilities, DesiredCapabilities};

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

async fn browser(driver_url: &str, profile: &Path) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).expect("binary");
    // As the machine's notes say: without the background-networking flags Chromium keeps calling out and is refused.
    for arg in [
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
        &format!("--user-data-dir={}", profile.display()),
    ] {
        caps.add_arg(arg).expect("arg");
    }
    WebDriver::new(driver_url, caps).await.expect("a Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn wait_for(driver: &WebDriver, by: By) -> WebElement {
    driver.query(by).wait(Duration::from_secs(30), Duration::from_millis(100)).first().await.expect("element appears")
}

async fn wait_for_text(driver: &WebDriver, css: &str, text: &str) -> WebElement {
    wait_for_match(driver, css, thirtyfour::stringmatch::StringMatch::new(text).partial()).await
}

async fn wait_for_match(driver: &WebDriver, css: &str, text: thirtyfour::stringmatch::StringMatch) -> WebElement {
    let query = driver.query(By::Css(css)).with_text(text.clone()).wait(Duration::from_secs(60), Duration::from_millis(200));
    query.first().await.unwrap_or_else(|e| panic!("{css} with {text:?}: {e}"))
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
    let _agent = start(&agent_args, &[], "agent running", port);

    let (_chromedriver, driver_url) = chromedriver();
    let profile = tempfile::tempdir().expect("profile");
    let driver = browser(&driver_url, profile.path()).await;
    let shots = screenshots();
    let base = format!("http://127.0.0.1:{port}");

    // Sign in: a page of the portal sends you to the sign-in page and back.
    driver.goto(format!("{base}/catalog")).await.expect("open");
    let token = wait_for(&driver, By::Id("token")).await;
    driver.screenshot(&shots.join("sign-in.png")).await.expect("screenshot");
    token.send_keys("hdl_wrong").await.expect("type");
    token.send_keys(Key::Enter).await.expect("submit");
    wait_for_text(&driver, ".error", "invalid or expired token").await;
    let token = wait_for(&driver, By::Id("token")).await;
    token.send_keys(&admin).await.expect("type");
    token.send_keys(Key::Enter).await.expect("submit");
    wait_for_text(&driver, "#signed-in-as", "admin").await;
    assert!(driver.current_url().await.expect("url").path().starts_with("/catalog"), "back where sign-in began");
    wait_for_text(&driver, "#total", "entities").await;
    driver.screenshot(&shots.join("catalog.png")).await.expect("screenshot");

    // Search as you type (htmx), then a facet.
    let search = driver.find(By::Id("q")).await.expect("search box");
    search.send_keys("storefront").await.expect("type");
    // The component, and the shop group whose description names the storefront.
    wait_for_match(&driver, "#total", thirtyfour::stringmatch::StringMatch::new("2 entities")).await;
    let results = driver.find(By::Id("results")).await.expect("results").text().await.expect("text");
    assert!(results.contains("storefront") && !results.contains("landing") && !results.contains("payments-api"), "{results}");
    driver.find(By::Css("input[name='kind'][value='Component']")).await.expect("kind facet").click().await.expect("filter");
    wait_for_match(&driver, "#total", thirtyfour::stringmatch::StringMatch::new("1 entity")).await;
    assert!(driver.current_url().await.expect("url").query().unwrap_or_default().contains("kind=Component"), "the filter is in the URL");

    // The entity page: about, relations, and its deployments with the agent's health.
    driver.find(By::LinkText("storefront")).await.expect("result link").click().await.expect("open entity");
    wait_for_text(&driver, "h1", "storefront").await;
    let health = wait_for_deployment_health(&driver, &format!("{base}/catalog/shop/component/storefront"), "spoke-1").await;
    assert!(!health.is_empty(), "the spoke's agent reported health");
    let relations = driver.find(By::Css("ul.relations")).await.expect("relations").text().await.expect("text");
    assert!(relations.contains("ownedBy group:default/shop"), "{relations}");
    assert!(driver.find(By::Css("svg.graph")).await.is_ok(), "the relations graph is drawn");
    driver.screenshot(&shots.join("entity.png")).await.expect("screenshot");

    // Create a service through the template wizard and watch its log.
    driver.goto(format!("{base}/create")).await.expect("open create");
    driver.screenshot(&shots.join("templates.png")).await.expect("screenshot");
    driver.find(By::LinkText("Node.js HTTP service")).await.expect("template card").click().await.expect("choose");
    let name = wait_for(&driver, By::Id("f-name")).await;
    name.send_keys("wishlist").await.expect("type");
    driver.find(By::Css("#f-owner option[value='shop']")).await.expect("shop as owner").click().await.expect("select");
    driver.screenshot(&shots.join("wizard.png")).await.expect("screenshot");
    driver.find(By::Id("create")).await.expect("create button").click().await.expect("submit");
    wait_for_text(&driver, "#task-status", "completed").await;
    let log = driver.find(By::Css("ol.log")).await.expect("log").text().await.expect("text");
    assert!(log.contains("Create the repository (publish:heimdall)") && log.contains("Deploy to dev (heimdall:apply)"), "{log}");
    driver.screenshot(&shots.join("task.png")).await.expect("screenshot");
    driver.find(By::LinkText("Open in catalog")).await.expect("catalog link").click().await.expect("open");
    wait_for_text(&driver, "h1", "wishlist").await;
    let deployments = wait_for(&driver, By::Css("#deployments-section table")).await.text().await.expect("text");
    assert!(deployments.contains("dev") && !deployments.contains("prod"), "the new service runs in dev only: {deployments}");

    // Set a secret: the value goes in, never comes back.
    driver.goto(format!("{base}/tenants/shop")).await.expect("open tenant");
    wait_for(&driver, By::Id("secret-form")).await;
    driver.find(By::Id("secret")).await.expect("secret").send_keys("wishlist-db").await.expect("type");
    driver.find(By::Id("key")).await.expect("key").send_keys("password").await.expect("type");
    driver.find(By::Id("value")).await.expect("value").send_keys("s3cr3t-value-xyz").await.expect("type");
    driver.find(By::Css("#secret-form button")).await.expect("set").click().await.expect("submit");
    wait_for_text(&driver, ".notice", "Set shop/wishlist-db key password (version 1)").await;
    let table = driver.find(By::Css("table.secrets")).await.expect("secrets").text().await.expect("text");
    assert!(table.contains("wishlist-db") && table.contains("password"), "{table}");
    assert!(!driver.source().await.expect("source").contains("s3cr3t-value-xyz"), "the value is never shown");
    driver.screenshot(&shots.join("tenant.png")).await.expect("screenshot");

    driver.goto(format!("{base}/clusters")).await.expect("open clusters");
    wait_for_text(&driver, "#spoke-1", "Connected").await;
    driver.screenshot(&shots.join("clusters.png")).await.expect("screenshot");
    driver.goto(format!("{base}/audit?kind=Application")).await.expect("open audit");
    wait_for_text(&driver, "table.audit", "wishlist").await;
    driver.screenshot(&shots.join("audit.png")).await.expect("screenshot");

    // Signing out ends the session.
    driver.find(By::Css("form.who button")).await.expect("sign out").click().await.expect("sign out");
    wait_for(&driver, By::Id("token")).await;
    driver.goto(format!("{base}/tenants/shop")).await.expect("open");
    wait_for(&driver, By::Id("token")).await;
    driver.quit().await.expect("quit");
}

/// Reloads the entity page until the cluster's row shows a health; returns it.
async fn wait_for_deployment_health(driver: &WebDriver, url: &str, cluster: &str) -> String {
    for _ in 0..150 {
        driver.goto(url).await.expect("reload");
        if let Ok(cell) = driver.find(By::Css(format!("tr[data-cluster='{cluster}'] [data-health]"))).await {
            let health = cell.attr("data-health").await.expect("attr").unwrap_or_default();
            if !health.is_empty() {
                return health;
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    panic!("no health for {cluster} on {url}: {}", driver.source().await.unwrap_or_default());
}
