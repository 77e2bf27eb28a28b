//! Tenants: their manifests in each isolation mode (snapshots, reviewed with
//! `cargo insta review`), and the guardrails they put on their applications.

mod common;

use common::resources;
use heimdall_model::Resource;
use heimdall_render::{Platform, RenderOptions, Rendered, render};
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
spec: {clusterSelector: {matchLabels: {env: prod}}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: dev-1, labels: {env: dev}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: dev-2, labels: {env: dev}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: prod-1, labels: {env: prod}}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Cluster
metadata: {name: mgmt, labels: {role: management}}
"#;

const SHOP: &str = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Tenant
metadata: {name: shop}
spec:
  displayName: Shop
  environments: [dev]
  members:
    - {kind: Group, name: shop-devs, role: developer}
    - {kind: User, name: alice@example.com, role: owner}
    - {kind: Group, name: auditors, role: viewer}
  quotas:
    dev: {cpu: "8", memory: 16Gi, storage: 100Gi, objects: {pods: 50, services: 10}}
  allowedRegistries: [registry.example.com/shop/]
"#;

fn platform_with(tenant: &str) -> (Platform, Resource) {
    let mut all = resources(PLATFORM);
    let tenant = resources(tenant).remove(0);
    all.push(tenant.clone());
    (Platform::from_resources(&all).unwrap_or_else(|e| panic!("{e:?}")), tenant)
}

fn render_one(resource: &Resource, platform: &Platform) -> Result<Rendered, String> {
    render(resource, "test.yaml", platform, &RenderOptions::default()).map_err(|e| e.to_string())
}

fn by_cluster(rendered: &Rendered) -> Value {
    json!(rendered.targets.iter().map(|t| (t.cluster.clone(), json!(t.objects))).collect::<serde_json::Map<_, _>>())
}

#[test]
fn namespace_mode_renders_namespace_rbac_quota_and_network_policies_into_each_allowed_cluster() {
    let (platform, tenant) = platform_with(SHOP);
    let rendered = render_one(&tenant, &platform).expect("renders");
    let clusters: Vec<&str> = rendered.targets.iter().map(|t| t.cluster.as_str()).collect();
    assert_eq!(clusters, ["dev-1", "dev-2"], "only the clusters of the tenant's environments");
    let objects = &rendered.targets[0].objects;
    let find = |kind: &str, name: &str| {
        objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let namespace = find("Namespace", "shop");
    assert_eq!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(namespace["metadata"]["labels"]["heimdall.dev/tenant"], "shop");
    let developers = find("RoleBinding", "heimdall-tenant-developer");
    assert_eq!(developers["roleRef"]["name"], "edit");
    assert_eq!(developers["subjects"][0], json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "shop-devs"}));
    assert_eq!(find("RoleBinding", "heimdall-tenant-owner")["roleRef"]["name"], "admin");
    assert_eq!(find("RoleBinding", "heimdall-tenant-viewer")["roleRef"]["name"], "view");
    let quota = find("ResourceQuota", "heimdall-tenant-quota");
    assert_eq!(quota["spec"]["hard"]["requests.cpu"], "8");
    assert_eq!(quota["spec"]["hard"]["pods"], "50");
    assert!(find("LimitRange", "heimdall-tenant-defaults")["spec"]["limits"][0]["defaultRequest"]["cpu"].is_string());
    assert_eq!(find("NetworkPolicy", "heimdall-deny-ingress")["spec"]["ingress"], json!([]));
    assert_eq!(
        find("NetworkPolicy", "heimdall-allow-same-tenant")["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"],
        json!({"heimdall.dev/tenant": "shop"})
    );
    assert_eq!(
        find("NetworkPolicy", "heimdall-allow-platform")["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["ingress-nginx", "monitoring"])
    );
    assert!(objects.iter().all(|o| o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "heimdall"), "the agent owns them");
    insta::assert_yaml_snapshot!("tenant_namespace_mode", by_cluster(&rendered));
}

