mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestHub;
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn hub() -> TestHub {
    TestHub::new().await
}

const SHOP_WEB: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: nginx:1\n";
const TENANT: &str = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  displayName: Shop\n";

fn assert_error_shape(body: &Value, status: StatusCode, reason: &str) {
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let hub = hub().await;
    let (status, body) = hub.call_with("GET", "/api/v1/applications", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_shape(&body, status, "Unauthorized");
    let (status, _) = hub.call_with("GET", "/api/v1/applications", "", Body::empty(), Some("hdl_not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = hub.call_with("POST", "/api/v1/apply", "application/yaml", SHOP_WEB.to_string(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(hub.store.revision().await.expect("revision"), 0, "nothing was stored");
    let (status, _) = hub.call_with("GET", "/healthz", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK, "health needs no token");
}

#[tokio::test]
async fn apply_then_read_back_in_every_shape() {
    let hub = hub().await;
    let (status, body) = hub.apply_yaml(&format!("{SHOP_WEB}---\n{TENANT}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<&str> =
        body["results"].as_array().expect("results").iter().map(|r| r["outcome"].as_str().expect("outcome")).collect();
    assert_eq!(outcomes, ["created", "created"]);
    assert_eq!(body["results"][0]["document"], "request body, document 1");

    let first_version = body["results"][0]["resourceVersion"].clone();
    let (status, body) = hub.apply_yaml(&format!("{SHOP_WEB}---\n{TENANT}"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["outcome"], "unchanged");
    assert_eq!(body["results"][0]["resourceVersion"], first_version, "an unchanged apply bumps nothing");

    let (status, list) = hub.get("/api/v1/applications").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["kind"], "ApplicationList");
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    assert_eq!(list["metadata"]["resourceVersion"], "4", "two creates and their rendered statuses");

    let (status, app) = hub.get("/api/v1/namespaces/shop/applications/web").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app["spec"]["components"][0]["properties"]["image"], "nginx:1");
    assert_eq!(app["metadata"]["generation"], 1);

    let (status, tenant) = hub.get("/api/v1/tenants/shop").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenant["spec"]["displayName"], "Shop");

    let (status, body) = hub.get("/api/v1/applications/web").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "namespaced kinds need their namespace");
    assert!(body["message"].as_str().expect("message").contains("namespaces/{namespace}"));
    let (status, body) = hub.get("/api/v1/namespaces/shop/tenants").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().expect("message").contains("cluster-scoped"));
    let (status, body) = hub.get("/api/v1/aplications").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().expect("message").contains("did you mean \"applications\""), "{body}");
}

#[tokio::test]
async fn invalid_documents_are_rejected_whole_with_paths() {
    let hub = hub().await;
    let bad = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: Bad_Name\nspec:\n  components:\n    - name: web\n      type: 5\n";
    let (status, body) =
        hub.apply_yaml(&format!("{TENANT}---\n{bad}---\nkind: Gadget\napiVersion: x/v1\nmetadata: {{name: g}}\n"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error_shape(&body, status, "Invalid");
    let details: Vec<(String, String)> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| (d["document"].as_str().expect("document").to_string(), d["path"].as_str().expect("path").to_string()))
        .collect();
    assert!(details.contains(&("request body, document 2".into(), "metadata.name".into())), "{details:?}");
    assert!(details.contains(&("request body, document 2".into(), "spec.components[0].type".into())), "{details:?}");
    assert!(details.contains(&("request body, document 3".into(), "kind".into())), "{details:?}");
    assert_eq!(hub.store.revision().await.expect("revision"), 0, "the valid tenant was not stored either");

    let (status, body) = hub.apply_yaml("a: [1,\n", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["details"][0]["message"].as_str().expect("message").contains("not valid YAML"), "{body}");

    let (status, body) = hub.apply_yaml(&format!("{SHOP_WEB}---\n{SHOP_WEB}"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["details"][0]["message"].as_str().expect("message").contains("also defined in request body, document 1"));
}

#[tokio::test]
async fn continue_on_error_and_dry_run() {
    let hub = hub().await;
    let bad = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c1}\nspec: {delivery: pigeon}\n";
    let (status, body) = hub.apply_yaml(&format!("{TENANT}---\n{bad}"), "?dryRun=true").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "dry run still validates: {body}");

    let (status, body) = hub.apply_yaml(TENANT, "?dryRun=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["dryRun"].as_bool(), body["results"][0]["outcome"].as_str()), (Some(true), Some("created")));
    assert_eq!(hub.store.revision().await.expect("revision"), 0, "dry run stores nothing");

    let (status, body) = hub.apply_yaml(&format!("{TENANT}---\n{bad}"), "?continueOnError=true").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["errors"][0]["path"], "spec.delivery");
    assert_eq!(hub.store.revision().await.expect("revision"), 2, "the tenant and its rendered status");
}

