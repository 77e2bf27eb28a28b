//! The portal's pages on the router: sign-in with a token, what each
//! principal may see (the API's own checks), the live-search partial, the
//! wizard refusing bad values, and secret values never shown.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestHub;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    body: String,
}

/// Sends a request as a browser on the hub's own page would: signed in with
/// `token` (a portal session started by posting it to `/sign-in`), and with
/// the hub's own `Origin` unless `extra` names another.
async fn send(hub: &TestHub, method: &str, uri: &str, token: Option<&str>, form: Option<&str>, extra: &[(&str, &str)]) -> Page {
    let session = match token {
        Some(token) => Some(session(hub, token).await),
        None => None,
    };
    send_raw(hub, method, uri, session.as_deref(), form, extra).await
}

/// A portal session for `token`: the value of its `heimdall_session` cookie.
async fn session(hub: &TestHub, token: &str) -> String {
    let form = format!("token={token}&returnTo=/");
    let signed_in = send_raw(hub, "POST", "/sign-in", None, Some(&form), &[]).await;
    let cookie = signed_in
        .cookies
        .iter()
        .find(|c| c.starts_with("heimdall_session="))
        .unwrap_or_else(|| panic!("no session: {:?}", signed_in.location));
    cookie.trim_start_matches("heimdall_session=").split(';').next().expect("value").to_string()
}

