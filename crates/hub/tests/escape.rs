//! The reproduction of a tenant taking over a cluster, through the API as a
//! tenant's developer and owner would try it: every object outside the
//! tenant is refused at admission, naming the document, the component, the
//! object and the rule, and nothing is stored or committed. The platform
//! team writing the same objects outside any tenant gets them delivered.

mod common;

use axum::http::StatusCode;
use common::TestHub;
use serde_json::Value;

/// What the outside security test committed as shop: cluster-admin for shop's
/// default account, a Namespace, a ConfigMap in payments and a Deployment in
/// payments mounting payments' Secret.
fn takeover(namespace: &str) -> String {
    format!(
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: takeover, namespace: {namespace}, annotations: {{secrets.heimdall.dev/unmanaged: payments-db}}}}
spec:
  components:
    - name: raw
      type: k8s-objects
      properties:
        objects:
          - apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {{name: shop-admin}}
            roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
            subjects: [{{kind: ServiceAccount, name: default, namespace: shop}}]
          - {{apiVersion: v1, kind: Namespace, metadata: {{name: shop-extra}}}}
          - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: planted, namespace: payments}}, data: {{a: b}}}}
          - apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: exfiltrate, namespace: payments}}
            spec:
              selector: {{matchLabels: {{app: x}}}}
              template:
                metadata: {{labels: {{app: x}}}}
                spec:
                  containers: [{{name: x, image: registry.example.com/base/busybox:1, volumeMounts: [{{name: s, mountPath: /s}}]}}]
                  volumes: [{{name: s, secret: {{secretName: payments-db}}}}]
  policies:
    - {{name: dev, type: topology, properties: {{clusters: [dev-eu-1]}}}}
"#
    )
}

#[tokio::test]
async fn a_tenant_cannot_place_objects_outside_itself_and_nothing_is_stored() {
    let hub = TestHub::with_example_platform().await;
    let head = hub.state.repos.head("dev-eu-1").expect("head");
    for role in ["tenant:shop:developer", "tenant:shop:owner"] {
        let token = hub.token_for(role).await;
        let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", takeover("shop"), Some(&token)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{role}: {body}");
        let details = body["details"].as_array().expect("details");
        let refused = |object: &str, rule: &str| {
            assert!(
                details.iter().any(|d| d["document"] == "request body"
                    && d["path"] == "spec.components[0]"
                    && d["message"].as_str().is_some_and(|m| m.contains(object) && m.contains(rule))),
                "{role}: {object} not refused for {rule:?}: {body:#}"
            )
        };
        let by = "component raw (k8s-objects) renders";
        refused(&format!("{by} ClusterRoleBinding shop-admin, which tenant shop may not deploy"), "never a tenant's");
        refused("Namespace shop-extra", "never a tenant's");
        refused("ConfigMap payments/planted", "namespace payments is not tenant shop's");
        refused("Deployment payments/exfiltrate", "namespace payments is not tenant shop's");
        let (status, _) = hub.get("/api/v1/namespaces/shop/applications/takeover").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
    }
    assert_eq!(hub.state.repos.head("dev-eu-1").expect("head"), head, "nothing committed");
}

#[tokio::test]
async fn the_platform_team_may_deploy_the_same_objects_outside_any_tenant() {
    let hub = TestHub::with_example_platform().await;
    let (status, body) = hub.apply_yaml(&takeover("platform"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let head = hub.state.repos.head("dev-eu-1").expect("head").expect("a commit");
    let files = hub.state.repos.files_at("dev-eu-1", &head, "platform/takeover").expect("files");
    let binding = files.iter().find(|(name, _)| name.starts_with("clusterrolebinding-")).expect("delivered").1;
    assert!(binding.contains("heimdall.dev/apply-as: platform"), "applied with the agent's rights: {binding}");
}

#[tokio::test]
async fn rbac_kinds_are_an_owners_and_stay_inside_the_tenant() {
    let hub = TestHub::with_example_platform().await;
    let app = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: ci, namespace: shop}
spec:
  components:
    - name: ci
      type: webservice
      properties: {image: registry.example.com/shop/ci:1}
      traits:
        - type: service-account
          properties: {name: ci, create: true, privileges: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]}
  policies:
    - {name: dev, type: topology, properties: {clusters: [dev-eu-1]}}
"#;
    let developer = hub.token_for("tenant:shop:developer").await;
    let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", app, Some(&developer)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("Role shop/ci:ci, which tenant shop may not deploy: Role (API group rbac.authorization.k8s.io) is not a kind tenant developers may deploy"), "{body}");
    let owner = hub.token_for("tenant:shop:owner").await;
    let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", app, Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "owners give their workloads namespaced rights: {body}");
    let status: Value = hub.application("shop", "ci").await["status"].clone();
    assert_eq!(status["phase"], "Rendered", "{status}");
}

#[tokio::test]
async fn a_token_outliving_its_tenant_writes_nothing_and_goes_with_it() {
    let hub = TestHub::with_example_platform().await;
    let tenant = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata: {name: search}\nspec: {environments: [dev]}\n";
    assert_eq!(hub.apply_yaml(tenant, "").await.0, StatusCode::OK);
    let developer = hub.token_for("tenant:search:developer").await;
    let ghost = hub.token_for("tenant:ghost:developer").await;
    // A role in a tenant that does not exist: the namespace is the platform team's.
    let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", takeover("ghost"), Some(&ghost)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = hub.call("DELETE", "/api/v1/tenants/search", "", axum::body::Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(hub.store.token_named("token:tenant-search-developer").await.expect("read").is_none(), "revoked with its tenant");
    let (status, _) = hub.call_with("POST", "/api/v1/apply", "application/yaml", takeover("search"), Some(&developer)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
