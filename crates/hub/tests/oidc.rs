//! Single sign-on against a real OpenID provider (npm's oidc-provider, run
//! by node): the portal's authorization code flow with PKCE, bearer tokens
//! good and bad, and signing-key rotation.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestHub;
use heimdall_hub::oidc::{Oidc, OidcConfig, OidcError};
use heimdall_testsupport::oidc::Provider;
use serde_json::{Value, json};
use tower::ServiceExt;

const PUBLIC_URL: &str = "http://heimdall.test";

fn users() -> Value {
    json!([
        {"sub": "alice", "username": "alice", "password": "alice", "email": "alice@example.com", "name": "Alice", "groups": ["shop-engineers"]},
        {"sub": "carol", "username": "carol", "password": "carol", "email": "carol@example.com", "name": "Carol", "groups": ["payments-engineers"]},
    ])
}

fn provider() -> Provider {
    Provider::start(json!({"heimdall": {"redirect_uris": [format!("{PUBLIC_URL}/auth/callback")]}, "users": users()}))
}

fn config(provider: &Provider, jwks_refresh_seconds: u64) -> OidcConfig {
    serde_json::from_value(json!({
        "issuer": provider.issuer(),
        "clientId": "heimdall",
        "clientSecret": "heimdall-secret",
        "cliClientId": "heimdall-cli",
        "platformAdminGroups": ["platform-admins"],
        "jwksRefreshSeconds": jwks_refresh_seconds,
    }))
    .expect("config")
}

async fn hub_with_sso(provider: &Provider) -> TestHub {
    let config = config(provider, 0);
    TestHub::with_example_platform().await.with_state(|state| {
        state.oidc = Some(Arc::new(Oidc::new(config)));
        state.public_url = PUBLIC_URL.into();
    })
}

/// A browser's cookie jar, good enough for one host each.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            let Some((pair, _)) = value.to_str().unwrap_or_default().split_once(';').or(Some((value.to_str().unwrap_or_default(), "")))
            else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                self.0.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

struct HubResponse {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    body: Value,
}

async fn hub_request(hub: &TestHub, method: &str, uri: &str, cookie: &str, origin: Option<&str>) -> HubResponse {
    let mut request = Request::builder().method(method).uri(uri).header(header::HOST, "heimdall.test");
    if !cookie.is_empty() {
        request = request.header(header::COOKIE, cookie);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin).header(header::CONTENT_TYPE, "application/yaml");
    }
    let response = hub.router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("response");
    let status = response.status();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let cookies = response.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    HubResponse { status, location, cookies, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| c.split(';').next()?.strip_prefix(&format!("{name}=")).map(String::from))
}

/// Plays the person at the provider: from the authorization URL to the
/// redirect back to the hub, logging in as `user`.
async fn sign_in_at_provider(provider: &Provider, authorize: &str, user: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut jar = Jar::default();
    let absolute =
        |location: &str| if location.starts_with('/') { format!("{}{location}", provider.issuer()) } else { location.to_string() };
    let mut url = authorize.to_string();
    let mut logged_in = false;
    for _ in 0..10 {
        if url.starts_with(PUBLIC_URL) {
            return url;
        }
        let response = if url.contains("/interaction/") && !logged_in {
            // The login form first, then post to it.
            let page = http.get(&url).header("cookie", jar.header()).send().await.expect("login page");
            jar.take(page.headers());
            let form = page.text().await.expect("form");
            assert!(form.contains("name=\"login\""), "a login form");
            logged_in = true;
            http.post(format!("{url}/login"))
                .header("cookie", jar.header())
                .form(&[("login", user), ("password", user)])
                .send()
                .await
                .expect("login")
        } else {
            http.get(&url).header("cookie", jar.header()).send().await.expect("redirect")
        };
        jar.take(response.headers());
        assert!(response.status().is_redirection(), "{url} answered {}", response.status());
        url = absolute(response.headers()["location"].to_str().expect("location"));
    }
    panic!("the provider never sent the browser back to the hub");
}