async fn send_raw(hub: &TestHub, method: &str, uri: &str, session: Option<&str>, form: Option<&str>, extra: &[(&str, &str)]) -> Page {
    let mut request = Request::builder().method(method).uri(uri).header(header::HOST, "hub.example");
    if let Some(session) = session {
        request = request.header(header::COOKIE, format!("heimdall_session={session}"));
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    if method != "GET" && !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("origin")) {
        request = request.header(header::ORIGIN, "http://hub.example");
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let body = form.map_or_else(Body::empty, |f| Body::from(f.to_string()));
    let response = hub.router.clone().oneshot(request.body(body).expect("request")).await.expect("response");
    let status = response.status();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let cookies = response.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    Page { status, location, cookies, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(hub: &TestHub, uri: &str, token: &str) -> Page {
    send(hub, "GET", uri, Some(token), None, &[]).await
}

async fn hub() -> TestHub {
    let hub = TestHub::with_example_organization().await;
    heimdall_hub::catalog::sync_all(&hub.state).await.expect("catalog");
    hub
}

#[tokio::test]
async fn pages_need_a_sign_in_and_a_token_signs_in() {
    let hub = hub().await;
    let page = send(&hub, "GET", "/tenants/shop", None, None, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/sign-in?returnTo=/tenants/shop");
    let sign_in = send(&hub, "GET", "/sign-in?returnTo=/tenants/shop", None, None, &[]).await;
    assert!(sign_in.body.contains(r#"name="returnTo" value="/tenants/shop""#), "{}", sign_in.body);

    let wrong = send(&hub, "POST", "/sign-in", None, Some("token=hdl_nope&returnTo=/tenants/shop"), &[]).await;
    assert!(wrong.location.starts_with("/sign-in?") && wrong.location.contains("invalid"), "{}", wrong.location);
    assert!(wrong.cookies.is_empty());
    let elsewhere = send(&hub, "POST", "/sign-in", None, Some("token=x&returnTo=https://evil.example/"), &[]).await;
    assert!(elsewhere.location.contains("returnTo=/&"), "never redirected off the hub: {}", elsewhere.location);

    let form = format!("token={}&returnTo=/tenants/shop", hub.token);
    let cross_site = send(&hub, "POST", "/sign-in", None, Some(&form), &[("origin", "https://evil.example")]).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN, "a sign-in form posted from another site is refused");
    let signed_in = send(&hub, "POST", "/sign-in", None, Some(&form), &[("origin", "http://hub.example")]).await;
    assert_eq!((signed_in.status, signed_in.location.as_str()), (StatusCode::SEE_OTHER, "/tenants/shop"));
    let cookie = signed_in.cookies.first().expect("cookie");
    assert!(cookie.starts_with("heimdall_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains(&hub.token) && !cookie.contains("hdl_"), "the cookie holds a session id, never the token: {cookie}");
    let id = cookie.trim_start_matches("heimdall_session=").split(';').next().expect("value").to_string();

    let page = send_raw(&hub, "GET", "/tenants/shop", Some(&id), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Shop team") && page.body.contains("alice@example.com"), "members are shown");
    // The same session works for the API.
    let api = send_raw(&hub, "GET", "/api/v1/namespaces/shop/applications", Some(&id), None, &[]).await;
    assert_eq!(api.status, StatusCode::OK);
    let cross_site_out = send_raw(&hub, "POST", "/sign-out", Some(&id), None, &[("origin", "https://evil.example")]).await;
    assert_eq!(cross_site_out.status, StatusCode::FORBIDDEN, "another site cannot sign you out");
    let out = send_raw(&hub, "POST", "/sign-out", Some(&id), None, &[]).await;
    assert!(out.cookies.iter().any(|c| c.starts_with("heimdall_session=;") && c.contains("Max-Age=0")), "{:?}", out.cookies);
    let after = send_raw(&hub, "GET", "/api/v1/namespaces/shop/applications", Some(&id), None, &[]).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "signing out ends the session on the hub, not only in the browser");
    let old_cookie = send_raw(&hub, "GET", "/tenants/shop", None, None, &[("cookie", &format!("heimdall_token={}", hub.token))]).await;
    assert_eq!(old_cookie.status, StatusCode::SEE_OTHER, "a raw token in a cookie is no credential");
}

#[tokio::test]
async fn what_the_api_would_refuse_the_portal_does_not_show() {
    let hub = hub().await;
    let payments = hub.token_for("tenant:payments:viewer").await;

    let audit = get(&hub, "/audit", &payments).await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);
    assert!(audit.body.contains("audit:read"), "the page names the missing permission");
    assert!(!get(&hub, "/", &payments).await.body.contains(r#"href="/audit""#), "no Audit in the bar for non-admins");

    let tenants = get(&hub, "/tenants", &payments).await.body;
    assert!(tenants.contains("/tenants/payments") && !tenants.contains("/tenants/shop"), "{tenants}");
    assert_eq!(get(&hub, "/tenants/shop", &payments).await.status, StatusCode::FORBIDDEN);

    // The catalog is everyone's; another tenant's deployments are not.
    let entity = get(&hub, "/catalog/shop/component/storefront", &payments).await;
    assert_eq!(entity.status, StatusCode::OK);
    assert!(entity.body.contains("You have no role in tenant shop") && !entity.body.contains("deployments-section"), "{}", entity.body);
    let own = get(&hub, "/catalog/payments/component/settlement", &payments).await.body;
    assert!(own.contains("deployments-section") && own.contains("dev-eu-1"), "{own}");
    assert!(!own.contains("Roll back to"), "a viewer cannot roll back");

    // A viewer sees secrets' names, not the form; a post is refused as the API would.
    let page = get(&hub, "/tenants/payments", &payments).await.body;
    assert!(!page.contains("secret-form"), "no form for a viewer");
    let post = send(&hub, "POST", "/tenants/payments/secrets", Some(&payments), Some("secret=db&key=password&value=hunter2"), &[]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(post.body.contains("secrets:set in tenant payments"), "{}", post.body);

    let admin = get(&hub, "/catalog/shop/component/storefront", &hub.token).await.body;
    assert!(admin.contains("deployments-section"), "{admin}");
}

#[tokio::test]
async fn secrets_are_set_from_the_tenant_page_and_never_shown() {
    let hub = hub().await;
    let shop = hub.token_for("tenant:shop:developer").await;
    let set =
        send(&hub, "POST", "/tenants/shop/secrets", Some(&shop), Some("secret=cart-db&key=password&value=hunter2-%26-more"), &[]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    assert!(set.location.contains("notice=Set%20shop/cart-db%20key%20password%20%28version%201%29"), "{}", set.location);
    let page = get(&hub, "/tenants/shop", &shop).await.body;
    assert!(page.contains("cart-db") && page.contains("password") && page.contains("token:tenant-shop-developer"), "{page}");
    assert!(!page.contains("hunter2"), "the value never comes back");
    let bad = send(&hub, "POST", "/tenants/shop/secrets", Some(&shop), Some("secret=Bad%20Name&key=password&value=v4lue-zz"), &[]).await;
    assert!(bad.location.contains("error="), "{}", bad.location);
    assert!(!bad.location.contains("v4lue-zz"), "the error never carries the value");
}

#[tokio::test]
async fn the_catalog_filters_by_facets_and_serves_htmx_its_results_alone() {
    let hub = hub().await;
    let page = get(&hub, "/catalog?kind=component&owner=group:default/payments", &hub.token).await.body;
    assert!(page.contains(">settlement</a>") && !page.contains(">storefront</a>"), "{page}");
    assert!(page.contains(r#"name="kind" value="Component" checked"#), "the chosen facet stays checked");
    let partial = send(&hub, "GET", "/catalog?q=storefront", Some(&hub.token), None, &[("hx-request", "true")]).await.body;
    assert!(!partial.contains("<html") && partial.contains(">storefront</a>"), "{partial}");
}

#[tokio::test]
async fn the_wizard_is_made_from_the_schema_and_bad_values_come_back_on_the_form() {
    let hub = hub().await;
    let templates =
        std::path::absolute(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/templates/catalog-info.yaml"))
            .expect("path");
    let body = json!({"type": "file", "target": templates.display().to_string()}).to_string();
    assert_eq!(hub.call("POST", "/api/catalog/locations", "application/json", body).await.0, 201);
    let shop = hub.token_for("tenant:shop:developer").await;
    let wizard = get(&hub, "/create/default/node-service", &shop).await.body;
    assert!(
        wizard.contains(r#"id="f-name" name="name" type="text""#)
            && wizard.contains(r#"id="f-port" name="port" type="number" value="8080""#)
    );
    assert!(
        wizard.contains(r#"<option value="shop" "#) && !wizard.contains(r#"<option value="payments""#),
        "owners: the viewer's tenants: {wizard}"
    );
    let refused = send(&hub, "POST", "/create/default/node-service", Some(&shop), Some("name=Not+OK&owner=shop&port=eighty"), &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("expected a whole number"), "{}", refused.body);
    assert!(refused.body.contains(r#"value="Not OK""#), "what was typed stays");
    let refused = send(&hub, "POST", "/create/default/node-service", Some(&shop), Some("name=Not+OK&owner=shop"), &[]).await;
    assert!(refused.body.contains("must match"), "the template's own check is shown: {}", refused.body);
    assert_eq!(hub.state.tasks.list(|_| true).len(), 0, "nothing ran");
    let started = send(&hub, "POST", "/create/default/node-service", Some(&shop), Some("name=gifts&owner=shop&port=8081"), &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert!(started.location.starts_with("/tasks/"), "{}", started.location);
    let other = hub.token_for("tenant:shop:viewer").await;
    assert_eq!(get(&hub, &started.location, &other).await.status, StatusCode::NOT_FOUND, "a task is its creator's");
}
