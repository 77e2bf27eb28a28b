//! The tenant-escape suite: a tenant's application tries to put objects
//! outside the tenant (another tenant's namespace, cluster-scoped kinds,
//! RBAC, webhooks, secret stores) through every way an application makes
//! objects: raw objects, built-in component types and traits, a workflow
//! step, the platform team's own definitions. Each is refused, as a
//! developer's change and as an owner's, naming the component, the object
//! and the rule; the same objects from the platform team (an application
//! outside any tenant, a capability's composition) are accepted.

mod common;

use common::resources;
use heimdall_model::Resource;
use heimdall_model::spec::tenant::TenantRole;
use heimdall_render::{Platform, RenderOptions, Rendered, render};
use serde_json::Value;

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
spec: {environments: [dev]}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Tenant
metadata: {name: payments}
spec: {environments: [dev]}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: ComponentDefinition
metadata: {name: shared-config}
spec:
  parameters:
    type: object
    properties:
      namespace: {type: string}
  template:
    workload:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${{ context.name }}", namespace: "${{ parameters.namespace }}"}
      data: {a: b}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: ComponentDefinition
metadata: {name: sevenfold}
spec:
  template:
    workload:
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: "${{ context.name }}"}
      data: {a: "${{ parameters.value }}", b: "${{ parameters.value }}", c: "${{ parameters.value }}", d: "${{ parameters.value }}",
             e: "${{ parameters.value }}", f: "${{ parameters.value }}", g: "${{ parameters.value }}"}
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: TraitDefinition
metadata: {name: cluster-reader}
spec:
  template:
    outputs:
      binding:
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: "${{ context.name }}-reader"}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
        subjects: [{kind: ServiceAccount, name: default, namespace: "${{ context.namespace }}"}]
---
apiVersion: platform.heimdall.dev/v1alpha1
kind: Capability
metadata: {name: kafka-topic}
spec:
  compositions:
    - name: strimzi
      connection: {outputs: {}}
      template:
        outputs:
          topic:
            apiVersion: kafka.strimzi.io/v1beta2
            kind: KafkaTopic
            metadata: {name: "${{ context.appNamespace }}-${{ context.name }}", namespace: kafka}
            spec: {partitions: 3}
"#;

fn platform() -> Platform {
    Platform::from_resources(&resources(PLATFORM)).unwrap_or_else(|e| panic!("{e:?}"))
}

fn app(namespace: &str, components: &str) -> Resource {
    resources(&format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: evil, namespace: {namespace}}}\nspec:\n  components:\n{components}  policies:\n    - {{name: dev, type: topology, properties: {{environment: dev}}}}\n"
    ))
    .remove(0)
}

fn render_as(app: &Resource, role: Option<TenantRole>) -> Result<Rendered, Vec<String>> {
    let options = RenderOptions { tenant_role: role, ..Default::default() };
    render(app, "evil.yaml", &platform(), &options).map_err(|e| {
        assert_eq!(e.document, "evil.yaml");
        e.problems.iter().map(ToString::to_string).collect()
    })
}

/// A `k8s-objects` component holding `objects` (YAML flow mappings).
fn raw(objects: &[&str]) -> String {
    let list: Vec<String> = objects.iter().map(|o| format!("          - {o}\n")).collect();
    format!("    - name: raw\n      type: k8s-objects\n      properties:\n        objects:\n{}", list.concat())
}

const CLUSTER_ADMIN: &str = "{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRoleBinding, metadata: {name: take-over}, roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}, subjects: [{kind: ServiceAccount, name: default, namespace: shop}]}";
const NAMESPACE: &str = "{apiVersion: v1, kind: Namespace, metadata: {name: mine}}";
const FOREIGN_CONFIG: &str = "{apiVersion: v1, kind: ConfigMap, metadata: {name: planted, namespace: payments}, data: {a: b}}";
const FOREIGN_DEPLOYMENT: &str = "{apiVersion: apps/v1, kind: Deployment, metadata: {name: thief, namespace: payments}, spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x, volumeMounts: [{name: s, mountPath: /s}]}], volumes: [{name: s, secret: {secretName: payments-db}}]}}}}";
const WEBHOOK: &str =
    "{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration, metadata: {name: intercept}, webhooks: []}";
const CRD: &str = "{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: things.example.com}, spec: {group: example.com, names: {kind: Thing, plural: things}, scope: Namespaced, versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]}}";
const EVERYONE: &str = "{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: everyone, namespace: shop}, roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}, subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: system:authenticated}]}";
const STORE: &str = "{apiVersion: external-secrets.io/v1, kind: ExternalSecret, metadata: {name: steal, namespace: shop}, spec: {secretStoreRef: {kind: ClusterSecretStore, name: vault}, target: {name: stolen}, data: [{secretKey: k, remoteRef: {key: payments/db}}]}}";
const PV: &str = "{apiVersion: v1, kind: PersistentVolume, metadata: {name: host}, spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /}}}";

