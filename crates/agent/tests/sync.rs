//! The agent's sync pass against the fake API server: apply, prune, drift,
//! hints, CRDs, health, state and leases.

use std::collections::BTreeMap;

use heimdall_agent::cluster::Cluster;
use heimdall_agent::desired::ObjectRef;
use heimdall_agent::health::Health;
use heimdall_agent::lease::Lease;
use heimdall_agent::state::{AgentState, StateStore};
use heimdall_agent::sync::Inventory;
use heimdall_testsupport::fake_kube::FakeKube;
use serde_json::{Value, json};

struct Setup {
    fake: FakeKube,
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeKube::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig()).expect("write kubeconfig");
    let cluster = Cluster::connect(Some(&kubeconfig)).await.expect("connect");
    Setup { fake, cluster, _dir: dir }
}

fn labelled(mut object: Value, app: &str) -> Value {
    object["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/app": app});
    object
}

fn deployment(name: &str, image: &str, replicas: i64) -> Value {
    labelled(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name, "heimdall.dev/app": name}},
                    "spec": {"containers": [{"name": name, "image": image}]}}}}),
        name,
    )
}

fn config_map(name: &str, annotations: Value) -> Value {
    labelled(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop", "annotations": annotations}, "data": {"k": "v"}}),
        "web",
    )
}

/// Repository files for `shop/web` holding `objects`, as the platform
/// team's (applied with the agent's own rights; see `tenant_identity.rs`
/// for what a tenant's objects are applied as).
fn files(objects: &[Value]) -> BTreeMap<String, String> {
    objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            if !o["metadata"]["annotations"].is_object() {
                o["metadata"]["annotations"] = json!({});
            }
            o["metadata"]["annotations"]["heimdall.dev/apply-as"] = json!("platform");
            let kind = o["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            (format!("shop/web/{kind}-{name}.yaml"), serde_saphyr::to_string(&o).expect("yaml"))
        })
        .collect()
}

fn reference(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef { api_version: api_version.into(), kind: kind.into(), namespace: namespace.into(), name: name.into() }
}

#[tokio::test]
async fn applies_prunes_and_repairs_drift() {
    let Setup { fake, cluster, .. } = setup().await;
    let mut inventory = Inventory::default();
    let desired = files(&[deployment("web", "nginx:1", 1), config_map("web-config", json!({}))]);

    let first = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.applied.len(), 2);
    let namespace = fake.get("v1", "Namespace", "", "shop").expect("the missing namespace was created");
    assert_eq!(namespace["metadata"]["annotations"]["heimdall.dev/created-by"], "agent");
    let live = fake.get("apps/v1", "Deployment", "shop", "web").expect("deployment applied");
    assert_eq!(live["metadata"]["managedFields"][0]["manager"], "heimdall");
    assert_eq!(inventory.entries.len(), 2, "the namespace is not the agent's to prune");

    let writes = fake.requests("apply");
    let quiet = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    assert!(quiet.applied.is_empty() && quiet.drift.is_empty());
    assert_eq!(fake.requests("apply"), writes, "a pass over an unchanged cluster writes nothing");

    assert!(fake.mutate("apps/v1", "Deployment", "shop", "web", |d| d["spec"]["replicas"] = json!(5)));
    assert!(fake.remove("v1", "ConfigMap", "shop", "web-config"));
    let repaired = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    let drift: Vec<String> = repaired.drift.iter().map(ToString::to_string).collect();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(drift.contains(&"Deployment shop/web".to_string()) && drift.contains(&"ConfigMap shop/web-config".to_string()));
    assert_eq!(fake.get("apps/v1", "Deployment", "shop", "web").expect("deployment")["spec"]["replicas"], 1);
    assert!(fake.get("v1", "ConfigMap", "shop", "web-config").is_some());

    let fewer = files(&[deployment("web", "nginx:2", 1)]);
    let pruned = heimdall_agent::sync_once(&cluster, &fewer, &mut inventory, 4).await;
    assert_eq!(pruned.pruned, vec![reference("v1", "ConfigMap", "shop", "web-config")]);
    assert!(fake.get("v1", "ConfigMap", "shop", "web-config").is_none());
    assert_eq!(
        fake.get("apps/v1", "Deployment", "shop", "web").expect("deployment")["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert!(pruned.drift.is_empty(), "a changed desired state is not drift");

    // The whole application folder gone: everything it had goes too.
    let gone = heimdall_agent::sync_once(&cluster, &BTreeMap::new(), &mut inventory, 4).await;
    assert_eq!(gone.pruned.len(), 1);
    assert!(inventory.entries.is_empty());
    assert!(fake.get("v1", "Namespace", "", "shop").is_some(), "an implicitly created namespace is never deleted");
}

/// Prune deletes only what is still labelled as Heimdall's: an object whose
/// label someone removed is someone else's now (forgotten, kept), and an
/// unreadable file keeps its folder's objects.
#[tokio::test]
async fn prune_spares_what_is_no_longer_labelled_and_what_an_unreadable_file_holds() {
    let Setup { fake, cluster, .. } = setup().await;
    let mut inventory = Inventory::default();
    let desired = files(&[config_map("claimed", json!({})), config_map("kept", json!({}))]);
    let first = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);

    assert!(fake.mutate("v1", "ConfigMap", "shop", "claimed", |o| o["metadata"]["labels"] = json!({"team": "theirs"})));
    let mut broken = files(&[config_map("kept", json!({}))]);
    broken.insert("shop/web/broken.yaml".into(), "kind: [\n".into());
    let pass = heimdall_agent::sync_once(&cluster, &broken, &mut inventory, 4).await;
    assert!(pass.pruned.is_empty(), "an unreadable file keeps its folder: {:?}", pass.pruned);
    assert!(fake.get("v1", "ConfigMap", "shop", "claimed").is_some());
    assert!(fake.get("v1", "ConfigMap", "shop", "kept").is_some());

    // With the folder readable again and empty, what is still Heimdall's goes; the rest is forgotten.
    let gone = heimdall_agent::sync_once(&cluster, &BTreeMap::new(), &mut inventory, 4).await;
    assert_eq!(gone.pruned, vec![reference("v1", "ConfigMap", "shop", "kept")]);
    assert!(fake.get("v1", "ConfigMap", "shop", "claimed").is_some(), "no longer Heimdall's: not deleted");
    assert!(inventory.entries.is_empty(), "and forgotten");
}