#[tokio::test]
async fn json_apply_requests_carry_sources_and_namespace() {
    let hub = hub().await;
    let request = json!({
        "documents": [{"source": "apps/web.yaml", "object": {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "web"}, "spec": {"components": [{"name": "web", "type": "webservice", "properties": {"image": "nginx:1"}}]}}}],
        "namespace": "team-a"
    });
    let (status, body) = hub.call("POST", "/api/v1/apply", "application/json", request.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["namespace"], "team-a");
    assert_eq!(body["results"][0]["document"], "apps/web.yaml");
}

#[tokio::test]
async fn updates_need_a_fresh_resource_version() {
    let hub = hub().await;
    hub.apply_yaml(SHOP_WEB, "").await;
    hub.apply_yaml(&SHOP_WEB.replace("nginx:1", "nginx:2"), "").await;
    let stale = SHOP_WEB.replace("namespace: shop\n", "namespace: shop\n  resourceVersion: \"1\"\n").replace("nginx:1", "nginx:3");
    let (status, body) = hub.call("PUT", "/api/v1/namespaces/shop/applications/web", "application/yaml", stale).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_shape(&body, status, "Conflict");
    let (_, app) = hub.get("/api/v1/namespaces/shop/applications/web").await;
    assert_eq!(app["spec"]["components"][0]["properties"]["image"], "nginx:2");
    let current = app["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string();

    let fresh = SHOP_WEB
        .replace("namespace: shop\n", &format!("namespace: shop\n  resourceVersion: \"{current}\"\n"))
        .replace("nginx:1", "nginx:3");
    let (status, app) = hub.call("PUT", "/api/v1/namespaces/shop/applications/web", "application/yaml", fresh).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["metadata"]["generation"], 3);

    let renamed = SHOP_WEB.replace("name: web\n  namespace", "name: other\n  namespace");
    let (status, body) = hub.call("PUT", "/api/v1/namespaces/shop/applications/web", "application/yaml", renamed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "metadata.name");
}