#[test]
fn vcluster_mode_renders_a_pinned_virtual_cluster_in_the_host_namespace() {
    let (platform, tenant) = platform_with(&format!(
        "{SHOP}  isolation: vcluster\n  vcluster: {{values: {{sync: {{toHost: {{ingresses: {{enabled: true}}}}}}}}}}\n"
    ));
    let rendered = render_one(&tenant, &platform).expect("renders");
    let objects = &rendered.targets[0].objects;
    let statefulset = objects.iter().find(|o| o["kind"] == "StatefulSet").expect("the vCluster control plane");
    let image = statefulset["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
    assert!(image.ends_with(heimdall_render::tenant::VCLUSTER_VERSION), "pinned: {image}");
    let config = objects.iter().find(|o| o["kind"] == "Secret").expect("vcluster.yaml")["stringData"]["config.yaml"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let config: Value = serde_json::from_str(&config).expect("the values are YAML (JSON)");
    assert_eq!(config["sync"]["toHost"]["ingresses"]["enabled"], true, "the tenant's values are merged in");
    assert_eq!(config["sync"]["toHost"]["pods"]["enabled"], true, "over Heimdall's");
    assert!(objects.iter().any(|o| o["kind"] == "ResourceQuota"), "the host namespace's quota bounds the virtual cluster");
    assert!(!objects.iter().any(|o| o["kind"] == "RoleBinding" && o["roleRef"]["kind"] == "ClusterRole"), "members use the vCluster's API");
    insta::assert_yaml_snapshot!("tenant_vcluster_mode", by_cluster(&rendered));
}

#[test]
fn cluster_mode_requests_a_dedicated_cluster_in_the_management_cluster() {
    let (platform, tenant) = platform_with(&format!(
        "{SHOP}  isolation: cluster\n  cluster: {{managementCluster: mgmt, class: aws-standard, kubernetesVersion: v1.31.2, workers: 5}}\n"
    ));
    let rendered = render_one(&tenant, &platform).expect("renders");
    let clusters: Vec<&str> = rendered.targets.iter().map(|t| t.cluster.as_str()).collect();
    assert_eq!(clusters, ["dev-1", "dev-2", "mgmt"], "the request in the management cluster, the namespace where its apps run");
    let mgmt = rendered.targets.iter().find(|t| t.cluster == "mgmt").expect("mgmt");
    let cluster = mgmt.objects.iter().find(|o| o["kind"] == "Cluster").expect("a Cluster API Cluster");
    assert_eq!(cluster["spec"]["topology"]["class"], "aws-standard");
    assert_eq!(cluster["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"], 5);
    insta::assert_yaml_snapshot!("tenant_cluster_mode", by_cluster(&rendered));

    let (platform, tenant) = platform_with(&format!(
        "{SHOP}  isolation: cluster\n  cluster: {{managementCluster: mgmt, provider: crossplane, claimApiVersion: platform.example.org/v1alpha1, claimKind: KubernetesCluster, kubernetesVersion: v1.31.2, parameters: {{region: eu-west-1}}}}\n"
    ));
    let rendered = render_one(&tenant, &platform).expect("renders");
    let mgmt = rendered.targets.iter().find(|t| t.cluster == "mgmt").expect("mgmt");
    let claim = mgmt.objects.iter().find(|o| o["kind"] == "KubernetesCluster").expect("a Crossplane claim");
    assert_eq!(claim["spec"]["parameters"], json!({"kubernetesVersion": "v1.31.2", "nodeCount": 3, "region": "eu-west-1"}));

    let (platform, tenant) = platform_with(&format!(
        "{SHOP}  isolation: cluster\n  cluster: {{managementCluster: nowhere, class: c, kubernetesVersion: v1.31.2}}\n"
    ));
    let error = render_one(&tenant, &platform).expect_err("no such cluster");
    assert!(error.contains("spec.cluster.managementCluster") && error.contains("nowhere"), "{error}");
}

#[test]
fn a_tenant_naming_an_unknown_environment_is_an_error_at_its_path() {
    let (platform, tenant) = platform_with(&SHOP.replace("environments: [dev]", "environments: [dev, qa]"));
    let error = render_one(&tenant, &platform).expect_err("qa does not exist");
    assert!(error.contains("spec.environments[1]") && error.contains("qa"), "{error}");
}

fn app(namespace: &str, body: &str) -> Resource {
    resources(&format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: web, namespace: {namespace}}}\nspec:\n{body}"
    ))
    .remove(0)
}

