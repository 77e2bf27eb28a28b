//! Rendering inside the hub: admission, status, approvals and platform changes.

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use heimdall_hub::{AppState, router};
use heimdall_store::Store;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Hub {
    app: Router,
    state: AppState,
    token: String,
    _dir: tempfile::TempDir,
}

/// A hub with the example platform (defaults, policies, definitions, environments, clusters).
async fn hub() -> Hub {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("h.db").display()))
        .await
        .expect("store");
    let token = heimdall_hub::server::ensure_admin_token(&store, dir.path())
        .await
        .expect("token")
        .token;
    let state = AppState::new(store);
    let platform = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
    heimdall_hub::server::load_manifests(&state, heimdall_hub::examples::read_manifests(&platform).expect("read"))
        .await
        .expect("platform loads");
    Hub {
        app: router(state.clone()),
        state,
        token,
        _dir: dir,
    }
}

impl Hub {
    async fn call(&self, method: &str, uri: &str, content_type: &str, body: String) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::from(body))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn apply(&self, yaml: &str) -> (StatusCode, Value) {
        self.call("POST", "/api/v1/apply", "application/yaml", yaml.to_string()).await
    }

    async fn app(&self, namespace: &str, name: &str) -> Value {
        self.call(
            "GET",
            &format!("/api/v1/namespaces/{namespace}/applications/{name}"),
            "",
            String::new(),
        )
        .await
        .1
    }
}

fn web(name: &str, image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  components:\n    - name: {name}\n      type: webservice\n      properties:\n        image: {image}\n        memory: 128Mi\n"
    )
}

#[tokio::test]
async fn a_policy_violation_blocks_the_apply_with_its_message() {
    let hub = hub().await;
    let (status, body) = hub.apply(&web("web", "docker.io/nginx:1.27")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "PolicyViolation");
    let messages: Vec<&str> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["message"].as_str().expect("message"))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("allowed-registries") && m.contains("is not from registry.example.com")),
        "{messages:?}"
    );
    let (status, _) = hub.call("GET", "/api/v1/namespaces/shop/applications/web", "", String::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    let (status, body) = hub.apply(&web("web", "registry.example.com/shop/web:latest")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["details"][0]["message"].as_str().expect("message").contains(":latest"),
        "{body}"
    );
}

