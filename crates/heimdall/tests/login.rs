//! Single sign-on as people use it: `heimdall up --config` with a real
//! OpenID provider (crates/testsupport/oidc), `heimdall login` by device
//! code and by browser, where the test plays the person in the browser
//! with plain HTTP requests, then roles, refreshing, logout and API tokens.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use heimdall_testsupport::oidc::Provider;
use serde_json::{Value, json};

mod common;

use common::{BIN, eventually, free_port, run, stdout};

/// A running heimdall process; killed on drop.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends every line of the child's stdout and stderr, tagged, to a channel.
fn lines_of(child: &mut Child) -> Receiver<(bool, String)> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let streams = [
        child.stdout.take().map(|s| (false, Box::new(s) as Box<dyn std::io::Read + Send>)),
        child.stderr.take().map(|s| (true, Box::new(s) as Box<dyn std::io::Read + Send>)),
    ];
    for (is_stderr, stream) in streams.into_iter().flatten() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send((is_stderr, line));
            }
        });
    }
    receiver
}

/// Waits (up to 60 s) for a line for which `pick` returns something; `seen` collects every line.
fn wait_for_line<T>(child: &mut Child, lines: &Receiver<(bool, String)>, seen: &mut Vec<String>, pick: impl Fn(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok((_, line)) => {
                let picked = pick(&line);
                seen.push(line);
                if let Some(value) = picked {
                    return value;
                }
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("heimdall exited with {status} too early:\n{}", seen.join("\n"));
                }
                assert!(Instant::now() < deadline, "no such line within 60s:\n{}", seen.join("\n"));
            }
        }
    }
}

fn spawn(args: &[&str], env: &[(&str, String)]) -> Child {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("HEIMDALL_HUB").env_remove("HEIMDALL_TOKEN").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("start heimdall")
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits for a login to finish and returns its stdout and stderr (the lines seen so far included).
fn finish(mut child: Child, lines: Receiver<(bool, String)>, mut seen: Vec<String>) -> (String, String) {
    let status = eventually("heimdall login exits", || child.try_wait().expect("wait"));
    let mut out = Vec::new();
    let mut err = seen.clone();
    // The reader threads end with the process; collect what they still hold.
    while let Ok((is_stderr, line)) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(line.clone());
        if is_stderr { err.push(line) } else { out.push(line) }
    }
    assert!(status.success(), "heimdall login failed ({status}):\n{}", seen.join("\n"));
    (out.join("\n"), err.join("\n"))
}

/// The person at the browser: a cookie jar and manual redirects, as the
/// provider's README describes each hop.
struct Browser {
    http: reqwest::Client,
    /// (origin, name, value, path)
    cookies: Vec<(String, String, String, String)>,
}

struct Page {
    url: reqwest::Url,
    status: u16,
    body: String,
}

fn origin(url: &reqwest::Url) -> String {
    format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or_default())
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Browser { http, cookies: Vec::new() }
    }

    fn cookie_header(&self, url: &reqwest::Url) -> String {
        let path = url.path();
        self.cookies
            .iter()
            .filter(|(o, _, _, p)| {
                *o == origin(url) && (path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))) || p == "/")
            })
            .map(|(_, name, value, _)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, url: &reqwest::Url, headers: &reqwest::header::HeaderMap) {
        for header in headers.get_all(reqwest::header::SET_COOKIE) {
            let text = header.to_str().expect("ascii cookie");
            let mut parts = text.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { continue };
            let mut path = "/".to_string();
            let mut gone = value.is_empty();
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.to_ascii_lowercase().as_str() {
                    "path" => path = val.to_string(),
                    "expires" if val.contains("1970") => gone = true,
                    "max-age" if val.starts_with('0') || val.starts_with('-') => gone = true,
                    _ => {}
                }
            }
            let origin = origin(url);
            self.cookies.retain(|(o, n, _, p)| !(*o == origin && n == name && *p == path));
            if !gone {
                self.cookies.push((origin, name.to_string(), value.to_string(), path));
            }
        }
    }

    /// GETs `url` (or POSTs `form` to it) and follows redirects; every one is a GET.
    async fn visit(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut url = reqwest::Url::parse(url).expect("url");
        let mut form = form;
        for _ in 0..10 {
            let request = match form.take() {
                Some(form) => self.http.post(url.clone()).form(form),
                None => self.http.get(url.clone()),
            };
            let response = request.header(reqwest::header::COOKIE, self.cookie_header(&url)).send().await.expect("browser request");
            self.remember(&url, response.headers());
            let status = response.status().as_u16();
            if response.status().is_redirection() {
                let location = response.headers()[reqwest::header::LOCATION].to_str().expect("location").to_string();
                // The first hop to the login form is relative.
                url = url.join(&location).expect("redirect url");
                continue;
            }
            return Page { url, status, body: response.text().await.expect("body") };
        }
        panic!("too many redirects");
    }
}