fn assert_refused(problems: &[String], object: &str, rule: &str) {
    assert!(
        problems.iter().any(|p| p.starts_with("spec.components[0]: ") && p.contains(object) && p.contains(rule)),
        "no refusal of {object} for {rule:?} in {problems:#?}"
    );
}

#[test]
fn raw_objects_outside_the_tenant_are_refused_for_developers_and_owners_alike() {
    let evil = app("shop", &raw(&[CLUSTER_ADMIN, NAMESPACE, FOREIGN_CONFIG, FOREIGN_DEPLOYMENT, WEBHOOK, CRD, EVERYONE, STORE, PV]));
    for role in [Some(TenantRole::Developer), Some(TenantRole::Owner), None] {
        let problems = render_as(&evil, role).expect_err("every object is outside the tenant");
        let by = "component raw (k8s-objects) renders";
        assert_refused(&problems, &format!("{by} ClusterRoleBinding take-over, which tenant shop may not deploy"), "never a tenant's");
        assert_refused(&problems, "Namespace mine", "never a tenant's");
        assert_refused(&problems, "ConfigMap payments/planted", "namespace payments is not tenant shop's");
        assert_refused(&problems, "Deployment payments/thief", "namespace payments is not tenant shop's");
        assert_refused(&problems, "MutatingWebhookConfiguration intercept", "never a tenant's");
        assert_refused(&problems, "CustomResourceDefinition things.example.com", "never a tenant's");
        assert_refused(&problems, "RoleBinding shop/everyone", "system:authenticated");
        assert_refused(&problems, "RoleBinding shop/everyone", "not ClusterRole admin");
        assert_refused(&problems, "ExternalSecret shop/steal", "is not a kind tenant");
        assert_refused(&problems, "PersistentVolume host", "cluster-scoped");
    }
}

#[test]
fn the_same_objects_from_the_platform_team_are_accepted() {
    let platform_app = app("platform", &raw(&[CLUSTER_ADMIN, NAMESPACE, FOREIGN_CONFIG, FOREIGN_DEPLOYMENT, WEBHOOK, PV]));
    let rendered = render_as(&platform_app, None).expect("an application outside any tenant is the platform team's");
    let objects = &rendered.targets[0].objects;
    assert_eq!(objects.len(), 6);
    assert!(objects.iter().all(|o| o["metadata"]["annotations"]["heimdall.dev/apply-as"] == "platform"), "applied with the agent's rights");
}

#[test]
fn built_in_traits_cannot_move_or_widen_what_a_component_makes() {
    let moved = app(
        "shop",
        "    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n      traits:\n        - {type: json-merge-patch, properties: {metadata: {namespace: payments}}}\n",
    );
    let problems = render_as(&moved, Some(TenantRole::Developer)).expect_err("a patch moves the Deployment to payments");
    assert_refused(&problems, "component web (webservice) renders Deployment payments/web", "namespace payments is not tenant shop's");

    let cluster_rights = app(
        "shop",
        "    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n      traits:\n        - {type: service-account, properties: {name: web, create: true, privileges: [{scope: cluster, apiGroups: [\"*\"], resources: [\"*\"], verbs: [\"*\"]}]}}\n",
    );
    for role in [Some(TenantRole::Developer), Some(TenantRole::Owner)] {
        let problems = render_as(&cluster_rights, role).expect_err("cluster-wide rights");
        assert_refused(&problems, "ClusterRole shop:web:web", "never a tenant's");
        assert_refused(&problems, "ClusterRoleBinding shop:web:web", "never a tenant's");
    }

    let namespace_rights = app(
        "shop",
        "    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n      traits:\n        - {type: service-account, properties: {name: web, create: true, privileges: [{apiGroups: [\"\"], resources: [pods], verbs: [get]}]}}\n",
    );
    let problems = render_as(&namespace_rights, Some(TenantRole::Developer)).expect_err("developers deploy no RBAC");
    assert_refused(&problems, "Role shop/web:web", "is not a kind tenant developers may deploy");
    let rendered = render_as(&namespace_rights, Some(TenantRole::Owner)).expect("owners give their workloads namespaced rights");
    let binding = rendered.targets[0].objects.iter().find(|o| o["kind"] == "RoleBinding").expect("the binding");
    assert_eq!(binding["metadata"]["annotations"]["heimdall.dev/apply-as"], "tenant", "and the cluster checks them again");
}

#[test]
fn a_workflow_step_cannot_place_objects_elsewhere() {
    let mut evil = app("shop", "    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n");
    evil.spec["workflow"] = serde_json::json!({"steps": [
        {"name": "plant", "type": "export2config", "properties": {"configName": "planted", "namespace": "payments", "cluster": "dev-1", "data": {"a": "b"}}},
        {"name": "deploy", "type": "deploy", "properties": {"policies": ["dev"]}},
    ]});
    let problems = render_as(&evil, Some(TenantRole::Developer)).expect_err("the config lands in payments");
    assert!(
        problems.iter().any(|p| p.starts_with("spec.workflow (plant): ")
            && p.contains("ConfigMap payments/planted")
            && p.contains("namespace payments is not tenant shop's")),
        "{problems:#?}"
    );
}

