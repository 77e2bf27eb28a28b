//! Capabilities in a render, with the example organization's platform
//! (`examples/platform`): a KubeVela Application and a Score workload asking
//! for a PostgreSQL get a CloudNativePG cluster in dev and an RDS instance in
//! prod with their consumers wired (golden files); parameters, limits,
//! missing compositions, failing templates and missing outputs are refused
//! at their paths; compositions are sticky; migrations run in their phases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

mod common;

use common::resources;
use heimdall_model::Resource;
use heimdall_render::{ClaimCatalog, Migration, Platform, RenderOptions, Rendered, render};
use serde_json::{Value, json};

fn example_platform_resources() -> Vec<Resource> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.iter().flat_map(|f| resources(&std::fs::read_to_string(f).expect("read"))).collect()
}

fn platform_with(extra: &str) -> Platform {
    let mut all = example_platform_resources();
    all.extend(resources(extra));
    Platform::from_resources(&all).unwrap_or_else(|e| panic!("{e:?}"))
}

fn platform() -> Platform {
    platform_with("")
}

fn app(yaml: &str) -> Resource {
    resources(yaml).remove(0)
}

fn orders() -> Resource {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps/shop/orders.yaml")).expect("read");
    app(&text)
}

fn render_ok(app: &Resource, platform: &Platform, options: &RenderOptions) -> Rendered {
    render(app, "app.yaml", platform, options).unwrap_or_else(|e| panic!("{e}"))
}

fn render_err(app: &Resource, platform: &Platform) -> String {
    match render(app, "app.yaml", platform, &RenderOptions::default()) {
        Ok(rendered) => panic!("expected an error, got {} targets", rendered.targets.len()),
        Err(e) => e.to_string(),
    }
}

/// What a golden file holds per target: the objects and the claim instances.
fn golden(rendered: &Rendered) -> Value {
    json!(rendered.targets.iter().map(|t| json!({"cluster": t.cluster, "objects": t.objects, "claims": t.claims})).collect::<Vec<_>>())
}

fn objects_of<'a>(rendered: &'a Rendered, cluster: &str) -> &'a [Value] {
    &rendered.targets.iter().find(|t| t.cluster == cluster).unwrap_or_else(|| panic!("no target {cluster}")).objects
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or_default(), o["metadata"]["name"].as_str().unwrap_or_default()))
        .collect()
}

fn env_of<'a>(objects: &'a [Value], deployment: &str) -> &'a Vec<Value> {
    objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == deployment)
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/env"))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no env on Deployment {deployment}"))
}

fn secret_ref<'a>(env: &'a [Value], name: &str) -> Option<(&'a str, &'a str)> {
    let entry = env.iter().find(|e| e["name"] == name)?;
    let reference = entry.pointer("/valueFrom/secretKeyRef")?;
    Some((reference["name"].as_str()?, reference["key"].as_str()?))
}

#[test]
fn a_kubevela_postgresql_is_cloudnative_pg_in_dev_and_rds_in_prod_with_the_web_service_wired() {
    let rendered = render_ok(&orders(), &platform(), &RenderOptions::default());
    insta::assert_yaml_snapshot!("orders_dev_and_prod", golden(&rendered));

    let dev = objects_of(&rendered, "dev-eu-1");
    assert!(kinds(dev).contains("Cluster/orders-db"), "{:?}", kinds(dev));
    let env = env_of(dev, "orders");
    assert_eq!(secret_ref(env, "ORDERS_DB_PASSWORD"), Some(("orders-db-app", "password")));
    assert!(env.iter().any(|e| e["name"] == "ORDERS_DB_HOST" && e["value"] == "orders-db-rw.shop.svc"), "{env:?}");

    let prod = objects_of(&rendered, "prod-eu-1");
    let instance = prod.iter().find(|o| o["kind"] == "Instance").expect("an RDS Instance in prod");
    assert_eq!(instance["apiVersion"], "rds.aws.m.upbound.io/v1beta1");
    assert_eq!(instance.pointer("/spec/forProvider/multiAz"), Some(&json!(true)), "the prod override asks for high availability");
    assert_eq!(instance.pointer("/spec/forProvider/allocatedStorage"), Some(&json!(50)));
    assert!(!kinds(prod).contains("Cluster/orders-db"), "no CloudNativePG in prod");
    assert_eq!(secret_ref(env_of(prod, "orders"), "ORDERS_DB_HOST"), Some(("orders-db-rds", "address")));

    let claims: Vec<(&str, &str, f64)> =
        rendered.targets.iter().flat_map(|t| t.claims.iter().map(|c| (t.cluster.as_str(), c.composition.as_str(), c.cost))).collect();
    assert_eq!(claims, [("dev-eu-1", "cloudnative-pg", 1.0), ("prod-eu-1", "aws-rds", 35.75)]);
    assert!(rendered.targets.iter().all(|t| t.claims[0].consumers == ["orders"]));
}