const WEB: &str = "  components:\n    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1.0}\n";

#[test]
fn applications_may_only_use_their_tenants_environments_and_namespaces() {
    let (platform, _) = platform_with(SHOP);
    let dev = format!("{WEB}  policies:\n    - {{name: dev, type: topology, properties: {{environment: dev}}}}\n");
    let rendered = render_one(&app("shop", &dev), &platform).expect("dev is the tenant's");
    assert!(rendered.targets.iter().all(|t| t.namespace == "shop"));

    let prod = format!("{WEB}  policies:\n    - {{name: prod, type: topology, properties: {{environment: prod}}}}\n");
    let error = render_one(&app("shop", &prod), &platform).expect_err("prod is not");
    assert!(error.contains("tenant shop may not deploy to cluster prod-1 (environment prod)"), "{error}");

    let direct = format!("{WEB}  policies:\n    - {{name: there, type: topology, properties: {{clusters: [mgmt]}}}}\n");
    let error = render_one(&app("shop", &direct), &platform).expect_err("mgmt serves no environment of the tenant");
    assert!(error.contains("cluster mgmt"), "{error}");

    let elsewhere =
        format!("{WEB}  policies:\n    - {{name: dev, type: topology, properties: {{environment: dev, namespace: payments}}}}\n");
    let error = render_one(&app("shop", &elsewhere), &platform).expect_err("payments is another tenant's namespace");
    assert!(error.contains("namespace payments is not tenant shop's"), "{error}");
}

#[test]
fn the_tenants_registries_are_a_denying_policy() {
    let (platform, _) = platform_with(SHOP);
    let foreign = "  components:\n    - name: web\n      type: webservice\n      properties: {image: docker.io/library/nginx:1.27}\n  policies:\n    - {name: dev, type: topology, properties: {environment: dev}}\n";
    let rendered = render_one(&app("shop", foreign), &platform).expect("renders, with a finding");
    let violations: Vec<String> = rendered.violations().map(|f| f.finding.message.clone()).collect();
    assert_eq!(violations.len(), 2, "one per cluster: {violations:?}");
    assert!(violations[0].contains("docker.io/library/nginx:1.27") && violations[0].contains("registry.example.com/shop/"));
}