/// The value of `<input ... name="NAME" value="...">` in a page.
fn input(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no input {name} in {body}")) + marker.len();
    body[start..].split('"').next().expect("value").to_string()
}

/// The login form's action: `/interaction/UID/login`.
fn form_action(body: &str) -> String {
    let start = body.find("action=\"").unwrap_or_else(|| panic!("no form in {body}")) + "action=\"".len();
    body[start..].split('"').next().expect("action").to_string()
}

/// Signs in on the provider's login form shown at `page`.
async fn sign_in(browser: &mut Browser, issuer: &str, page: Page, user: &str) -> Page {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.url.path().starts_with("/interaction/"), "expected the login form, got {}: {}", page.url, page.body);
    let action = form_action(&page.body);
    browser.visit(&format!("{issuer}{action}"), Some(&[("login", user), ("password", user)])).await
}

/// Plays `user` through the device flow with the code `heimdall login` printed.
async fn enter_device_code(browser: &mut Browser, issuer: &str, verification_uri: &str, user_code: &str, user: &str) {
    let form = browser.visit(verification_uri, None).await;
    let xsrf = input(&form.body, "xsrf");
    let login = browser.visit(&format!("{issuer}/device"), Some(&[("xsrf", &xsrf), ("user_code", user_code), ("confirm", "yes")])).await;
    let done = sign_in(browser, issuer, login, user).await;
    assert!(done.body.contains("Sign-in Success"), "{}", done.body);
}

/// `heimdall login` (device flow) as `user`; returns its stdout and stderr.
fn device_login(
    runtime: &tokio::runtime::Runtime,
    provider: &Provider,
    args: &[&str],
    env: &[(&str, String)],
    user: &str,
) -> (String, String) {
    let mut env = env.to_vec();
    env.push(("HEIMDALL_LOGIN_POLL_INTERVAL_MS", "200".into()));
    let mut child = spawn(&[&["login"], args].concat(), &env);
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let (uri, code) = wait_for_line(&mut child, &lines, &mut seen, |line| {
        let rest = line.strip_prefix("To sign in, open ")?;
        let (uri, code) = rest.split_once(" and enter the code ")?;
        Some((uri.to_string(), code.to_string()))
    });
    runtime.block_on(enter_device_code(&mut Browser::new(), provider.issuer(), &uri, &code, user));
    finish(child, lines, seen)
}

fn write_app(path: &Path, namespace: &str, name: &str, image: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  components:\n    - name: {name}\n      type: worker\n      properties: {{image: {image}}}\n"
        ),
    )
    .expect("write app");
}

fn client_config(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("client config")).expect("yaml")
}