#[tokio::test]
async fn an_accepted_application_carries_its_rendered_status_with_defaults() {
    let hub = hub().await;
    let (status, body) = hub.apply(&web("web", "registry.example.com/shop/web:1.0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.app("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Rendered", "{app}");
    assert_eq!(app["status"]["observedGeneration"], 1);
    let target = &app["status"]["targets"][0];
    assert_eq!(
        (target["cluster"].as_str(), target["environment"].as_str(), target["state"].as_str()),
        (Some("dev-eu-1"), Some("dev"), Some("Ready"))
    );
    assert!(target["revision"].as_str().is_some_and(|r| r.len() == 64));

    let (status, body) = hub
        .apply(&web("broken", "registry.example.com/x:1").replace("type: webservice", "type: webservise"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.components[0].type");
    assert!(
        body["details"][0]["message"]
            .as_str()
            .expect("message")
            .contains("did you mean \"webservice\"")
    );
}

#[tokio::test]
async fn a_suspend_step_holds_production_until_approved() {
    let hub = hub().await;
    let storefront =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/shop/storefront.yaml")).expect("read");
    let (status, body) = hub.apply(&storefront).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.app("shop", "storefront").await;
    assert_eq!(app["status"]["phase"], "Suspended", "{app}");
    let states: Vec<(&str, &str)> = app["status"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| (t["cluster"].as_str().expect("cluster"), t["state"].as_str().expect("state")))
        .collect();
    assert_eq!(states, [("dev-eu-1", "Ready"), ("prod-eu-1", "Held")]);

    let (status, body) = hub
        .call(
            "POST",
            "/api/v1/namespaces/shop/applications/storefront/approve",
            "application/json",
            json!({"step": "deploy-dev"}).to_string(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only a waiting step can be approved: {body}"
    );
    assert!(body["message"].as_str().expect("message").contains("waiting: approve-prod"));

    let (status, approved) = hub
        .call(
            "POST",
            "/api/v1/namespaces/shop/applications/storefront/approve",
            "application/json",
            json!({"step": "approve-prod"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"]["phase"], "Rendered");
    assert_eq!(approved["status"]["targets"][1]["state"], "Ready");
    let (_, audit) = hub
        .call("GET", "/api/v1/audit?kind=Application&name=storefront&limit=1", "", String::new())
        .await;
    assert_eq!(
        (audit["items"][0]["verb"].as_str(), audit["items"][0]["actor"].as_str()),
        (Some("update-status"), Some("admin")),
        "the approver is on record"
    );

    // A new generation starts its workflow afresh.
    hub.apply(&storefront.replace("1.14.2", "1.14.3")).await;
    assert_eq!(hub.app("shop", "storefront").await["status"]["phase"], "Suspended");
}

#[tokio::test]
async fn new_definitions_work_without_a_rebuild() {
    let hub = hub().await;
    let definition = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: ComponentDefinition
metadata: {name: hello}
spec:
  parameters:
    type: object
    required: [greeting]
    properties:
      greeting: {type: string}
  template:
    workload:
      apiVersion: batch/v1
      kind: Job
      metadata: {name: "${{ context.name }}"}
      spec:
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: hello
                image: registry.example.com/base/busybox:1.36
                args: ["echo", "${{ parameters.greeting }}"]
                resources: {limits: {memory: 64Mi}}
"#;
    let (status, body) = hub.apply(definition).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: greeter, namespace: shop}\nspec:\n  components:\n    - name: greeter\n      type: hello\n      properties: {greeting: hi}\n";
    let (status, body) = hub.apply(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hub.app("shop", "greeter").await["status"]["phase"], "Rendered");

    let (status, body) = hub.apply(&app.replace("{greeting: hi}", "{greeting: 42}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.components[0].properties.greeting", "{body}");
}

#[tokio::test]
async fn broken_platform_documents_are_refused_by_name() {
    let hub = hub().await;
    let (status, body) = hub.apply("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Policy\nmetadata: {name: broken}\nspec:\n  rego: \"package x\\ndeny contains msg if {\"\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["document"], "request body");
    assert!(
        body["details"][0]["message"].as_str().expect("message").contains("not valid Rego"),
        "{body}"
    );
    let (status, body) = hub
        .apply("apiVersion: platform.heimdall.dev/v1alpha1\nkind: TraitDefinition\nmetadata: {name: t}\nspec:\n  template:\n    patch: {spec: {replicas: \"${{ parameters. }}\"}}\n")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.template.patch.spec.replicas", "{body}");
}

#[tokio::test]
async fn a_platform_change_re_renders_existing_applications() {
    let hub = hub().await;
    hub.apply(&web("web", "registry.example.com/shop/web:1.0")).await;
    let policy = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Policy\nmetadata: {name: no-web}\nspec:\n  rego: |\n    package heimdall.noweb\n    deny contains \"web is retired\" if { input.app.name == \"web\" }\n";
    let (status, body) = hub.apply(policy).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new policy is accepted even if existing apps break it: {body}"
    );
    heimdall_hub::reconcile::render_all(&hub.state).await.expect("re-render");
    let app = hub.app("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Blocked", "{app}");
    assert!(
        app["status"]["targets"][0]["messages"][0]
            .as_str()
            .expect("message")
            .contains("web is retired")
    );
}

#[tokio::test]
async fn warn_only_enforcement_reports_without_blocking() {
    let hub = hub().await;
    let defaults =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform/defaults.yaml")).expect("read");
    let (status, body) = hub
        .apply(&defaults.replace("environments: [dev]", "environments: [dev]\n  policyEnforcement: warn"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = hub.apply(&web("web", "docker.io/nginx:1.27")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.app("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Rendered");
    assert!(
        app["status"]["targets"][0]["messages"][0]
            .as_str()
            .expect("message")
            .contains("Warn"),
        "{app}"
    );
}
