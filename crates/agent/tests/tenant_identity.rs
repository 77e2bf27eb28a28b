//! Defence in depth: the agent applies a tenant's objects as the tenant's
//! identity, so the cluster refuses what the tenant may not do even when a
//! repository holds it (written there directly, bypassing admission). The
//! agent runs with exactly the install manifest's rights, and the fake API
//! server enforces impersonation and RBAC as a real one does.

use std::collections::BTreeMap;

use heimdall_agent::cluster::Cluster;
use heimdall_agent::sync::Inventory;
use heimdall_hub::install::{InstallOptions, manifests};
use heimdall_model::{decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, render};
use heimdall_testsupport::fake_kube::{FakeKube, UserInfo};
use serde_json::{Value, json};

const PLATFORM: &str = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Environment
metadata: {name: dev}
spec: {clusterSelector: {matchLabels: {env: dev}}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: dev-1, labels: {env: dev}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Tenant
metadata: {name: shop}
spec:
  environments: [dev]
  members:
    - {kind: Group, name: shop-devs, role: developer}
    - {kind: User, name: alice@example.com, role: owner}
---
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: web, namespace: shop}
spec:
  components:
    - name: web
      type: webservice
      properties: {image: registry.example.com/shop/web:1, port: 8080}
  policies:
    - {name: dev, type: topology, properties: {environment: dev}}
"#;

const AGENT_TOKEN: &str = "agent-service-account-token";

/// A fake cluster where the agent holds only what the install manifest grants.
async fn cluster_with_installed_agent() -> (FakeKube, Cluster, tempfile::TempDir) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeKube::start().await;
    let options = InstallOptions {
        cluster: "dev-1".into(),
        hub_url: "https://hub.example.com".into(),
        join_token: "hdl_join".into(),
        image: "heimdall:test".into(),
        namespace: "heimdall-system".into(),
        namespaces: None,
        hub_ca: None,
    };
    for manifest in manifests(&options) {
        if !matches!(manifest["kind"].as_str(), Some("Deployment" | "Secret")) {
            fake.create(manifest);
        }
    }
    fake.add_token(AGENT_TOKEN, UserInfo::service_account("heimdall-system", "heimdall-agent"));
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig_with(AGENT_TOKEN)).expect("kubeconfig");
    let cluster = Cluster::connect(Some(&kubeconfig)).await.expect("connect");
    (fake, cluster, dir)
}

/// The repository the hub would write: the tenant's folder and the application's, as rendered.
fn rendered_repository() -> BTreeMap<String, String> {
    let resources: Vec<_> = parse_documents(PLATFORM, "platform.yaml")
        .expect("parse")
        .iter()
        .map(|d| decode(&d.value, &d.source, "default").unwrap_or_else(|e| panic!("{e}")).resource)
        .collect();
    let platform = Platform::from_resources(&resources).unwrap_or_else(|e| panic!("{e:?}"));
    let mut files = BTreeMap::new();
    for (resource, folder) in [(&resources[2], "heimdall.tenants/shop"), (&resources[3], "shop/web")] {
        let rendered = render(resource, "test", &platform, &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        for object in &rendered.targets[0].objects {
            files.insert(file(folder, object), serde_saphyr::to_string(object).expect("yaml"));
        }
    }
    files
}

fn file(folder: &str, object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
    let namespace = object["metadata"]["namespace"].as_str().map(|ns| format!("{ns}-")).unwrap_or_default();
    format!("{folder}/{kind}-{namespace}{}.yaml", object["metadata"]["name"].as_str().unwrap_or_default())
}

/// Objects a tenant may not deploy, in the application's folder, as if written to the repository directly.
fn planted() -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/app": "web", "heimdall.dev/tenant": "shop"});
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "take-over", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "planted", "namespace": "kube-system", "labels": labels,
            "annotations": {"heimdall.dev/apply-as": "tenant"}}, "data": {"a": "b"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mine", "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "everything", "namespace": "shop", "labels": labels},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "lifted", "namespace": "shop", "labels": labels},
            "spec": {"hard": {"pods": "100000"}}}),
    ]
}