#[test]
fn people_sign_in_and_act_with_their_roles_and_tokens_serve_machines() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let user = |name: &str, group: &str| json!({"sub": name, "username": name, "password": name, "email": format!("{name}@example.test"), "name": name, "groups": [group]});
    let provider = Provider::start(json!({
        "users": [user("alice", "shop-engineers"), user("bob", "shop-viewers"), user("admin", "platform-admins")],
        // Shorter than the CLI's refresh margin plus a few seconds: a later command must refresh.
        "ttl": {"IdToken": 65},
    }));
    let issuer = provider.issuer().to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let hub_config = dir.path().join("hub.yaml");
    std::fs::write(
        &hub_config,
        format!(
            "oidc:\n  issuer: {issuer}\n  clientId: heimdall\n  clientSecret: heimdall-secret\n  cliClientId: heimdall-cli\n  platformAdminGroups: [platform-admins]\n"
        ),
    )
    .expect("hub config");
    let port = free_port();
    let hub_url = format!("http://127.0.0.1:{port}");
    let config_path = dir.path().join("client.yaml");
    let env = [("HEIMDALL_CONFIG", config_path.display().to_string())];
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{port}");
    let mut hub = Running {
        child: spawn(
            &["up", "--config", hub_config.to_str().expect("utf-8"), "--listen", &listen, "--data-dir", data.to_str().expect("utf-8")],
            &env,
        ),
    };
    let hub_lines = lines_of(&mut hub.child);
    let mut hub_seen = Vec::new();
    wait_for_line(&mut hub.child, &hub_lines, &mut hub_seen, |line| line.contains("Heimdall hub ready at").then_some(()));
    assert!(hub_seen.iter().any(|l| l.contains(&format!("Single sign-on with {issuer}"))), "{}", hub_seen.join("\n"));
    // Keep draining the hub's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in hub_lines {});
    let admin_token = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_string();
    let as_admin = [("HEIMDALL_CONFIG", config_path.display().to_string()), ("HEIMDALL_TOKEN", admin_token.clone())];
    stdout(&run(&["get", "tenants"], &as_admin));

    // alice signs in by device code; the hub comes from the current (`local`) context.
    let (out, err) = device_login(&runtime, &provider, &[], &env, "alice");
    assert!(out.contains(&format!("Logged in to {hub_url} as alice")), "{out}");
    assert!(out.contains("tenants: shop (developer)"), "{out}");
    assert!(err.contains(&format!("Or open {issuer}/device?user_code=")), "{err}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&config_path).expect("config").permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&config_path).expect("config");
    assert!(!text.contains("heimdall-secret"), "the client secret stays on the hub: {text}");
    let config = client_config(&config_path);
    let context = format!("127.0.0.1-{port}");
    assert_eq!(config["currentContext"], context.as_str(), "{text}");
    assert!(config["contexts"]["local"]["tokenFile"].is_string(), "the admin context is kept: {text}");
    let session = &config["contexts"][context.as_str()]["oidc"];
    assert_eq!(session["issuer"], issuer.as_str());
    assert_eq!(session["clientId"], "heimdall-cli");
    assert!(config["contexts"][context.as_str()].get("token").is_none());
    let first_id_token = session["idToken"].as_str().expect("id token").to_string();
    let first_refresh_token = session["refreshToken"].as_str().expect("refresh token").to_string();
    let first_expiry = session["expiresAt"].as_i64().expect("expiry");
    assert!(!out.contains(&first_id_token) && !err.contains(&first_id_token), "tokens are never printed");

    let me = stdout(&run(&["whoami"], &env));
    assert!(me.contains("name: alice") && me.contains("shop (developer)") && me.contains("groups: shop-engineers"), "{me}");

    // As a developer of shop, alice changes shop's applications and rolls them back.
    let web = dir.path().join("web.yaml");
    write_app(&web, "shop", "web", "registry.example.com/shop/web:1");
    let applied = stdout(&run(&["apply", "-f", web.to_str().expect("utf-8")], &env));
    assert!(applied.contains("application/shop/web created"), "{applied}");
    write_app(&web, "shop", "web", "registry.example.com/shop/web:2");
    stdout(&run(&["apply", "-f", web.to_str().expect("utf-8")], &env));
    let history: Value = serde_json::from_str(&stdout(&run(&["history", "application", "shop/web", "-o", "json"], &env))).expect("json");
    let by_alice: Vec<i64> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["actor"] == "alice")
        .map(|r| r["revision"].as_i64().expect("revision"))
        .collect();
    assert_eq!(by_alice.len(), 2, "the audit trail names the person: {history}");
    let first = by_alice.iter().min().expect("first").to_string();
    let rolled = stdout(&run(&["rollback", "application", "shop/web", "--to", &first], &env));
    assert!(rolled.contains(&format!("rolled back to {first}")), "{rolled}");
    let app: Value = serde_json::from_str(&stdout(&run(&["get", "app", "shop/web", "-o", "json"], &env))).expect("json");
    assert_eq!(app["spec"]["components"][0]["properties"]["image"], "registry.example.com/shop/web:1");

    // payments is not alice's.
    let settle = dir.path().join("settle.yaml");
    write_app(&settle, "payments", "settle", "registry.example.com/payments/settle:1");
    let denied = refused(&run(&["apply", "-f", settle.to_str().expect("utf-8")], &env));
    assert!(denied.contains("missing permission applications:write in tenant payments"), "{denied}");
    let denied = refused(&run(&["token", "create", "mine", "--role", "viewer", "--tenant", "shop"], &env));
    assert!(denied.contains("tokens:create in tenant shop (needs owner or more)"), "{denied}");

    // The ID token lives 65 s and is refreshed within 60 s of its end: a later command refreshes it.
    let refreshed = eventually("a command refreshes the ID token", || {
        let me = stdout(&run(&["whoami"], &env));
        assert!(me.contains("name: alice"), "{me}");
        let config = client_config(&config_path);
        let session = config["contexts"][context.as_str()]["oidc"].clone();
        (session["idToken"] != first_id_token.as_str()).then_some(session)
    });
    assert_ne!(refreshed["refreshToken"], first_refresh_token.as_str(), "the rotated refresh token is kept");
    assert!(refreshed["expiresAt"].as_i64().expect("expiry") > first_expiry);
    let apps = stdout(&run(&["get", "applications", "-n", "shop"], &env));
    assert!(apps.contains("web"), "{apps}");

    // bob signs in with a browser, into his own client config.
    let bob_config = dir.path().join("bob.yaml");
    let bob_env = [("HEIMDALL_CONFIG", bob_config.display().to_string())];
    let mut child = spawn(&["login", "--browser", "--no-open", "--hub", &hub_url, "--context", "bob"], &bob_env);
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let url = wait_for_line(&mut child, &lines, &mut seen, |line| line.strip_prefix("Open this URL to sign in: ").map(String::from));
    let callback = runtime.block_on(async {
        let mut browser = Browser::new();
        let form = browser.visit(&url, None).await;
        sign_in(&mut browser, &issuer, form, "bob").await
    });
    assert_eq!(callback.url.host_str(), Some("127.0.0.1"));
    assert_eq!(callback.url.path(), "/callback", "the last hop is the CLI's loopback redirect");
    assert!(callback.body.contains("Signed in to Heimdall; you can close this tab"), "{}", callback.body);
    let (out, _) = finish(child, lines, seen);
    assert!(out.contains(&format!("Logged in to {hub_url} as bob")) && out.contains("tenants: shop (viewer)"), "{out}");
    assert_eq!(client_config(&bob_config)["currentContext"], "bob");
    let apps = stdout(&run(&["get", "applications", "-n", "shop"], &bob_env));
    assert!(apps.contains("web"), "a viewer reads: {apps}");
    let denied = refused(&run(&["apply", "-f", web.to_str().expect("utf-8")], &bob_env));
    assert!(denied.contains("missing permission applications:write in tenant shop (needs developer or more)"), "{denied}");

    // Logging out forgets the session and revokes it at the provider.
    let bob_refresh = client_config(&bob_config)["contexts"]["bob"]["oidc"]["refreshToken"].as_str().expect("refresh").to_string();
    let out = stdout(&run(&["logout"], &bob_env));
    assert!(out.contains("Logged out of"), "{out}");
    assert!(client_config(&bob_config)["contexts"]["bob"].get("oidc").is_none());
    let after = refused(&run(&["get", "applications", "-n", "shop"], &bob_env));
    assert!(after.contains("missing credentials"), "{after}");
    let (status, answer) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{issuer}/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", bob_refresh.as_str()), ("client_id", "heimdall-cli")])
            .send()
            .await
            .expect("token endpoint");
        (response.status().as_u16(), response.json::<Value>().await.expect("json"))
    });
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "the refresh token is revoked: {answer}");

    // An expired session whose refresh is refused asks for a new login, without printing the token.
    let stale_config = dir.path().join("stale.yaml");
    std::fs::write(
        &stale_config,
        format!(
            "currentContext: old\ncontexts:\n  old:\n    hub: {hub_url}\n    oidc: {{issuer: '{issuer}', clientId: heimdall-cli, tokenEndpoint: '{issuer}/token', idToken: a.b.c, refreshToken: {bob_refresh}, expiresAt: 1}}\n"
        ),
    )
    .expect("stale config");
    let expired = refused(&run(&["get", "applications", "-n", "shop"], &[("HEIMDALL_CONFIG", stale_config.display().to_string())]));
    assert!(expired.contains("your session expired: run heimdall login") && expired.contains("invalid_grant"), "{expired}");
    assert!(!expired.contains(&bob_refresh), "{expired}");

    // Members of the platform-admin groups are platform admins.
    let admin_config = dir.path().join("admin.yaml");
    let admin_env = [("HEIMDALL_CONFIG", admin_config.display().to_string())];
    let (out, _) = device_login(&runtime, &provider, &["--hub", &hub_url], &admin_env, "admin");
    assert!(out.contains("as admin") && out.contains("platform admin"), "{out}");

    // API tokens: created once by an admin (here the admin token), used by CI, listed, revoked.
    let created = run(&["token", "create", "ci", "--role", "developer", "--tenant", "shop", "--ttl", "1d"], &as_admin);
    let token = stdout(&created).trim().to_string();
    assert!(token.starts_with("hdl_") && !token.contains('\n'), "only the token is on stdout: {token}");
    let note = String::from_utf8_lossy(&created.stderr);
    assert!(note.contains("tenant:shop:developer") && note.contains("shown once; store it now"), "{note}");
    let as_ci = [
        ("HEIMDALL_CONFIG", dir.path().join("ci.yaml").display().to_string()),
        ("HEIMDALL_HUB", hub_url.clone()),
        ("HEIMDALL_TOKEN", token),
    ];
    let ci_app = dir.path().join("from-ci.yaml");
    write_app(&ci_app, "shop", "from-ci", "registry.example.com/shop/ci:1");
    let applied = stdout(&run(&["apply", "-f", ci_app.to_str().expect("utf-8")], &as_ci));
    assert!(applied.contains("application/shop/from-ci created"), "{applied}");
    let listed = stdout(&run(&["token", "list"], &as_admin));
    assert!(listed.starts_with("NAME") && listed.contains("LAST USED"), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("ci ") && l.contains("tenant:shop:developer")), "{listed}");
    let revoked = stdout(&run(&["token", "revoke", "ci"], &as_admin));
    assert!(revoked.contains("token ci"), "{revoked}");
    let after = refused(&run(&["get", "applications", "-n", "shop"], &as_ci));
    assert!(after.contains("invalid or expired token"), "a revoked token gets 401: {after}");
}

#[test]
fn login_explains_a_hub_without_single_sign_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let env = [("HEIMDALL_CONFIG", dir.path().join("client.yaml").display().to_string())];
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let mut hub =
        Running { child: spawn(&["up", "--no-examples", "--listen", &listen, "--data-dir", data.to_str().expect("utf-8")], &env) };
    let lines = lines_of(&mut hub.child);
    wait_for_line(&mut hub.child, &lines, &mut Vec::new(), |line| line.contains("Heimdall hub ready at").then_some(()));
    std::thread::spawn(move || for _ in lines {});
    let err = refused(&run(&["login"], &env));
    assert!(err.contains("this hub has no single sign-on; use its admin token or an API token (heimdall token create)"), "{err}");
    let me = stdout(&run(&["whoami"], &env));
    assert!(me.contains("name: admin") && me.contains("platform admin"), "{me}");
}