#[tokio::test]
async fn the_portal_signs_in_with_code_flow_and_pkce_and_signs_out() {
    let provider = provider();
    let hub = hub_with_sso(&provider).await;

    let login = hub_request(&hub, "GET", "/auth/login?returnTo=/apps/shop", "", None).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert!(login.location.starts_with(provider.issuer()), "to the provider: {}", login.location);
    for parameter in ["code_challenge=", "code_challenge_method=S256", "nonce=", "state=", "client_id=heimdall"] {
        assert!(login.location.contains(parameter), "{parameter} in {}", login.location);
    }
    let login_cookie = cookie_value(&login.cookies, "heimdall_login").expect("the flow is bound to this browser");
    assert!(login.cookies[0].contains("HttpOnly") && login.cookies[0].contains("SameSite=Lax"));

    let callback = sign_in_at_provider(&provider, &login.location, "alice").await;
    let path = callback.strip_prefix(PUBLIC_URL).expect("the hub's callback");
    let elsewhere = hub_request(&hub, "GET", path, "heimdall_login=someone-else", None).await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED, "a callback from another browser is refused");
    let done = hub_request(&hub, "GET", path, &format!("heimdall_login={login_cookie}"), None).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{:?}", done.body);
    assert_eq!(done.location, "/apps/shop");
    let session = cookie_value(&done.cookies, "heimdall_session").expect("a session cookie");
    let session_cookie = done.cookies.iter().find(|c| c.starts_with("heimdall_session=")).expect("cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax") && !session_cookie.contains("Secure"));
    let again = hub_request(&hub, "GET", path, &format!("heimdall_login={login_cookie}"), None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a sign-in is used once");

    let cookie = format!("heimdall_session={session}");
    let me = hub_request(&hub, "GET", "/api/v1/auth/whoami", &cookie, None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["tenants"], json!({"shop": "owner"}), "owner by email beats developer by group");
    let user = hub.get("/api/v1/users/alice").await.1;
    assert_eq!(user["spec"]["memberOf"], json!(["shop-engineers"]), "who signed in is recorded: {user}");
    assert_eq!(hub.get("/api/v1/groups/shop-engineers").await.0, StatusCode::OK);

    let cross_site = hub_request(&hub, "POST", "/api/v1/apply", &cookie, Some("http://evil.example")).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN, "a cookie-borne change from another site is refused");

    let forced_out = hub_request(&hub, "POST", "/auth/logout", &cookie, Some("http://evil.example")).await;
    assert_eq!(forced_out.status, StatusCode::FORBIDDEN, "another site cannot sign you out");
    let out = hub_request(&hub, "POST", "/auth/logout", &cookie, Some("http://heimdall.test")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.cookies.iter().any(|c| c.starts_with("heimdall_session=;") && c.contains("Max-Age=0")));
    assert_eq!(hub_request(&hub, "GET", "/api/v1/auth/whoami", &cookie, None).await.status, StatusCode::UNAUTHORIZED);
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn claims(provider: &Provider, change: Value) -> Value {
    let mut claims = json!({
        "iss": provider.issuer(), "aud": "heimdall-cli", "sub": "carol", "preferred_username": "carol",
        "groups": ["payments-engineers"], "iat": now(), "exp": now() + 300,
    });
    if let (Some(claims), Some(change)) = (claims.as_object_mut(), change.as_object()) {
        for (key, value) in change {
            if value.is_null() {
                claims.remove(key);
            } else {
                claims.insert(key.clone(), value.clone());
            }
        }
    }
    claims
}

async fn whoami(hub: &TestHub, token: &str) -> (StatusCode, Value) {
    hub.call_with("GET", "/api/v1/auth/whoami", "", Body::empty(), Some(token)).await
}

