//! Claims through the hub's API with the example organization: the tenant
//! budget refuses what would exceed it (naming the costs), a platform
//! change to a composition's selector does not swap a database, a
//! migration of a claim nobody has or to a composition that does not exist
//! is refused with nothing stored, and a standalone Claim gets a status.

mod common;

use common::TestHub;
use serde_json::{Value, json};

fn database(name: &str, storage: u32) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  components:\n    - name: {name}-db\n      type: postgresql\n      properties: {{highAvailability: true, storageGB: {storage}}}\n  policies:\n    - {{name: prod, type: topology, properties: {{environment: prod}}}}\n"
    )
}

async fn instances(hub: &TestHub) -> Vec<Value> {
    let (status, list) = hub.get("/api/v1/namespaces/shop/claim-instances").await;
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_tenant_budget_refuses_what_would_exceed_it_and_names_the_costs() {
    let hub = TestHub::with_example_platform().await;
    // 15 + 200 * 0.115 + 15 = 53 a month each; the shop's budget is 300.
    for i in 0..5 {
        let (status, body) = hub.apply_yaml(&database(&format!("db{i}"), 200), "").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(instances(&hub).await.len(), 5);
    let commits_before = hub.commits("prod-eu-1").len();
    let (status, body) = hub.apply_yaml(&database("db5", 200), "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["reason"], "BudgetExceeded");
    assert_eq!(body["message"], "tenant shop's claims would cost 318.00 USD a month, over its budget of 300.00 USD; nothing was changed");
    let details: Vec<&str> = body["details"].as_array().expect("details").iter().filter_map(|d| d["message"].as_str()).collect();
    assert!(details.contains(&"db5-db in prod-eu-1 (aws-rds): 53.00 USD"), "{details:?}");
    assert!(details.iter().any(|d| d.starts_with("db0-db in prod-eu-1 (aws-rds, Application db0)")), "{details:?}");
    let (status, _) = hub.get("/api/v1/namespaces/shop/applications/db5").await;
    assert_eq!(status, 404, "nothing was stored");
    assert_eq!(hub.commits("prod-eu-1").len(), commits_before, "nothing was committed");

    // Making one smaller frees room: the same request then fits.
    let (status, body) = hub.apply_yaml(&database("db0", 20), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = hub.apply_yaml(&database("db5", 200), "").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn limits_are_refused_through_the_api_with_the_reason() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&database("orders", 50).replace("highAvailability: true", "highAvailability: false"), "").await;
    assert_eq!(status, 422, "{body}");
    let detail = &body["details"][0];
    assert_eq!(detail["path"], "spec.components[0].properties.highAvailability");
    assert!(detail["message"].as_str().is_some_and(|m| m.contains("production databases must be highly available")), "{body}");
}

#[tokio::test]
async fn a_changed_selector_keeps_the_instance_on_its_composition() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&database("orders", 20), "").await;
    assert_eq!(status, 200, "{body}");
    // The platform team points prod at Cloud SQL.
    let (_, capability) = hub.get("/api/v1/capabilities/postgresql").await;
    let mut spec = capability["spec"].clone();
    spec["compositions"][1]["selector"] = json!({"environments": ["staging"]});
    spec["compositions"][2]["selector"] = json!({"environments": ["prod"]});
    let changed =
        json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Capability", "metadata": {"name": "postgresql"}, "spec": spec});
    let (status, body) = hub.call("PUT", "/api/v1/capabilities/postgresql", "application/json", changed.to_string()).await;
    assert_eq!(status, 200, "{body}");
    heimdall_hub::reconcile::render_all(&hub.state).await.expect("re-render");
    let app = hub.application("shop", "orders").await;
    let compositions: Vec<&str> =
        app["status"]["claims"].as_array().expect("claims").iter().filter_map(|c| c["composition"].as_str()).collect();
    assert_eq!(compositions, ["aws-rds"], "{app}");
    let messages = app["status"]["messages"].to_string();
    assert!(messages.contains("stays on composition aws-rds; the platform now selects gcp-cloudsql"), "{messages}");
}

#[tokio::test]
async fn migrations_of_unknown_claims_or_to_unknown_compositions_are_refused() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&database("orders", 20), "").await;
    assert_eq!(status, 200, "{body}");
    let migration = |claim: &str, composition: &str| {
        format!(
            "apiVersion: platform.heimdall.dev/v1alpha1\nkind: ClaimMigration\nmetadata: {{name: {claim}, namespace: shop}}\nspec: {{composition: {composition}}}\n"
        )
    };
    let (status, body) = hub.apply_yaml(&migration("ghost-db", "gcp-cloudsql"), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("no claim named ghost-db in namespace shop")), "{body}");

    let (status, body) = hub.apply_yaml(&migration("orders-db", "azure"), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("moves to composition \\\"azure\\\", which capability postgresql does not have"), "{body}");
    let (status, _) = hub.get("/api/v1/namespaces/shop/claimmigrations/orders-db").await;
    assert_eq!(status, 404, "nothing was stored");

    let (status, body) =
        hub.call("POST", "/api/v1/namespaces/shop/claims/orders-db/plan", "application/json", r#"{"composition": "aws-rds"}"#).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("already uses composition aws-rds")), "{body}");
    let (status, _) = hub.call("POST", "/api/v1/namespaces/shop/claims/ghost/plan", "application/json", r#"{"composition": "x"}"#).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_standalone_claim_renders_and_lists_with_its_outputs() {
    let hub = TestHub::with_example_platform().await;
    let claim = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Claim\nmetadata: {name: orders-events, namespace: shop}\nspec:\n  type: kafka-topic\n  parameters: {partitions: 3}\n";
    let (status, body) = hub.apply_yaml(claim, "").await;
    assert_eq!(status, 200, "{body}");
    let list = instances(&hub).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["owner"], "Claim/orders-events");
    assert_eq!(list[0]["cluster"], "dev-eu-1");
    assert_eq!(list[0]["outputs"], json!(["bootstrapServers", "topic"]));
    assert_eq!(list[0]["state"], "Unknown", "no agent has reported yet");
    let (status, body) = hub.apply_yaml(&claim.replace("partitions: 3", "partitions: 64"), "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("development topics have at most 12 partitions"), "{body}");
}

#[tokio::test]
async fn credentials_a_composition_generates_are_made_once_and_stay_write_only() {
    let hub = TestHub::with_example_platform().await;
    let app = |replicas: u32| {
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: cart, namespace: shop}}\nspec:\n  components:\n    - {{name: cache, type: redis, properties: {{memoryMB: 128}}}}\n    - name: cart\n      type: webservice\n      dependsOn: [cache]\n      properties: {{image: registry.example.com/shop/cart:1}}\n      traits: [{{type: scaler, properties: {{replicas: {replicas}}}}}]\n  policies:\n    - {{name: dev, type: topology, properties: {{environment: dev}}}}\n"
        )
    };
    let (status, body) = hub.apply_yaml(&app(1), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, secret) = hub.get("/api/v1/namespaces/shop/secrets/cache-redis-auth").await;
    assert_eq!(status, 200, "the hub generated the password: {secret}");
    assert_eq!(secret["spec"]["keys"]["password"]["version"], 1);
    assert_eq!(secret["spec"]["keys"]["password"]["updatedBy"], "heimdall-capabilities");
    assert!(!secret.to_string().contains("value"), "only versions are shown: {secret}");

    let app_status = hub.application("shop", "cart").await;
    assert_eq!(app_status["status"]["phase"], "Rendered", "{app_status}");
    let rendered = hub.state.rendering.render_app(&serde_json::from_value(app_status).expect("resource")).expect("renders");
    let target = &rendered.targets[0];
    assert!(rendered.generate.is_empty(), "nothing is left to generate");
    assert!(target.secrets.iter().any(|s| s.name == "cache-redis-auth"), "the generated secret is delivered: {:?}", target.secrets);
    let cart = target.objects.iter().find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "cart").expect("cart");
    let env = cart.pointer("/spec/template/spec/containers/0/env").expect("env").to_string();
    assert!(
        env.contains(r#"{"name":"CACHE_PASSWORD","valueFrom":{"secretKeyRef":{"key":"password","name":"cache-redis-auth"}}}"#),
        "{env}"
    );

    // Another change renders with the same password.
    let (status, body) = hub.apply_yaml(&app(2), "").await;
    assert_eq!(status, 200, "{body}");
    let (_, secret) = hub.get("/api/v1/namespaces/shop/secrets/cache-redis-auth").await;
    assert_eq!(secret["spec"]["keys"]["password"]["version"], 1, "generated once");
}