#[tokio::test]
async fn the_cluster_refuses_what_a_tenant_may_not_do_even_from_the_repository() {
    let (fake, cluster, _dir) = cluster_with_installed_agent().await;
    let mut files = rendered_repository();
    for object in planted() {
        files.insert(file("shop/web", &object), serde_saphyr::to_string(&object).expect("yaml"));
    }
    let mut inventory = Inventory::default();
    let outcome = heimdall_agent::sync_once(&cluster, &files, &mut inventory, 4).await;

    // The tenant's folder is platform content: the agent applied it with its own rights.
    assert!(fake.get("v1", "ServiceAccount", "heimdall-tenants", "shop").is_some(), "{:?}", outcome.errors);
    assert!(fake.get("rbac.authorization.k8s.io/v1", "RoleBinding", "shop", "heimdall-tenant-developer").is_some());
    // The application's own objects went in as the tenant.
    let deployment = fake.get("apps/v1", "Deployment", "shop", "web").expect("the tenant may deploy into its namespace");
    assert_eq!(deployment["metadata"]["managedFields"][0]["manager"], "heimdall");
    assert!(outcome.applied.iter().any(|r| r.kind == "Deployment" && r.namespace == "shop"));

    // What the tenant may not do, the cluster refused, because of the identity.
    let errors: BTreeMap<&str, &str> = outcome.errors.iter().map(|e| (e.object.as_str(), e.message.as_str())).collect();
    let refused = |object: &str, expected: &str| {
        let message = errors.get(object).unwrap_or_else(|| panic!("{object} was not refused: {errors:#?}"));
        assert!(message.contains("Forbidden") && message.contains(expected), "{object}: {message}");
    };
    let tenant = "User \"system:serviceaccount:heimdall-tenants:shop\"";
    refused("ClusterRoleBinding take-over", &format!("{tenant} cannot patch resource \"clusterrolebindings\""));
    refused("ConfigMap kube-system/planted", "in the namespace \"kube-system\"");
    refused("Namespace mine", &format!("{tenant} cannot patch resource \"namespaces\""));
    refused("Role shop/everything", "is attempting to grant RBAC permissions not currently held");
    refused("ResourceQuota shop/lifted", &format!("{tenant} cannot patch resource \"resourcequotas\""));
    assert!(fake.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "take-over").is_none());
    assert!(fake.get("v1", "ConfigMap", "kube-system", "planted").is_none());
    assert!(fake.get("v1", "Namespace", "", "mine").is_none());
    assert_eq!(outcome.folders["shop/web"].sync, "Failed");
    assert!(!fake.refusals().is_empty());

    // Pruning is the tenant's too: what it applied goes when the folder does.
    let tenant_folder_only: BTreeMap<String, String> =
        files.into_iter().filter(|(path, _)| path.starts_with("heimdall.tenants/")).collect();
    let outcome = heimdall_agent::sync_once(&cluster, &tenant_folder_only, &mut inventory, 4).await;
    assert!(outcome.pruned.iter().any(|r| r.kind == "Deployment"), "{:?} {:?}", outcome.pruned, outcome.errors);
    assert!(fake.get("apps/v1", "Deployment", "shop", "web").is_none());
}