#[tokio::test]
async fn never_touches_what_it_did_not_create_and_one_failure_stops_nothing() {
    let Setup { fake, cluster, .. } = setup().await;
    fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    fake.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foreign", "namespace": "shop"}, "data": {"owner": "someone"}}));
    fake.forbid("networking.k8s.io", "networkpolicies");
    let policy = labelled(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}),
        "web",
    );
    let mut nowhere = config_map("nowhere", json!({}));
    nowhere["metadata"].as_object_mut().expect("metadata").remove("namespace");
    let desired = files(&[config_map("foreign", json!({})), policy, config_map("mine", json!({})), nowhere]);
    let mut inventory = Inventory::default();
    let outcome = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;

    assert_eq!(outcome.applied, vec![reference("v1", "ConfigMap", "shop", "mine")]);
    let errors: BTreeMap<&str, &str> = outcome.errors.iter().map(|e| (e.object.as_str(), e.message.as_str())).collect();
    assert!(errors["ConfigMap shop/foreign"].contains("not managed by Heimdall"), "{errors:?}");
    assert!(errors["NetworkPolicy shop/deny"].contains("Forbidden"), "{errors:?}");
    assert!(errors["ConfigMap nowhere"].contains("names no metadata.namespace"), "{errors:?}");
    assert_eq!(fake.get("v1", "ConfigMap", "shop", "foreign").expect("kept")["data"]["owner"], "someone");
    assert_eq!(outcome.folders["shop/web"].sync, "Failed");

    // Pruning everything deletes only what the agent applied.
    let outcome = heimdall_agent::sync_once(&cluster, &BTreeMap::new(), &mut inventory, 4).await;
    assert_eq!(outcome.pruned, vec![reference("v1", "ConfigMap", "shop", "mine")]);
    assert!(fake.get("v1", "ConfigMap", "shop", "foreign").is_some());

    // A take-over policy adopts it; adopted objects are never deleted.
    let adopt = files(&[config_map("foreign", json!({"heimdall.dev/take-over": "true"}))]);
    let adopted = heimdall_agent::sync_once(&cluster, &adopt, &mut inventory, 4).await;
    assert!(adopted.errors.is_empty(), "{:?}", adopted.errors);
    assert_eq!(fake.get("v1", "ConfigMap", "shop", "foreign").expect("adopted")["data"]["k"], "v");
    let released = heimdall_agent::sync_once(&cluster, &BTreeMap::new(), &mut inventory, 4).await;
    assert!(released.pruned.is_empty());
    assert!(fake.get("v1", "ConfigMap", "shop", "foreign").is_some());
}

#[tokio::test]
async fn garbage_collection_and_apply_once_hints_are_honoured() {
    let Setup { fake, cluster, .. } = setup().await;
    let mut scaled = deployment("web", "nginx:1", 2);
    scaled["metadata"]["annotations"] = json!({"heimdall.dev/apply-once": "spec.replicas"});
    let kept = config_map("keep", json!({"heimdall.dev/gc": "never"}));
    let until_delete = config_map("until-delete", json!({"heimdall.dev/gc": "on-app-delete"}));
    let mut inventory = Inventory::default();
    heimdall_agent::sync_once(&cluster, &files(&[scaled.clone(), kept, until_delete]), &mut inventory, 4).await;

    // An autoscaler changed the replicas: that is not drift.
    fake.mutate("apps/v1", "Deployment", "shop", "web", |d| d["spec"]["replicas"] = json!(7));
    let mut next = scaled.clone();
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let outcome = heimdall_agent::sync_once(&cluster, &files(&[next.clone()]), &mut inventory, 4).await;
    let live = fake.get("apps/v1", "Deployment", "shop", "web").expect("deployment");
    assert_eq!(live["spec"]["replicas"], 7);
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert!(outcome.drift.is_empty());
    assert!(fake.get("v1", "ConfigMap", "shop", "keep").is_some(), "gc: never");
    assert!(fake.get("v1", "ConfigMap", "shop", "until-delete").is_some(), "gc: on-app-delete while the app exists");

    heimdall_agent::sync_once(&cluster, &BTreeMap::new(), &mut inventory, 4).await;
    assert!(fake.get("v1", "ConfigMap", "shop", "until-delete").is_none(), "gone with its application");
    assert!(fake.get("v1", "ConfigMap", "shop", "keep").is_some());
}