const SCORE: &str = r#"
apiVersion: score.dev/v1b1
metadata: {name: payments-api, namespace: payments}
containers:
  api:
    image: registry.example.com/payments/api:3.1.0
    variables:
      DB_HOST: ${resources.db.host}
      DB_PASSWORD: ${resources.db.password}
      DATABASE_URL: postgres://${resources.db.username}:${resources.db.password}@${resources.db.host}:${resources.db.port}/${resources.db.database}
resources:
  db:
    type: postgres
    params: {storageGB: 5, highAvailability: true}
"#;

#[test]
fn a_score_postgres_resource_gets_the_same_with_placeholders_resolved_per_environment() {
    // Score workloads go to the organization's default environments (dev); prod is asked for.
    let platform = platform();
    let rendered = render_ok(&app(SCORE), &platform, &RenderOptions::default());
    let in_prod = render_ok(&app(SCORE), &platform, &RenderOptions { environment: Some("prod".into()), ..Default::default() });
    insta::assert_yaml_snapshot!("score_postgres_dev_and_prod", json!([golden(&rendered), golden(&in_prod)]));

    let dev = objects_of(&rendered, "dev-eu-1");
    assert!(kinds(dev).contains("Cluster/db"), "{:?}", kinds(dev));
    let env = env_of(dev, "payments-api");
    assert!(env.iter().any(|e| e["name"] == "DB_HOST" && e["value"] == "db-rw.payments.svc"), "{env:?}");
    assert_eq!(secret_ref(env, "DB_PASSWORD"), Some(("db-app", "password")));
    let url = env.iter().find(|e| e["name"] == "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(url["value"], "postgres://$(SECRET_DB_USERNAME):$(SECRET_DB_PASSWORD)@db-rw.payments.svc:5432/app");
    assert_eq!(secret_ref(env, "SECRET_DB_USERNAME"), Some(("db-app", "username")));

    let prod = objects_of(&in_prod, "prod-eu-1");
    assert!(prod.iter().any(|o| o["kind"] == "Instance"), "{:?}", kinds(prod));
    let env = env_of(prod, "payments-api");
    assert_eq!(secret_ref(env, "DB_HOST"), Some(("db-rds", "address")), "in prod the host is only known to the provider");
    assert_eq!(
        env.iter().find(|e| e["name"] == "DATABASE_URL").map(|e| e["value"].clone()),
        Some(json!("postgres://$(SECRET_DB_USERNAME):$(SECRET_DB_PASSWORD)@$(SECRET_DB_HOST):$(SECRET_DB_PORT)/app"))
    );
}

#[test]
fn a_standalone_claim_renders_its_instance() {
    let claim = app(r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Claim
metadata: {name: events, namespace: shop}
spec:
  type: kafka-topic
  parameters: {partitions: 3}
  environments: [dev]
"#);
    let rendered = render_ok(&claim, &platform(), &RenderOptions::default());
    assert_eq!(rendered.targets.len(), 1);
    let topic = &rendered.targets[0].objects[0];
    assert_eq!(topic["kind"], "KafkaTopic");
    assert_eq!(topic.pointer("/spec/topicName"), Some(&json!("shop.events")));
    assert_eq!(topic.pointer("/spec/config/retention.ms"), Some(&json!(168 * 3_600_000_u64)));
    assert_eq!(topic.pointer("/metadata/labels/strimzi.io~1cluster"), Some(&json!("events")));
    assert_eq!(rendered.targets[0].claims[0].cost, 2.5);
}

fn component(properties: &str) -> Resource {
    app(&format!(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: orders, namespace: shop}}
spec:
  components:
    - name: orders-db
      type: postgresql
      properties: {properties}
  policies:
    - {{name: dev, type: topology, properties: {{environment: dev}}}}
    - {{name: prod, type: topology, properties: {{environment: prod}}}}
"#
    ))
}