#[tokio::test]
async fn the_installed_agent_may_impersonate_tenants_accounts_and_no_one_else() {
    let (fake, _cluster, _dir) = cluster_with_installed_agent().await;
    let http = reqwest::Client::new();
    let try_as = |user: &'static str| {
        http.get(format!("{}/api/v1/namespaces/shop/configmaps", fake.url()))
            .bearer_auth(AGENT_TOKEN)
            .header("Impersonate-User", user)
            .send()
    };
    for user in
        ["system:serviceaccount:kube-system:default", "system:serviceaccount:heimdall-system:heimdall-agent", "alice", "system:admin"]
    {
        let response = try_as(user).await.expect("answers");
        assert_eq!(response.status().as_u16(), 403, "{user}");
        let status: Value = response.json().await.expect("a Status");
        assert_eq!(status["reason"], "Forbidden");
        assert!(status["message"].as_str().unwrap_or_default().contains("cannot impersonate"), "{status}");
    }
    let groups = http
        .get(format!("{}/api/v1/namespaces/shop/configmaps", fake.url()))
        .bearer_auth(AGENT_TOKEN)
        .header("Impersonate-User", "system:serviceaccount:heimdall-tenants:shop")
        .header("Impersonate-Group", "system:masters")
        .send()
        .await
        .expect("answers");
    assert_eq!(groups.status().as_u16(), 403, "nor groups, system:masters least of all");
    let tenant = try_as("system:serviceaccount:heimdall-tenants:shop").await.expect("answers");
    assert_eq!(tenant.status().as_u16(), 403, "impersonation is allowed, but the tenant has no rights in a cluster without its folder");
    let status: Value = tenant.json().await.expect("a Status");
    assert!(
        status["message"].as_str().unwrap_or_default().contains("system:serviceaccount:heimdall-tenants:shop\" cannot list"),
        "{status}"
    );
}

#[tokio::test]
async fn an_object_with_an_unknown_identity_mark_is_not_applied() {
    let (fake, cluster, _dir) = cluster_with_installed_agent().await;
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "odd", "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/tenant": "shop"}, "annotations": {"heimdall.dev/apply-as": "root"}}});
    let files = BTreeMap::from([("shop/web/configmap-odd.yaml".to_string(), serde_saphyr::to_string(&object).expect("yaml"))]);
    let outcome = heimdall_agent::sync_once(&cluster, &files, &mut Inventory::default(), 4).await;
    assert!(outcome.applied.is_empty());
    assert_eq!(outcome.folders["shop/web"].sync, "Failed");
    assert!(
        outcome.folders["shop/web"].messages.iter().any(|m| m.contains("\"root\" is neither tenant nor platform")),
        "{:?}",
        outcome.folders
    );
    assert_eq!(fake.requests("apply"), 0);
}

#[tokio::test]
async fn an_object_labelled_for_another_tenant_is_not_applied_as_either() {
    let (fake, cluster, _dir) = cluster_with_installed_agent().await;
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "payments",
        "labels": {"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/tenant": "shop"}}});
    // `payments--web` would read as tenant payments' folder; the object says shop.
    let files = BTreeMap::from([("shop/payments--web/configmap-x.yaml".to_string(), serde_saphyr::to_string(&object).expect("yaml"))]);
    let outcome = heimdall_agent::sync_once(&cluster, &files, &mut Inventory::default(), 4).await;
    assert!(outcome.applied.is_empty());
    let messages = &outcome.folders["shop/payments--web"].messages;
    assert!(
        messages.iter().any(|m| m.contains("is tenant payments's, but the object is labelled heimdall.dev/tenant=Some(\"shop\")")),
        "{messages:?}"
    );
    assert_eq!(fake.requests("apply"), 0);
}

#[tokio::test]
async fn another_tenants_object_is_not_taken_over() {
    let (fake, cluster, _dir) = cluster_with_installed_agent().await;
    let mut files = rendered_repository();
    fake.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/tenant": "payments"}}, "data": {"owner": "payments"}}));
    let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/tenant": "shop", "heimdall.dev/app": "web"}}, "data": {"owner": "shop"}});
    files.insert("shop/web/configmap-settings.yaml".into(), serde_saphyr::to_string(&mine).expect("yaml"));
    let outcome = heimdall_agent::sync_once(&cluster, &files, &mut Inventory::default(), 4).await;
    let error = outcome.errors.iter().find(|e| e.object == "ConfigMap shop/settings").expect("refused");
    assert!(error.message.contains("is tenant payments's"), "{}", error.message);
    assert_eq!(fake.get("v1", "ConfigMap", "shop", "settings").expect("kept")["data"]["owner"], "payments");
}