#[test]
fn the_platform_teams_definitions_are_checked_with_the_tenants_input() {
    let evil = app("shop", "    - name: cfg\n      type: shared-config\n      properties: {namespace: payments}\n");
    let problems = render_as(&evil, Some(TenantRole::Owner)).expect_err("a parameter names payments");
    assert_refused(&problems, "component cfg (shared-config) renders ConfigMap payments/cfg", "namespace payments is not tenant shop's");
    let fine = app("shop", "    - name: cfg\n      type: shared-config\n      properties: {namespace: shop}\n");
    assert!(render_as(&fine, Some(TenantRole::Developer)).is_ok());

    let evil = app(
        "shop",
        "    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n      traits: [{type: cluster-reader}]\n",
    );
    let problems = render_as(&evil, None).expect_err("the trait binds cluster-admin");
    assert_refused(&problems, "component web (webservice) renders ClusterRoleBinding web-reader", "never a tenant's");
}

#[test]
fn a_capabilitys_composition_keeps_the_platforms_rights() {
    let with_topic = app(
        "shop",
        "    - name: events\n      type: kafka-topic\n    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n",
    );
    let rendered =
        render_as(&with_topic, Some(TenantRole::Developer)).expect("the topic lives in the kafka namespace, by the platform's design");
    let topic = rendered.targets[0].objects.iter().find(|o| o["kind"] == "KafkaTopic").expect("the topic");
    assert_eq!(topic["metadata"]["namespace"], "kafka");
    let apply_as = |kind: &str| -> Value {
        rendered.targets[0].objects.iter().find(|o| o["kind"] == kind).expect(kind)["metadata"]["annotations"]["heimdall.dev/apply-as"]
            .clone()
    };
    assert_eq!(apply_as("KafkaTopic"), "platform");
    assert_eq!(apply_as("Deployment"), "tenant");
}

#[test]
fn an_object_cannot_claim_the_platforms_rights_for_itself() {
    let forged = app(
        "shop",
        &raw(&[
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: forged, namespace: shop, annotations: {heimdall.dev/apply-as: platform}}, data: {a: b}}",
        ]),
    );
    let rendered = render_as(&forged, Some(TenantRole::Developer)).expect("a ConfigMap in its own namespace");
    let config = &rendered.targets[0].objects[0];
    assert_eq!(config["metadata"]["annotations"]["heimdall.dev/apply-as"], "tenant", "the renderer decides, not the object");
}

#[test]
fn an_object_larger_than_kubernetes_stores_is_refused() {
    // The value fits in a document and in a template's output; rendered seven times into one object, it does not fit in etcd.
    let big = "x".repeat(250_000);
    let huge = app("shop", &format!("    - name: huge\n      type: sevenfold\n      properties: {{value: {big}}}\n"));
    let problems = render_as(&huge, Some(TenantRole::Developer)).expect_err("too large");
    assert!(problems.iter().any(|p| p.contains("ConfigMap huge") && p.contains("an object may be at most 1572864 bytes")), "{problems:#?}");
}

#[test]
fn a_tenants_policies_mark_only_its_own_objects() {
    let mut with_topic = app(
        "shop",
        "    - name: events\n      type: kafka-topic\n    - name: web\n      type: webservice\n      properties: {image: registry.example.com/shop/web:1}\n",
    );
    with_topic.spec["policies"]
        .as_array_mut()
        .expect("policies")
        .push(serde_json::json!({"name": "grab", "type": "take-over", "properties": {"rules": [{"selector": {}}]}}));
    let rendered = render_as(&with_topic, Some(TenantRole::Developer)).expect("renders");
    let annotation = |kind: &str| {
        rendered.targets[0].objects.iter().find(|o| o["kind"] == kind).expect(kind)["metadata"]["annotations"]["heimdall.dev/take-over"]
            .clone()
    };
    assert_eq!(annotation("Deployment"), "true", "its own objects take the policy");
    assert_eq!(annotation("KafkaTopic"), Value::Null, "the platform's object applied with the agent's rights does not");
}

#[test]
fn an_application_cannot_replace_its_namespaces_own_rules() {
    let mut all = resources(PLATFORM);
    for tenant in all.iter_mut().filter(|r| r.kind == "Tenant" && r.metadata.name == "shop") {
        tenant.spec["namespaces"] = serde_json::json!("perApp");
    }
    let platform = Platform::from_resources(&all).unwrap_or_else(|e| panic!("{e:?}"));
    let open = app(
        "shop",
        &raw(&[
            "{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: heimdall-deny-ingress}, spec: {podSelector: {}, ingress: [{}]}}",
        ]),
    );
    let options = RenderOptions { tenant_role: Some(TenantRole::Developer), ..Default::default() };
    let problems = render(&open, "evil.yaml", &platform, &options).expect_err("replaces the deny-all policy").to_string();
    assert!(problems.contains("renders NetworkPolicy shop-evil/heimdall-deny-ingress, which is tenant shop's own"), "{problems}");
}