#[tokio::test]
async fn bearer_tokens_are_verified_against_the_issuers_keys() {
    let provider = provider();
    let hub = hub_with_sso(&provider).await;

    let good = provider.mint(claims(&provider, json!({})), json!({})).await;
    let (status, me) = whoami(&hub, &good).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!((me["name"].as_str(), &me["tenants"]), (Some("carol"), &json!({"payments": "developer"})));
    let (status, _) = hub.call_with("GET", "/api/v1/namespaces/shop/applications", "", Body::empty(), Some(&good)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "carol is not in shop");
    let claimed = json!({"sub": "mallory", "preferred_username": "mallory", "email": "alice@example.com", "groups": []});
    let unverified = provider.mint(claims(&provider, claimed.clone()), json!({})).await;
    assert_eq!(whoami(&hub, &unverified).await.1["tenants"], json!({}), "an unverified email grants nothing");
    let mut verified = claimed;
    verified["email_verified"] = json!(true);
    let verified = provider.mint(claims(&provider, verified), json!({})).await;
    assert_eq!(whoami(&hub, &verified).await.1["tenants"], json!({"shop": "owner"}), "a verified one matches the member");
    let skewed = provider.mint(claims(&provider, json!({"exp": now() - 20})), json!({})).await;
    assert_eq!(whoami(&hub, &skewed).await.0, StatusCode::OK, "a little clock skew is allowed");

    let refused = [
        ("expired", claims(&provider, json!({"exp": now() - 600})), json!({})),
        ("not yet valid", claims(&provider, json!({"nbf": now() + 600})), json!({})),
        ("wrong audience", claims(&provider, json!({"aud": "someone-else"})), json!({})),
        ("wrong issuer", claims(&provider, json!({"iss": "http://127.0.0.1:1/evil"})), json!({})),
        ("no expiry", claims(&provider, json!({"exp": null})), json!({})),
        ("forged with another key", claims(&provider, json!({})), json!({"key": "unknown"})),
        ("unsigned (alg none)", claims(&provider, json!({})), json!({"alg": "none"})),
        ("HMAC", claims(&provider, json!({})), json!({"header": {"alg": "HS256"}})),
    ];
    for (what, claims, options) in refused {
        let token = provider.mint(claims, options).await;
        let (status, body) = whoami(&hub, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    }
    let (status, _) = whoami(&hub, "not.a.jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_refreshes_are_rate_limited() {
    let provider = provider();
    let hub = hub_with_sso(&provider).await;
    let before = provider.mint(claims(&provider, json!({})), json!({})).await;
    assert_eq!(whoami(&hub, &before).await.0, StatusCode::OK);
    provider.rotate().await;
    let after = provider.mint(claims(&provider, json!({})), json!({})).await;
    assert_eq!(whoami(&hub, &after).await.0, StatusCode::OK, "an unknown kid refreshes the keys");
    assert_eq!(whoami(&hub, &before).await.0, StatusCode::OK, "the old key is still published");

    // With a refresh interval, an unknown kid right after a refresh waits.
    let limited = Oidc::new(config(&provider, 3600));
    let current = provider.mint(claims(&provider, json!({})), json!({})).await;
    assert!(limited.verify(&current).await.is_ok());
    provider.rotate().await;
    let newest = provider.mint(claims(&provider, json!({})), json!({})).await;
    assert!(matches!(limited.verify(&newest).await, Err(OidcError::UnknownKey(_))), "no refresh within the interval");
}

#[tokio::test]
async fn without_an_identity_provider_sign_in_is_not_offered() {
    let hub = TestHub::new().await;
    let (status, config) = hub.call_with("GET", "/api/v1/auth/config", "", Body::empty(), None).await;
    assert_eq!((status, &config["oidc"]), (StatusCode::OK, &Value::Null));
    let (status, _) = hub.call_with("GET", "/auth/login", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub.call_with("GET", "/api/v1/auth/whoami", "", Body::empty(), Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "JWTs mean nothing without a provider");
}
