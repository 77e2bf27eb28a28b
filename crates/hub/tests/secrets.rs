//! Secret delivery per cluster through the hub: a `sealed-secrets` cluster
//! gets a Bitnami SealedSecret sealed to its controller's certificate, an
//! `external` cluster an ExternalSecret (no value needed in Heimdall), and
//! an unchanged secret commits nothing.

mod common;

use base64::Engine;
use common::TestHub;
use serde_json::{Value, json};

/// A real Sealed Secrets controller certificate (public example data, valid until 2031-01-23).
const CERTIFICATE: &str = include_str!("../../secrets/testdata/kseal-example-cert.pem");

fn platform() -> String {
    let indented: String = CERTIFICATE.lines().map(|line| format!("        {line}\n")).collect();
    format!(
        "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Environment\nmetadata: {{name: prod}}\nspec:\n  clusterSelector: {{matchLabels: {{env: prod}}}}\n  secretStore: {{name: vault}}\n---\n\
apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: sealed-1, labels: {{env: prod}}}}\nspec:\n  secrets:\n    delivery: sealed-secrets\n    sealedSecrets:\n      certificate: |\n{indented}---\n\
apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: external-1, labels: {{env: prod}}}}\nspec: {{secrets: {{delivery: external}}}}\n---\n\
apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: shop}}\nspec: {{environments: [prod]}}\n"
    )
}

fn app(secret: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: web, namespace: shop}}\nspec:\n  components:\n    - name: web\n      type: worker\n      properties:\n        image: registry.example.com/shop/web:1\n        env:\n          - name: DB_PASSWORD\n            valueFrom: {{secretKeyRef: {{name: {secret}, key: password}}}}\n  policies:\n    - {{name: where, type: topology, properties: {{clusters: [sealed-1]}}}}\n"
    )
}

fn file(hub: &TestHub, cluster: &str, path: &str) -> Option<Value> {
    let head = hub.state.repos.head(cluster).ok()??;
    let (folder, name) = path.rsplit_once('/')?;
    let files = hub.state.repos.files_at(cluster, &head, folder).ok()?;
    serde_saphyr::from_str(files.get(name)?).ok()
}

#[tokio::test]
async fn sealed_secrets_and_external_clusters_get_their_objects() {
    let hub = TestHub::new().await;
    let (status, body) = hub.apply_yaml(&platform(), "").await;
    assert_eq!(status, 200, "{body}");
    let plaintext = "hunter2-sealed-Qm3";
    let value = base64::engine::general_purpose::STANDARD.encode(plaintext);
    let (status, body) = hub
        .call("PUT", "/api/v1/namespaces/shop/secrets/web-db/keys/password", "application/json", json!({"value": value}).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = hub.apply_yaml(&app("web-db"), "").await;
    assert_eq!(status, 200, "{body}");

    let sealed = file(&hub, "sealed-1", "shop/web/sealedsecret-web-db.yaml").expect("a SealedSecret in the repository");
    assert_eq!(sealed["apiVersion"], "bitnami.com/v1alpha1");
    assert_eq!(sealed["kind"], "SealedSecret");
    assert_eq!((&sealed["metadata"]["name"], &sealed["metadata"]["namespace"]), (&json!("web-db"), &json!("shop")));
    assert_eq!(
        (&sealed["spec"]["template"]["metadata"]["name"], &sealed["spec"]["template"]["metadata"]["namespace"]),
        (&json!("web-db"), &json!("shop"))
    );
    assert_eq!(sealed["spec"]["template"]["type"], "Opaque");
    assert!(sealed["metadata"]["annotations"].get("sealedsecrets.bitnami.com/namespace-wide").is_none(), "strict scope by default");
    assert_eq!(sealed["metadata"]["labels"]["app.kubernetes.io/managed-by"], "heimdall");
    let encrypted = base64::engine::general_purpose::STANDARD
        .decode(sealed["spec"]["encryptedData"]["password"].as_str().expect("password sealed"))
        .expect("base64");
    // kubeseal's layout: 2-byte length, the RSA-4096 session key, then AES-GCM (value + 16-byte tag).
    assert_eq!(u16::from_be_bytes([encrypted[0], encrypted[1]]), 512);
    assert_eq!(encrypted.len(), 2 + 512 + plaintext.len() + 16);
    let text = serde_json::to_string(&sealed).expect("json");
    assert!(!text.contains(plaintext) && !text.contains(&value));

    // Re-applying an unchanged application with an unchanged secret commits nothing.
    let commits = hub.commits("sealed-1").len();
    let (status, _) = hub.apply_yaml(&app("web-db"), "").await;
    assert_eq!(status, 200);
    assert_eq!(hub.commits("sealed-1").len(), commits);

    // Re-sealing a cluster (after its agent joins) keeps everything else it has: the tenant's folder too.
    heimdall_hub::delivery::reseal_cluster(&hub.state, "sealed-1").await;
    let folders = hub.state.repos.folders("sealed-1").expect("folders");
    assert!(folders.contains("heimdall.tenants/shop") && folders.contains("shop/web"), "{folders:?}");
    assert_eq!(hub.commits("sealed-1").len(), commits, "nothing changed, nothing committed");

    // An external cluster reads the environment's store: an ExternalSecret, and the
    // secret need not exist in Heimdall.
    let external = app("payments-db").replace("web", "api").replace("clusters: [sealed-1]", "clusters: [external-1]");
    let (status, body) = hub.apply_yaml(&external, "").await;
    assert_eq!(status, 200, "{body}");
    let object = file(&hub, "external-1", "shop/api/externalsecret-payments-db.yaml").expect("an ExternalSecret");
    assert_eq!(object["apiVersion"], "external-secrets.io/v1");
    assert_eq!(object["spec"]["secretStoreRef"], json!({"kind": "ClusterSecretStore", "name": "vault"}));
    assert_eq!(
        object["spec"]["data"],
        json!([{"secretKey": "password", "remoteRef": {"key": "shop/payments-db", "property": "password"}}])
    );

    // A sealed-secrets cluster without a certificate is refused, naming the field.
    let (status, body) = hub
        .apply_yaml("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {name: broken}\nspec: {secrets: {delivery: sealed-secrets}}\n", "")
        .await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("spec.secrets.sealedSecrets.certificate"), "{body}");
}
