//! Secrets in a render: references checked against the catalog, what each
//! cluster's delivery mode gets (snapshots: the ExternalSecret of an
//! `external` cluster, the secrets to seal for an `agent` cluster), Score's
//! `secret` resources, and the checksum that rolls pods.

use std::sync::Arc;

mod common;

use common::resources;
use heimdall_model::Resource;
use heimdall_render::secrets::CatalogEntry;
use heimdall_render::{Platform, RenderOptions, SecretCatalog, render};
use serde_json::{Value, json};

const PLATFORM: &str = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {clusterSelector: {matchLabels: {env: dev}}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Environment
metadata: {name: prod}
spec:
  clusterSelector: {matchLabels: {env: prod}}
  secretStore: {name: vault, keyPrefix: heimdall/, refreshInterval: 15m}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: dev-1, labels: {env: dev}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: prod-1, labels: {env: prod}}
spec: {secrets: {delivery: external}}
"#;

const APP: &str = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: web
  namespace: shop
  annotations: {secrets.heimdall.dev/rollout: "true"}
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: registry.example.com/shop/web:1
        env:
          - name: DB_PASSWORD
            valueFrom: {secretKeyRef: {name: web-db, key: password}}
      traits:
        - type: storage
          properties:
            secret: [{name: web-tls, mountPath: /etc/tls}]
  policies:
    - {name: everywhere, type: topology, properties: {clusterLabelSelector: {}}}
"#;

fn platform() -> Platform {
    Platform::from_resources(&resources(PLATFORM)).unwrap_or_else(|e| panic!("{e:?}"))
}

fn catalog(password_version: i64) -> Arc<SecretCatalog> {
    let mut catalog = SecretCatalog::default();
    catalog.insert("shop", "web-db", CatalogEntry { type_: "Opaque".into(), keys: [("password".to_string(), password_version)].into() });
    catalog.insert(
        "shop",
        "web-tls",
        CatalogEntry { type_: "kubernetes.io/tls".into(), keys: [("tls.crt".to_string(), 1), ("tls.key".to_string(), 1)].into() },
    );
    Arc::new(catalog)
}

fn options(catalog: Arc<SecretCatalog>) -> RenderOptions {
    RenderOptions { secrets: Some(catalog), ..Default::default() }
}

fn app(yaml: &str) -> Resource {
    resources(yaml).remove(0)
}

fn objects_of<'a>(rendered: &'a heimdall_render::Rendered, cluster: &str) -> &'a [Value] {
    &rendered.targets.iter().find(|t| t.cluster == cluster).unwrap_or_else(|| panic!("no target {cluster}")).objects
}

#[test]
fn each_delivery_mode_gets_its_objects() {
    let rendered = render(&app(APP), "web.yaml", &platform(), &options(catalog(1))).unwrap_or_else(|e| panic!("{e}"));
    // An external cluster reads the environment's store: ExternalSecrets, nothing to seal.
    let external: Vec<&Value> = objects_of(&rendered, "prod-1").iter().filter(|o| o["kind"] == "ExternalSecret").collect();
    insta::assert_yaml_snapshot!("external_secrets", external);
    let prod = rendered.targets.iter().find(|t| t.cluster == "prod-1").expect("prod");
    assert!(prod.secrets.is_empty(), "no value passes through Heimdall for an external cluster");
    // An agent cluster gets the secrets to seal, with their versions; no Secret object is rendered.
    let dev = rendered.targets.iter().find(|t| t.cluster == "dev-1").expect("dev");
    insta::assert_yaml_snapshot!("agent_secret_uses", dev.secrets);
    assert!(dev.objects.iter().all(|o| o["kind"] != "Secret" && o["kind"] != "ExternalSecret"));
}

#[test]
fn a_new_version_changes_the_checksum_and_the_revision() {
    let render_with = |version| render(&app(APP), "web.yaml", &platform(), &options(catalog(version))).unwrap_or_else(|e| panic!("{e}"));
    let (before, after) = (render_with(1), render_with(2));
    let checksum = |rendered: &heimdall_render::Rendered| {
        objects_of(rendered, "dev-1")
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .and_then(|d| d.pointer("/spec/template/metadata/annotations/secrets.heimdall.dev~1checksum").cloned())
            .expect("checksum")
    };
    assert_ne!(checksum(&before), checksum(&after));
    let revision =
        |rendered: &heimdall_render::Rendered| rendered.targets.iter().find(|t| t.cluster == "dev-1").map(|t| t.revision.clone());
    assert_ne!(revision(&before), revision(&after));
    // Without the annotation, pods are left alone.
    let quiet = APP.replace("  annotations: {secrets.heimdall.dev/rollout: \"true\"}\n", "");
    let rendered = render(&app(&quiet), "web.yaml", &platform(), &options(catalog(1))).unwrap_or_else(|e| panic!("{e}"));
    let deployment = objects_of(&rendered, "dev-1").iter().find(|o| o["kind"] == "Deployment").expect("deployment");
    assert!(deployment.pointer("/spec/template/metadata/annotations/secrets.heimdall.dev~1checksum").is_none());
}