#[tokio::test]
async fn create_and_delete_single_resources() {
    let hub = hub().await;
    let (status, created) = hub.call("POST", "/api/v1/namespaces/shop/applications", "application/yaml", SHOP_WEB.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = hub.call("POST", "/api/v1/namespaces/shop/applications", "application/yaml", SHOP_WEB.to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_shape(&body, status, "AlreadyExists");
    let (status, _) = hub.call("DELETE", "/api/v1/namespaces/shop/applications/web?resourceVersion=9", "", Body::empty()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, deleted) = hub.call("DELETE", "/api/v1/namespaces/shop/applications/web", "", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["metadata"]["uid"], created["metadata"]["uid"]);
    let (status, body) = hub.get("/api/v1/namespaces/shop/applications/web").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&body, status, "NotFound");

    let (status, audit) = hub.get("/api/v1/audit?kind=app&name=web").await;
    assert_eq!(status, StatusCode::OK);
    let verbs: Vec<&str> = audit["items"].as_array().expect("items").iter().map(|e| e["verb"].as_str().expect("verb")).collect();
    assert_eq!(verbs, ["delete", "update-status", "create"]);
    assert_eq!(audit["items"][0]["actor"], "admin");
    assert_eq!(audit["items"][1]["actor"], "heimdall-renderer", "the hub records the rendered status itself");
}

#[tokio::test]
async fn oversized_bodies_are_refused_in_the_error_shape() {
    let hub = hub().await;
    let huge = format!("{TENANT}#{}\n", "x".repeat(heimdall_hub::web::MAX_BODY_BYTES));
    let (status, body) = hub.call("POST", "/api/v1/apply", "application/yaml", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_shape(&body, status, "PayloadTooLarge");
    assert_eq!(hub.store.revision().await.expect("revision"), 0);
}

/// The hub's own failure is a generic 500 in the error shape: the store's
/// text (here: its pool is closed) goes to the log, never to the client.
#[tokio::test]
async fn store_failures_are_a_generic_500_that_says_nothing_of_the_store() {
    let hub = hub().await;
    hub.store.close().await;
    let (status, body) = hub.get("/api/v1/tenants").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error_shape(&body, status, "InternalError");
    assert_eq!(body["message"], "internal error; the hub's log has the details");
    let text = body.to_string().to_ascii_lowercase();
    assert!(!text.contains("pool") && !text.contains("closed") && !text.contains("database"), "{body}");
}

#[tokio::test]
async fn list_pages_and_selects_by_label() {
    let hub = hub().await;
    let mut docs = Vec::new();
    for i in 0..5 {
        let env = if i < 3 { "prod" } else { "dev" };
        docs.push(format!(
            "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c{i}\n  labels: {{env: {env}}}\n"
        ));
    }
    hub.apply_yaml(&docs.join("---\n"), "").await;
    let (_, page) = hub.get("/api/v1/clusters?labelSelector=env%3Dprod&limit=2").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let token = page["metadata"]["continue"].as_str().expect("continue");
    let (_, rest) = hub.get(&format!("/api/v1/clusters?labelSelector=env%3Dprod&limit=2&continue={token}")).await;
    assert_eq!(rest["items"][0]["metadata"]["name"], "c2");
    assert!(rest["metadata"].get("continue").is_none());
    let (status, body) = hub.get("/api/v1/clusters?labelSelector=env%20in%20prod").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().expect("message").contains("invalid label selector"));
}

#[tokio::test]
async fn watch_streams_changes_after_a_resource_version() {
    let hub = hub().await;
    hub.apply_yaml(TENANT, "").await;
    let request = Request::get("/api/v1/tenants?watch=true&resourceVersion=0")
        .header(header::AUTHORIZATION, format!("Bearer {}", hub.token))
        .body(Body::empty())
        .expect("request");
    let response = hub.router.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/x-ndjson");
    let mut stream = response.into_body().into_data_stream();
    let first = stream.next().await.expect("chunk").expect("bytes");
    let event: Value = serde_json::from_slice(&first).expect("json line");
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "shop");
    hub.apply_yaml(&TENANT.replace("displayName: Shop", "displayName: Shop team"), "").await;
    // The tenant's rendered status comes first, as a modification of its own.
    loop {
        let next =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.expect("in time").expect("chunk").expect("bytes");
        let event: Value = serde_json::from_slice(&next).expect("json line");
        assert_eq!(event["type"], "MODIFIED");
        if event["object"]["spec"]["displayName"] == "Shop team" {
            break;
        }
    }
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let hub = hub().await;
    let (status, body) = hub.call_with("GET", "/readyz", "", Body::empty(), None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    hub.get("/api/v1/tenants").await;
    let (status, metrics) = hub.call_with("GET", "/metrics", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().expect("text");
    assert!(text.contains(r#"heimdall_http_requests_total{method="GET",route="/api/v1/{plural}",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"heimdall_store_operation_duration_seconds_count{operation="list",outcome="ok"} "#), "{text}");
    let (status, doc) = hub.call_with("GET", "/api/openapi.json", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/apply"]["post"].is_object(), "{doc}");
    assert!(doc["paths"]["/api/v1/namespaces/{namespace}/{plural}/{name}"]["put"].is_object());
    assert!(doc["components"]["schemas"]["ApiError"].is_object());
    let (status, body) = hub.call_with("GET", "/nope", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&body, status, "NotFound");
}

#[tokio::test]
async fn the_example_organization_loads() {
    let hub = hub().await;
    let response = heimdall_hub::server::load_manifests(&hub.state, heimdall_hub::examples::embedded()).await.expect("examples load");
    let count = |kind: &str| response.results.iter().filter(|r| r.kind == kind).count();
    assert_eq!((count("Tenant"), count("Environment"), count("Cluster")), (2, 3, 3));
    assert!(count("Application") >= 3 && count("Workload") >= 1, "{:?}", response.results);
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let hub = hub().await;
    hub.store.close().await;
    let (status, body) = hub.call_with("GET", "/readyz", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error_shape(&body, status, "Unavailable");
    let (status, _) = hub.call_with("GET", "/healthz", "", Body::empty(), None).await;
    assert_eq!(status, StatusCode::OK, "liveness does not depend on the database");
}