#[test]
fn per_app_namespaces_come_with_the_application() {
    let (platform, tenant) = platform_with(&format!("{SHOP}  namespaces: perApp\n"));
    let shared = render_one(&tenant, &platform).expect("renders");
    let kinds: Vec<&Value> = shared.targets.iter().flat_map(|t| t.objects.iter().map(|o| &o["kind"])).collect();
    assert_eq!(kinds, ["ServiceAccount", "ServiceAccount"], "only the tenant's identity is shared, one per cluster: {kinds:?}");
    let dev = format!("{WEB}  policies:\n    - {{name: dev, type: topology, properties: {{environment: dev}}}}\n");
    let rendered = render_one(&app("shop", &dev), &platform).expect("renders");
    let target = &rendered.targets[0];
    assert_eq!(target.namespace, "shop-web", "the application's own namespace");
    let namespace = target.objects.iter().find(|o| o["kind"] == "Namespace").expect("the namespace comes with the app");
    assert_eq!(namespace["metadata"]["name"], "shop-web");
    assert!(target.objects.iter().any(|o| o["kind"] == "ResourceQuota" && o["metadata"]["namespace"] == "shop-web"));
    assert!(target.objects.iter().any(|o| o["kind"] == "Deployment" && o["metadata"]["namespace"] == "shop-web"));
    let apply_as = |kind: &str| {
        let object = target.objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
        object["metadata"]["annotations"]["heimdall.dev/apply-as"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(apply_as("Namespace"), "platform", "the tenant's scaffolding keeps the agent's rights");
    assert_eq!(apply_as("Deployment"), "tenant", "the application's own objects are applied as the tenant");
    let rights = target.objects.iter().find(|o| o["kind"] == "RoleBinding" && o["metadata"]["name"] == "heimdall-tenant-apply");
    assert_eq!(rights.expect("the identity's rights come with the namespace")["subjects"][0]["namespace"], "heimdall-tenants");
}

#[test]
fn the_tenants_identity_may_write_its_kinds_in_its_namespaces_only() {
    let (platform, tenant) = platform_with(&format!(
        "{SHOP}  extraNamespaces: [cache]\n  allowedObjects:\n    - {{apiGroup: postgresql.cnpg.io, kinds: [Cluster]}}\n    - {{apiGroup: \"\", kinds: [PersistentVolume]}}\n"
    ));
    let rendered = render_one(&tenant, &platform).expect("renders");
    let objects = &rendered.targets[0].objects;
    let account = objects.iter().find(|o| o["kind"] == "ServiceAccount").expect("the identity");
    assert_eq!(
        account["metadata"],
        json!({"name": "shop", "namespace": "heimdall-tenants", "labels": account["metadata"]["labels"], "annotations": account["metadata"]["annotations"]})
    );
    let roles: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Role" && o["metadata"]["name"] == "heimdall-tenant-apply").collect();
    let namespaces: Vec<&Value> = roles.iter().map(|r| &r["metadata"]["namespace"]).collect();
    assert_eq!(namespaces, ["shop", "shop-cache"], "a Role in each of the tenant's namespaces, none elsewhere");
    let rules = &roles[0]["rules"];
    let resources_of =
        |group: &str| rules.as_array().expect("rules").iter().find(|r| r["apiGroups"] == json!([group])).map(|r| r["resources"].clone());
    assert_eq!(resources_of("apps"), Some(json!(["daemonsets", "deployments", "statefulsets"])));
    assert_eq!(resources_of("postgresql.cnpg.io"), Some(json!(["clusters"])), "the tenant's own extra kinds");
    assert_eq!(resources_of("rbac.authorization.k8s.io"), Some(json!(["rolebindings", "roles"])), "what owners may deploy");
    let cluster_role = objects.iter().find(|o| o["kind"] == "ClusterRole").expect("cluster-scoped kinds it was given");
    assert_eq!(
        cluster_role["rules"],
        json!([{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}])
    );
    assert!(objects.iter().all(|o| o["metadata"]["annotations"]["heimdall.dev/apply-as"] == "platform"));
}

#[test]
fn tenants_own_their_namespaces_alone() {
    let shop_per_app = format!("{SHOP}  namespaces: perApp\n");
    let web = SHOP.replace("name: shop}", "name: shop-web}");
    let mut all = resources(PLATFORM);
    all.extend(resources(&shop_per_app));
    all.extend(resources(&web));
    let errors = Platform::from_resources(&all).expect_err("shop-web would be both shop's (perApp) and tenant shop-web's");
    let text = format!("{errors:?}");
    assert!(text.contains("tenant shop and tenant shop-web would both own namespace"), "{text}");
    for reserved in ["kube-system", "default", "heimdall-tenants"] {
        let mut all = resources(PLATFORM);
        all.extend(resources(&SHOP.replace("name: shop}", &format!("name: {reserved}}}"))));
        let errors = Platform::from_resources(&all).expect_err("a reserved namespace");
        assert!(format!("{errors:?}").contains(&format!("namespace {reserved} is Kubernetes' or Heimdall's own")), "{errors:?}");
    }
}

#[test]
fn namespaces_without_a_tenant_are_the_platform_teams() {
    let (platform, _) = platform_with(SHOP);
    let prod = format!("{WEB}  policies:\n    - {{name: prod, type: topology, properties: {{environment: prod}}}}\n");
    assert!(render_one(&app("platform", &prod), &platform).is_ok(), "no Tenant named platform: no tenant rules");
}