#[tokio::test]
async fn another_replica_follows_a_migration_it_did_not_serve() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&database("orders", 20), "").await;
    assert_eq!(status, 200, "{body}");
    // A second hub on the same store, following the event log as replicas do.
    let git = tempfile::tempdir().expect("tempdir");
    let other = heimdall_hub::AppState::new(hub.store.clone(), git.path().to_path_buf());
    let reconciler = tokio::spawn(heimdall_hub::reconcile::run(other.clone()));
    let started = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while other.rendering.platform().capability_types().is_empty() {
        assert!(tokio::time::Instant::now() < started, "the other replica never loaded the platform");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let migration = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: ClaimMigration\nmetadata: {name: orders-db, namespace: shop}\nspec: {composition: gcp-cloudsql}\n";
    let (status, body) = hub.apply_yaml(migration, "").await;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !other.rendering.migrations().contains_key(&("shop".to_string(), "orders-db".to_string())) {
        assert!(tokio::time::Instant::now() < deadline, "the other replica never loaded the migration");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // What it renders now keeps the new instance instead of pruning it.
    let app: heimdall_model::Resource = serde_json::from_value(hub.application("shop", "orders").await).expect("resource");
    let rendered = other.rendering.render_app(&app).expect("renders");
    let compositions: Vec<&str> = rendered.targets[0].claims.iter().map(|c| c.composition.as_str()).collect();
    assert_eq!(compositions, ["aws-rds", "gcp-cloudsql"]);
    reconciler.abort();
}