#[tokio::test]
async fn crds_come_first_and_their_kinds_are_usable_in_the_same_pass() {
    let Setup { fake, cluster, .. } = setup().await;
    let crd = labelled(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "databases.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Database", "plural": "databases"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        "web",
    );
    let database = labelled(
        json!({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "orders", "namespace": "shop"}, "spec": {"size": 1}}),
        "web",
    );
    let mut inventory = Inventory::default();
    let outcome = heimdall_agent::sync_once(&cluster, &files(&[database, crd]), &mut inventory, 4).await;
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert!(fake.get("example.com/v1", "Database", "shop", "orders").is_some());
    assert_eq!(outcome.folders["shop/web"].health, Health::Healthy);
}

#[tokio::test]
async fn health_follows_the_live_objects() {
    let Setup { fake, cluster, .. } = setup().await;
    let mut inventory = Inventory::default();
    let desired = files(&[deployment("web", "nginx:1", 2)]);
    let outcome = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    assert_eq!(outcome.folders["shop/web"].health, Health::Progressing);

    assert!(fake.roll_out("shop", "web"));
    let outcome = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    assert_eq!(outcome.folders["shop/web"].health, Health::Healthy, "{:?}", outcome.folders["shop/web"].messages);
    assert_eq!(outcome.folders["shop/web"].sync, "Synced");

    fake.create(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "labels": {"heimdall.dev/app": "web"}},
        "status": {"containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
    );
    let outcome = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 4).await;
    let folder = &outcome.folders["shop/web"];
    assert_eq!(folder.health, Health::Degraded);
    assert!(folder.messages.iter().any(|m| m.contains("web-1") && m.contains("CrashLoopBackOff")), "{:?}", folder.messages);

    let mut observed = deployment("missing", "nginx:1", 1);
    observed["metadata"]["annotations"] = json!({"heimdall.dev/read-only": "true"});
    let outcome = heimdall_agent::sync_once(&cluster, &files(&[observed]), &mut inventory, 4).await;
    assert_eq!(outcome.folders["shop/web"].health, Health::Missing);
    assert!(fake.get("apps/v1", "Deployment", "shop", "missing").is_none(), "read-only objects are never written");
}

#[tokio::test]
async fn state_survives_in_a_secret_and_a_file() {
    let Setup { fake, cluster, _dir } = setup().await;
    fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    let mut state = AgentState { cluster: Some("eu-1".into()), credential: Some("hdl_x".into()), ..Default::default() };
    state.inventory.entries.insert(
        reference("v1", "ConfigMap", "shop", "a"),
        heimdall_agent::sync::InventoryEntry {
            folder: "shop/web".into(),
            digest: "d".into(),
            adopted: false,
            gc: Default::default(),
            tenant: Some("shop".into()),
        },
    );
    let secret = StateStore::Secret { namespace: "heimdall-system".into() };
    assert_eq!(secret.load(&cluster).await.expect("empty load"), AgentState::default());
    secret.save(&cluster, &state).await.expect("save");
    assert_eq!(secret.load(&cluster).await.expect("load"), state);
    let stored = fake.get("v1", "Secret", "heimdall-system", "heimdall-agent-state").expect("secret");
    assert!(!stored.to_string().contains("hdl_x"), "the credential is compressed and encoded, not in plain sight");

    let path = _dir.path().join("state").join("agent.state");
    let file = StateStore::File(path.clone());
    file.save(&cluster, &state).await.expect("save file");
    assert_eq!(file.load(&cluster).await.expect("load file"), state);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn one_replica_holds_the_lease() {
    let Setup { fake, cluster, .. } = setup().await;
    fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "heimdall-system"}}));
    let lease = |identity: &str| Lease {
        namespace: "heimdall-system".into(),
        identity: identity.into(),
        duration: std::time::Duration::from_secs(30),
    };
    assert!(lease("a").acquire(&cluster).await.expect("a"));
    assert!(!lease("b").acquire(&cluster).await.expect("b"), "a holds a fresh lease");
    assert!(lease("a").acquire(&cluster).await.expect("renew"));
    fake.mutate("coordination.k8s.io/v1", "Lease", "heimdall-system", "heimdall-agent", |l| {
        l["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z")
    });
    assert!(lease("b").acquire(&cluster).await.expect("b takes over an expired lease"));
    assert!(!lease("a").acquire(&cluster).await.expect("a lost it"));
}
