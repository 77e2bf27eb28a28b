//! What an outside security test found, each kept as a regression on the
//! router: security headers, request budgets, duplicate keys, redirects,
//! the API's error shape for the framework's own refusals, streams that end
//! with their credential, failed-sign-in limits, repositories that say
//! nothing before authentication, rollbacks to revisions that never were,
//! names that climb out of their place, and the OpenAPI document.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestHub, web_app};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn raw(hub: &TestHub, request: Request<Body>) -> axum::http::Response<Body> {
    hub.router.clone().oneshot(request).await.expect("response")
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let hub = TestHub::with_example_platform().await;
    let page = raw(&hub, Request::get("/sign-in").header(header::HOST, "hub.example").body(Body::empty()).expect("request")).await;
    let headers = page.headers();
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(headers.get(header::STRICT_TRANSPORT_SECURITY).is_none(), "no HSTS over plain HTTP");

    let api = raw(
        &hub,
        Request::get("/api/v1/kinds").header(header::AUTHORIZATION, format!("Bearer {}", hub.token)).body(Body::empty()).expect("r"),
    )
    .await;
    assert_eq!(api.headers()[header::CONTENT_SECURITY_POLICY], "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
    assert_eq!(api.headers()[header::CACHE_CONTROL], "no-store", "what a signed-in person reads is not cached");
    let asset = raw(&hub, Request::get("/assets/htmx.min.js").body(Body::empty()).expect("r")).await;
    assert!(asset.headers()[header::CACHE_CONTROL].to_str().expect("cc").starts_with("public"), "static assets may be cached");

    let tls = hub.with_state(|state| state.secure_cookies = true);
    let secure = raw(&tls, Request::get("/healthz").body(Body::empty()).expect("r")).await;
    assert_eq!(secure.headers()[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
}

#[tokio::test]
async fn applies_are_bounded_and_duplicate_keys_refused() {
    let hub = TestHub::with_example_platform().await;
    let document = |i: usize| json!({"source": format!("d{i}"), "object": {"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Environment", "metadata": {"name": format!("e{i}")}}});
    let many = json!({"documents": (0..1001).map(document).collect::<Vec<_>>()}).to_string();
    let (status, body) = hub.call("POST", "/api/v1/apply", "application/json", many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("1001 documents; one request may hold at most 1000"), "{body}");
    let yaml = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Environment\nmetadata: {name: e}\n---\n".repeat(1001);
    let (status, body) = hub.apply_yaml(&yaml, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("one request may hold at most 1000"), "{body}");
    assert_eq!(hub.get("/api/v1/environments/e0").await.0, StatusCode::NOT_FOUND, "nothing stored");

    let duplicate = r#"{"documents": [{"source": "x", "object": {"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Environment", "metadata": {"name": "first", "name": "second"}}}]}"#;
    let (status, body) = hub.call("POST", "/api/v1/apply", "application/json", duplicate).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().expect("message").contains("duplicate key \"name\""), "{body}");

    let env_value = "v".repeat(7 * 1024 * 1024);
    let big = web_app("big", "registry.example.com/shop/web:1", None)
        .replace("        memory: 128Mi\n", &format!("        memory: 128Mi\n        env: [{{name: BLOB, value: {env_value}}}]\n"));
    let (status, body) = hub.apply_yaml(&big, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", &body.to_string()[..200.min(body.to_string().len())]);
    assert_eq!(body["details"][0]["path"], "spec.components[0].properties.env[0].value");
    assert!(body["details"][0]["message"].as_str().expect("message").contains("a value may be at most 1048576 bytes"));
    assert!(body.to_string().len() < 2048, "the value is not echoed");
}

#[tokio::test]
async fn the_frameworks_refusals_have_the_apis_error_shape() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.call("POST", "/api/v1/tokens", "application/json", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    assert!(body["message"].is_string());
    let (status, body) = hub.call("POST", "/api/v1/tokens", "text/plain", "x").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["reason"], "UnsupportedMediaType", "{body}");
}

#[tokio::test]
async fn sign_in_returns_only_to_local_paths() {
    let hub = TestHub::with_example_platform().await;
    for (return_to, expected) in [
        ("%2Fcatalog", "/catalog"),
        ("%2F%09%2Fevil.com", "/"),
        ("%2F%0A%2Fevil.com", "/"),
        ("%2F%5Cevil.com", "/"),
        ("https%3A%2F%2Fevil.com", "/"),
    ] {
        let form = format!("token={}&returnTo={return_to}", hub.token);
        let request = Request::post("/sign-in")
            .header(header::HOST, "hub.example")
            .header(header::ORIGIN, "http://hub.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request");
        let response = raw(&hub, request).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{return_to}");
        assert_eq!(response.headers()[header::LOCATION], expected, "{return_to}");
    }
}

#[tokio::test]
async fn an_http2_request_has_no_host_and_its_authority_is_the_origin() {
    let hub = TestHub::with_example_platform().await;
    // As a browser sends it over HTTP/2: no Host header, the authority in the URI.
    let form = format!("token={}&returnTo=/", hub.token);
    let request = Request::post("https://hub.example:8443/sign-in")
        .version(axum::http::Version::HTTP_2)
        .header(header::ORIGIN, "https://hub.example:8443")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.clone()))
        .expect("request");
    let response = raw(&hub, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[header::SET_COOKIE].to_str().expect("cookie").starts_with("heimdall_session="));
    let elsewhere = Request::post("https://hub.example:8443/sign-in")
        .version(axum::http::Version::HTTP_2)
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("request");
    assert_eq!(raw(&hub, elsewhere).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_watch_ends_when_its_token_is_revoked() {
    let hub = TestHub::with_example_platform().await.with_state(|state| state.credential_recheck = Duration::from_millis(100));
    let watcher = hub.named_token("token:watcher", "platform-admin").await;
    let request = Request::get("/api/v1/tenants?watch=true&resourceVersion=0")
        .header(header::AUTHORIZATION, format!("Bearer {watcher}"))
        .body(Body::empty())
        .expect("request");
    let response = raw(&hub, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    assert!(stream.next().await.is_some(), "events flow while the token is valid");
    let (status, _) = hub.call("DELETE", "/api/v1/tokens/watcher", "", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = stream.next().await {
            chunk.expect("bytes");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended within seconds of the revocation");
}

#[tokio::test]
async fn failed_authentication_is_rate_limited() {
    let hub = TestHub::with_example_platform().await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let request = Request::get("/api/v1/kinds").header(header::AUTHORIZATION, "Bearer hdl_guess").body(Body::empty()).expect("request");
        statuses.push(raw(&hub, request).await.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Someone else's guessing never locks a valid credential out.
    let (status, _) = hub.get("/api/v1/kinds").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn repositories_say_nothing_before_a_credential_and_refuse_alike() {
    let hub = TestHub::with_example_platform().await;
    for path in [
        "/git/clusters/dev-eu-1.git/info/refs?service=git-upload-pack",
        "/git/clusters/no-such.git/info/refs?service=git-upload-pack",
        "/git/services/shop/nothing.git/info/refs?service=git-upload-pack",
    ] {
        let (status, _) = hub.call_with("GET", path, "", Body::empty(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let developer = hub.named_token("token:dev", "tenant:shop:developer").await;
    let (exists, _) =
        hub.call_with("GET", "/git/clusters/dev-eu-1.git/info/refs?service=git-upload-pack", "", Body::empty(), Some(&developer)).await;
    let (missing, _) =
        hub.call_with("GET", "/git/clusters/no-such.git/info/refs?service=git-upload-pack", "", Body::empty(), Some(&developer)).await;
    assert_eq!((exists, missing), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN), "a refusal tells nothing of what exists");
}

#[tokio::test]
async fn rollback_is_to_a_revision_the_application_had() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&web_app("web", "registry.example.com/shop/web:1", Some("{clusters: [dev-eu-1]}")), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        hub.call("POST", "/api/v1/namespaces/shop/applications/web/rollback", "application/json", r#"{"to": "999999"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["message"].as_str().expect("message").contains("revision 999999 is not one of application shop/web's"));
    // A revision that is neither a number nor a commit is refused naming the field it came in.
    let (status, body) =
        hub.call("POST", "/api/v1/namespaces/shop/applications/web/rollback", "application/json", r#"{"to": "nonsense"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "to", "{body}");
    assert!(body["message"].as_str().expect("message").contains("neither a revision number nor a commit"), "{body}");
    let (status, body) = hub.get("/api/v1/namespaces/shop/applications/web/diff?from=nonsense").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["path"], "from", "{body}");
    // Before the application existed there is nothing to go back to.
    let (status, body) = hub.call("POST", "/api/v1/namespaces/shop/applications/web/rollback", "application/json", r#"{"to": "1"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().expect("message").contains("did not exist at revision 1"), "{body}");
}

#[tokio::test]
async fn names_cannot_climb_out_of_their_place() {
    let hub = TestHub::with_example_platform().await;
    let body = json!({"value": "c2VjcmV0"}).to_string();
    let (status, answer) = hub.call("PUT", "/api/v1/namespaces/..%2F..%2Fx/secrets/db/keys/password", "application/json", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["details"][0]["path"], "namespace", "{answer}");
}

#[tokio::test]
async fn registering_a_location_asks_who_before_saying_what_exists() {
    let hub = TestHub::with_example_platform().await;
    let body = json!({"type": "url", "target": "https://example.com/catalog-info.yaml"}).to_string();
    let developer = hub.named_token("token:dev", "tenant:shop:developer").await;
    for _ in 0..2 {
        let (status, answer) =
            hub.call_with("POST", "/api/catalog/locations?dryRun=true", "application/json", body.clone(), Some(&developer)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    }
}

#[tokio::test]
async fn the_openapi_document_covers_the_catalog_and_the_scaffolder() {
    let hub = TestHub::new().await;
    let (status, doc) = hub.call_with("GET", "/api/openapi.json", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK);
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    for expected in [
        "/api/catalog/entities/by-query",
        "/api/catalog/locations",
        "/api/catalog/validate-entity",
        "/api/scaffolder/v2/tasks",
        "/api/scaffolder/v2/dry-run",
    ] {
        assert!(paths.iter().any(|p| *p == expected), "{expected} missing from {paths:?}");
    }
    let _: &Value = &doc["paths"]["/api/scaffolder/v2/tasks/{id}/eventstream"]["get"];
}
