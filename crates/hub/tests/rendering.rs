mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::TestHub;
use serde_json::json;

async fn hub() -> TestHub {
    TestHub::with_example_platform().await
}

fn web(name: &str, image: &str) -> String {
    common::web_app(name, image, None)
}

#[tokio::test]
async fn a_policy_violation_blocks_the_apply_with_its_message() {
    let hub = hub().await;
    let (status, body) = hub.apply_yaml(&web("web", "docker.io/nginx:1.27"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "PolicyViolation");
    let messages: Vec<&str> =
        body["details"].as_array().expect("details").iter().map(|d| d["message"].as_str().expect("message")).collect();
    assert!(messages.iter().any(|m| m.contains("allowed-registries") && m.contains("is not from registry.example.com")), "{messages:?}");
    let (status, _) = hub.get("/api/v1/namespaces/shop/applications/web").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    let (status, body) = hub.apply_yaml(&web("web", "registry.example.com/shop/web:latest"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["details"][0]["message"].as_str().expect("message").contains(":latest"), "{body}");
}

#[tokio::test]
async fn an_accepted_application_carries_its_rendered_status_with_defaults() {
    let hub = hub().await;
    let (status, body) = hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.application("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Rendered", "{app}");
    assert_eq!(app["status"]["observedGeneration"], 1);
    let target = &app["status"]["targets"][0];
    assert_eq!(
        (target["cluster"].as_str(), target["environment"].as_str(), target["state"].as_str()),
        (Some("dev-eu-1"), Some("dev"), Some("Ready"))
    );
    assert!(target["revision"].as_str().is_some_and(|r| r.len() == 64));

    let (status, body) =
        hub.apply_yaml(&web("broken", "registry.example.com/x:1").replace("type: webservice", "type: webservise"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.components[0].type");
    assert!(body["details"][0]["message"].as_str().expect("message").contains("did you mean \"webservice\""));
}

#[tokio::test]
async fn a_suspend_step_holds_production_until_approved() {
    let hub = hub().await;
    let storefront =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/shop/storefront.yaml")).expect("read");
    let (status, body) = hub.apply_yaml(&storefront, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.application("shop", "storefront").await;
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
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "only a waiting step can be approved: {body}");
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
    let (_, audit) = hub.call("GET", "/api/v1/audit?kind=Application&name=storefront&limit=1", "", String::new()).await;
    assert_eq!(
        (audit["items"][0]["verb"].as_str(), audit["items"][0]["actor"].as_str()),
        (Some("update-status"), Some("admin")),
        "the approver is on record"
    );

    // A new generation starts its workflow afresh.
    hub.apply_yaml(&storefront.replace("1.14.2", "1.14.3"), "").await;
    assert_eq!(hub.application("shop", "storefront").await["status"]["phase"], "Suspended");
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
    let (status, body) = hub.apply_yaml(definition, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: greeter, namespace: shop}\nspec:\n  components:\n    - name: greeter\n      type: hello\n      properties: {greeting: hi}\n";
    let (status, body) = hub.apply_yaml(app, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hub.application("shop", "greeter").await["status"]["phase"], "Rendered");

    let (status, body) = hub.apply_yaml(&app.replace("{greeting: hi}", "{greeting: 42}"), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.components[0].properties.greeting", "{body}");
}

#[tokio::test]
async fn broken_platform_documents_are_refused_by_name() {
    let hub = hub().await;
    let (status, body) = hub.apply_yaml("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Policy\nmetadata: {name: broken}\nspec:\n  rego: \"package x\\ndeny contains msg if {\"\n", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["document"], "request body");
    assert!(body["details"][0]["message"].as_str().expect("message").contains("not valid Rego"), "{body}");
    let (status, body) = hub
        .apply_yaml("apiVersion: platform.heimdall.dev/v1alpha1\nkind: TraitDefinition\nmetadata: {name: t}\nspec:\n  template:\n    patch: {spec: {replicas: \"${{ parameters. }}\"}}\n", "")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["path"], "spec.template.patch.spec.replicas", "{body}");
}

#[tokio::test]
async fn a_platform_change_re_renders_existing_applications() {
    let hub = hub().await;
    hub.apply_yaml(&web("web", "registry.example.com/shop/web:1.0"), "").await;
    let policy = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Policy\nmetadata: {name: no-web}\nspec:\n  rego: |\n    package heimdall.noweb\n    deny contains \"web is retired\" if { input.app.name == \"web\" }\n";
    let (status, body) = hub.apply_yaml(policy, "").await;
    assert_eq!(status, StatusCode::OK, "a new policy is accepted even if existing apps break it: {body}");
    heimdall_hub::reconcile::render_all(&hub.state).await.expect("re-render");
    let app = hub.application("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Blocked", "{app}");
    assert!(app["status"]["targets"][0]["messages"][0].as_str().expect("message").contains("web is retired"));
}

#[tokio::test]
async fn warn_only_enforcement_reports_without_blocking() {
    let hub = hub().await;
    let defaults =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform/defaults.yaml")).expect("read");
    let (status, body) =
        hub.apply_yaml(&defaults.replace("environments: [dev]", "environments: [dev]\n  policyEnforcement: warn"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = hub.apply_yaml(&web("web", "docker.io/nginx:1.27"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let app = hub.application("shop", "web").await;
    assert_eq!(app["status"]["phase"], "Rendered");
    assert!(app["status"]["targets"][0]["messages"][0].as_str().expect("message").contains("Warn"), "{app}");
}