#[test]
fn missing_secrets_and_keys_are_refused_with_where_they_are_read() {
    let mut empty = SecretCatalog::default();
    empty.insert("shop", "web-tls", CatalogEntry { type_: "Opaque".into(), keys: [("tls.crt".to_string(), 1)].into() });
    let error = render(&app(APP), "web.yaml", &platform(), &options(Arc::new(empty))).expect_err("missing").to_string();
    assert!(error.contains("web.yaml"), "{error}");
    assert!(
        error.contains(
            "Deployment web: spec.template.spec.containers[0].env[0] reads secret \"web-db\", which does not exist in namespace shop"
        ),
        "{error}"
    );
    assert!(error.contains("heimdall secret set shop/web-db password"), "{error}");
    let wrong_key = APP.replace("key: password", "key: pasword");
    let error = render(&app(&wrong_key), "web.yaml", &platform(), &options(catalog(1))).expect_err("missing key").to_string();
    assert!(error.contains("reads key pasword of secret shop/web-db, which has only: password"), "{error}");
    // Named as provided by something else in the cluster: not looked for.
    let unmanaged = APP.replace("secrets.heimdall.dev/rollout: \"true\"", "secrets.heimdall.dev/unmanaged: web-db");
    let mut tls_only = SecretCatalog::default();
    tls_only.insert("shop", "web-tls", CatalogEntry { type_: "Opaque".into(), keys: [("tls.crt".to_string(), 1)].into() });
    render(&app(&unmanaged), "web.yaml", &platform(), &options(Arc::new(tls_only))).unwrap_or_else(|e| panic!("{e}"));
    // Outside the hub (no catalog) nothing is checked.
    render(&app(APP), "web.yaml", &platform(), &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn score_secret_resources_become_secret_key_refs_and_volumes() {
    let workload = app(r#"
apiVersion: score.dev/v1b1
kind: Workload
metadata: {name: api, namespace: shop}
spec:
  containers:
    api:
      image: registry.example.com/shop/api:1
      variables:
        DB_PASSWORD: ${resources.db.password}
        DATABASE_URL: postgres://app:${resources.db.password}@db:5432/app
      volumes:
        /etc/creds: {source: "${resources.creds}"}
  resources:
    db: {type: secret, params: {name: web-db}}
    creds: {type: secret}
"#);
    let mut catalog = SecretCatalog::default();
    catalog.insert("shop", "web-db", CatalogEntry { type_: "Opaque".into(), keys: [("password".to_string(), 1)].into() });
    catalog.insert("shop", "creds", CatalogEntry { type_: "Opaque".into(), keys: [("token".to_string(), 3)].into() });
    let options = RenderOptions { secrets: Some(Arc::new(catalog)), environment: Some("dev".into()), ..Default::default() };
    let rendered = render(&workload, "score.yaml", &platform(), &options).unwrap_or_else(|e| panic!("{e}"));
    let deployment = objects_of(&rendered, "dev-1").iter().find(|o| o["kind"] == "Deployment").expect("deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    insta::assert_yaml_snapshot!("score_secret_env", container["env"]);
    assert_eq!(deployment["spec"]["template"]["spec"]["volumes"], json!([{"name": "secret-creds", "secret": {"secretName": "creds"}}]));
    let target = rendered.targets.iter().find(|t| t.cluster == "dev-1").expect("dev");
    let names: Vec<&str> = target.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["creds", "web-db"]);
    // A secret in a file's content would be a ConfigMap in plain text: refused.
    let in_file = app(r#"
apiVersion: score.dev/v1b1
kind: Workload
metadata: {name: api, namespace: shop}
spec:
  containers:
    api:
      image: registry.example.com/shop/api:1
      files:
        /etc/app.conf: {content: "password=${resources.db.password}"}
  resources:
    db: {type: secret}
"#);
    let error = render(&in_file, "score.yaml", &platform(), &RenderOptions::default()).expect_err("file").to_string();
    assert!(error.contains("may not read a secret"), "{error}");
}