#[test]
fn parameters_outside_the_schema_are_refused_at_their_path() {
    let error = render_err(&component("{storageGB: big, size: 3}"), &platform());
    assert!(error.contains("spec.components[0].properties.storageGB"), "{error}");
    assert!(error.contains("\"big\" is not of type \"integer\""), "{error}");
    assert!(error.contains("size"), "{error}");
}

#[test]
fn limits_refuse_what_the_environment_does_not_allow_and_say_why() {
    let error = render_err(&component("{storageGB: 30, highAvailability: false}"), &platform());
    assert!(error.contains("development databases have at most 20 GB: limit of capability postgresql in environment dev"), "{error}");
    assert!(error.contains("production databases must be highly available"), "{error}");
    assert!(error.contains("spec.components[0].properties.storageGB"), "{error}");
    assert!(error.contains("spec.components[0].properties.highAvailability"), "{error}");

    let error = render_err(&component("{highAvailability: true, region: us-east-1}"), &platform());
    assert!(error.contains("spec.components[0].properties.region"), "{error}");
    assert!(error.contains("data stays in the EU"), "{error}");
}

#[test]
fn an_unknown_capability_type_names_what_exists() {
    let mut bad = component("{}");
    bad.spec["components"][0]["type"] = json!("postgresq");
    let error = render_err(&bad, &platform());
    assert!(error.contains("spec.components[0].type"), "{error}");
    assert!(error.contains("did you mean \"postgres\"?"), "{error}");
    assert!(error.contains("capabilities: bucket, kafka-topic, postgres, postgresql, redis"), "{error}");

    let score = app(&SCORE.replace("type: postgres", "type: mongodb"));
    let error = render_err(&score, &platform());
    assert!(error.contains("spec.resources.db.type"), "{error}");
    assert!(error.contains("neither built in"), "{error}");

    let claim = app("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Claim\nmetadata: {name: x, namespace: shop}\nspec: {type: mysql}\n");
    let error = render_err(&claim, &platform());
    assert!(error.contains("spec.type: no Capability named \"mysql\""), "{error}");
}

const PROD_ONLY: &str = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Capability
metadata: {name: search}
spec:
  outputs: [{name: url}]
  compositions:
    - name: elastic-cloud
      selector: {environments: [prod]}
      connection:
        outputs: {url: {value: "https://${{ context.name }}.es.example.com"}}
      template:
        outputs:
          deployment:
            apiVersion: es.example.com/v1
            kind: Deployment
            metadata: {name: "${{ context.name }}"}
            spec: {size: "${{ parameters.size }}"}
"#;

#[test]
fn a_target_without_a_composition_and_a_failing_template_are_errors_naming_the_claim() {
    let search = app(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: find, namespace: shop}\nspec:\n  components:\n    - {name: index, type: search, properties: {}}\n  policies:\n    - {name: dev, type: topology, properties: {environment: dev}}\n",
    );
    let error = render_err(&search, &platform_with(PROD_ONLY));
    assert!(
        error.contains("spec.components[0].type: capability search has no composition for cluster dev-eu-1 (environment dev)"),
        "{error}"
    );

    let mut prod = search.clone();
    prod.spec["policies"][0]["properties"]["environment"] = json!("prod");
    let error = render_err(&prod, &platform_with(PROD_ONLY));
    assert!(error.contains("spec.components[0].properties: capability search composition elastic-cloud failed at spec.compositions[0].template.outputs.deployment.spec.size"), "{error}");
}

#[test]
fn an_output_a_workload_reads_must_be_produced() {
    let score = app(&SCORE.replace("${resources.db.host}", "${resources.db.hostname}"));
    let error = render_err(&score, &platform());
    assert!(error.contains("spec.containers.api.variables.DB_HOST"), "{error}");
    assert!(error.contains("resource \"db\" has no output \"hostname\""), "{error}");
}

#[test]
fn claims_take_no_traits() {
    let mut bad = component("{}");
    bad.spec["components"][0]["traits"] = json!([{"type": "scaler", "properties": {"replicas": 2}}]);
    let error = render_err(&bad, &platform());
    assert!(error.contains("spec.components[0].traits[0]: component orders-db claims a postgresql"), "{error}");
}

fn catalog(in_use: &[(&str, &str)], migration: Option<Migration>) -> Arc<ClaimCatalog> {
    let mut catalog = ClaimCatalog::default();
    for (cluster, composition) in in_use {
        catalog.in_use.insert(("shop".into(), "orders-db".into(), cluster.to_string()), composition.to_string());
    }
    if let Some(migration) = migration {
        catalog.migrations.insert(("shop".into(), "orders-db".into()), migration);
    }
    Arc::new(catalog)
}

fn prod_only(claims: Arc<ClaimCatalog>) -> RenderOptions {
    RenderOptions { environment: Some("prod".into()), claims: Some(claims), ..Default::default() }
}

/// Instances in prod: (composition, serving), and which secret the consumer reads its password from.
fn prod_state(rendered: &Rendered) -> (Vec<(String, bool)>, String) {
    let target = &rendered.targets[0];
    let instances = target.claims.iter().map(|c| (c.composition.clone(), c.serving)).collect();
    let (secret, _) = secret_ref(env_of(&target.objects, "orders"), "ORDERS_DB_PASSWORD").expect("password wired");
    (instances, secret.to_string())
}

#[test]
fn an_instance_keeps_its_composition_when_the_selection_changes() {
    let platform = platform();
    let options = prod_only(catalog(&[("prod-eu-1", "gcp-cloudsql")], None));
    let rendered = render_ok(&orders(), &platform, &options);
    assert_eq!(prod_state(&rendered), (vec![("gcp-cloudsql".into(), true)], "orders-db-cloudsql".into()));
    assert!(
        rendered.warnings.iter().any(|w| w.contains("stays on composition gcp-cloudsql; the platform now selects aws-rds")),
        "{:?}",
        rendered.warnings
    );

    let gone = catalog(&[("prod-eu-1", "azure")], None);
    let error = render(&orders(), "app.yaml", &platform, &prod_only(gone)).expect_err("a vanished composition").to_string();
    assert!(error.contains("uses composition azure, which capability postgresql no longer has"), "{error}");
}

#[test]
fn a_migration_adds_the_new_instance_switches_when_ready_and_deletes_the_old_only_when_confirmed() {
    let platform = platform();
    let migration = |ready: bool, confirm_delete: bool| Migration {
        composition: "gcp-cloudsql".into(),
        environment: Some("prod".into()),
        confirm_delete,
        hold: false,
        ready: if ready { BTreeSet::from(["prod-eu-1".to_string()]) } else { BTreeSet::new() },
    };
    let in_use = [("prod-eu-1", "aws-rds")];
    // phase -> (new instance ready, delete confirmed, instances (composition, serving), secret consumers read)
    type Phase<'a> = (bool, bool, Vec<(String, bool)>, &'a str);
    let phases: BTreeMap<&str, Phase> = BTreeMap::from([
        ("1 provisioning", (false, false, vec![("aws-rds".into(), true), ("gcp-cloudsql".into(), false)], "orders-db-rds")),
        (
            "2 confirmed early: nothing deleted before ready",
            (false, true, vec![("aws-rds".into(), true), ("gcp-cloudsql".into(), false)], "orders-db-rds"),
        ),
        ("3 switched", (true, false, vec![("aws-rds".into(), false), ("gcp-cloudsql".into(), true)], "orders-db-cloudsql")),
        ("4 completed", (true, true, vec![("gcp-cloudsql".into(), true)], "orders-db-cloudsql")),
    ]);
    for (phase, (ready, confirm, instances, secret)) in phases {
        let rendered = render_ok(&orders(), &platform, &prod_only(catalog(&in_use, Some(migration(ready, confirm)))));
        assert_eq!(prod_state(&rendered), (instances.clone(), secret.to_string()), "{phase}");
        let objects = kinds(&rendered.targets[0].objects);
        assert_eq!(objects.contains("Instance/orders-db"), instances.iter().any(|(c, _)| c == "aws-rds"), "{phase}: {objects:?}");
        assert!(objects.contains("DatabaseInstance/orders-db-gcp"), "{phase}: {objects:?}");
    }
    // Once the new instance is the one in use, the migration has nothing left to do.
    let done = render_ok(&orders(), &platform, &prod_only(catalog(&[("prod-eu-1", "gcp-cloudsql")], Some(migration(true, true)))));
    assert_eq!(prod_state(&done), (vec![("gcp-cloudsql".into(), true)], "orders-db-cloudsql".into()));
    // Held (while the data is copied), consumers stay on the old instance, which is kept.
    let held = Migration { hold: true, ..migration(true, true) };
    let holding = render_ok(&orders(), &platform, &prod_only(catalog(&in_use, Some(held))));
    assert_eq!(prod_state(&holding), (vec![("aws-rds".into(), true), ("gcp-cloudsql".into(), false)], "orders-db-rds".into()));
    // A migration for another environment leaves prod alone.
    let elsewhere = Migration { environment: Some("dev".into()), ..migration(true, true) };
    let untouched = render_ok(&orders(), &platform, &prod_only(catalog(&in_use, Some(elsewhere))));
    assert_eq!(prod_state(&untouched), (vec![("aws-rds".into(), true)], "orders-db-rds".into()));
}

#[test]
fn a_migration_to_a_composition_that_does_not_exist_is_refused() {
    let migration =
        Migration { composition: "azure".into(), environment: None, confirm_delete: false, hold: false, ready: BTreeSet::new() };
    let error = render(&orders(), "app.yaml", &platform(), &prod_only(catalog(&[], Some(migration)))).expect_err("refused").to_string();
    assert!(error.contains("ClaimMigration shop/orders-db moves to composition \"azure\""), "{error}");
    assert!(error.contains("cloudnative-pg, aws-rds, gcp-cloudsql"), "{error}");
}

#[test]
fn rego_policies_see_claims() {
    let policy = r#"
apiVersion: platform.heimdall.dev/v1alpha1
kind: Policy
metadata: {name: claim-cost}
spec:
  rego: |
    package heimdall.claims
    import rego.v1
    deny contains msg if {
      some claim in input.claims
      claim.cost > 30
      msg := sprintf("claim %s costs %v a month; ask the platform team", [claim.claim, claim.cost])
    }
"#;
    let rendered = render_ok(&orders(), &platform_with(policy), &RenderOptions::default());
    let denied: Vec<(&str, &str)> = rendered.violations().map(|f| (f.cluster.as_str(), f.finding.message.as_str())).collect();
    assert_eq!(denied, [("prod-eu-1", "claim orders-db costs 35.75 a month; ask the platform team")]);
}

#[test]
fn generated_credentials_are_asked_for_then_delivered_and_refused_where_they_cannot_go() {
    use heimdall_render::SecretCatalog;
    use heimdall_render::secrets::CatalogEntry;
    let cache = app(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: cart, namespace: shop}\nspec:\n  components:\n    - {name: cache, type: redis}\n  policies:\n    - {name: dev, type: topology, properties: {environment: dev}}\n",
    );
    let platform = platform();
    let with = |catalog: SecretCatalog| RenderOptions { secrets: Some(Arc::new(catalog)), ..Default::default() };
    let pending = render_ok(&cache, &platform, &with(SecretCatalog::default()));
    assert_eq!(json!(pending.generate), json!([{"namespace": "shop", "name": "cache-redis-auth", "keys": ["password"]}]));
    assert!(pending.targets[0].secrets.is_empty(), "nothing to deliver until it exists");

    let mut catalog = SecretCatalog::default();
    catalog.insert("shop", "cache-redis-auth", CatalogEntry { type_: "Opaque".into(), keys: [("password".to_string(), 1)].into() });
    let ready = render_ok(&cache, &platform, &with(catalog.clone()));
    assert!(ready.generate.is_empty());
    assert_eq!(ready.targets[0].secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["cache-redis-auth"]);

    let external = platform_with(
        "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata: {name: dev-ext-1, labels: {env: dev}}\nspec: {secrets: {delivery: external}}\n",
    );
    let error = render(&cache, "app.yaml", &external, &with(catalog)).expect_err("refused").to_string();
    assert!(
        error.contains("secret cache-redis-auth is generated by Heimdall, and cluster dev-ext-1 takes secrets only from an external store"),
        "{error}"
    );
}
