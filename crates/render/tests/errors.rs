//! Bad input the renderer must explain: each case names its path and what was expected.

use heimdall_model::{decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, render};

/// The problems of rendering `yaml`, as `path: message` lines.
fn problems(yaml: &str) -> Vec<String> {
    let document = parse_documents(yaml, "app.yaml").expect("parse").remove(0);
    let app = decode(&document.value, "app.yaml", "default").unwrap_or_else(|e| panic!("{e}")).resource;
    match render(&app, "app.yaml", &Platform::builtin(), &RenderOptions::default()) {
        Ok(_) => panic!("expected {yaml} to fail"),
        Err(e) => {
            assert_eq!(e.document, "app.yaml");
            e.problems.iter().map(ToString::to_string).collect()
        }
    }
}

fn app(components: &str) -> String {
    format!("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: a, namespace: shop}}\nspec:\n{components}")
}

fn assert_one(problems: Vec<String>, path: &str, contains: &str) {
    assert!(
        problems.iter().any(|p| p.starts_with(&format!("{path}: ")) && p.contains(contains)),
        "no problem at {path} mentioning {contains:?}: {problems:#?}"
    );
}

#[test]
fn unknown_types_suggest_the_closest() {
    let p = problems(&app("  components:\n    - {name: web, type: webservise, properties: {image: x}}\n"));
    assert_one(p, "spec.components[0].type", "did you mean \"webservice\"");
    let p = problems(&app(
        "  components:\n    - name: web\n      type: webservice\n      properties: {image: x}\n      traits: [{type: scalar}]\n",
    ));
    assert_one(p, "spec.components[0].traits[0].type", "did you mean \"scaler\"");
}

#[test]
fn properties_of_the_wrong_type_or_missing_are_named() {
    let p = problems(&app(
        "  components:\n    - name: web\n      type: webservice\n      properties: {image: x}\n      traits: [{type: scaler, properties: {replicas: many}}]\n",
    ));
    assert_one(p, "spec.components[0].traits[0].properties.replicas", "expected i32");
    let p = problems(&app("  components:\n    - {name: web, type: webservice, properties: {ports: [{port: 80}]}}\n"));
    assert_one(p, "spec.components[0].properties", "missing field `image`");
    let p = problems(&app("  components:\n    - {name: web, type: webservice, properties: {image: x, replicas: 3}}\n"));
    assert_one(p, "spec.components[0].properties.replicas", "unknown property");
}

#[test]
fn a_trait_that_does_not_fit_its_component_is_an_error() {
    let p = problems(&app(
        "  components:\n    - name: job\n      type: task\n      properties: {image: x}\n      traits: [{type: scaler, properties: {replicas: 2}}]\n",
    ));
    assert_one(p, "spec.components[0].traits[0].type", "does not fit component type task (a Job)");
}

#[test]
fn dependency_cycles_and_unknown_dependencies_are_errors() {
    let p = problems(&app(
        "  components:\n    - {name: a, type: worker, dependsOn: [b], properties: {image: x}}\n    - {name: b, type: worker, dependsOn: [a], properties: {image: x}}\n",
    ));
    assert!(p.iter().any(|p| p.contains("dependency cycle: a -> b -> a") || p.contains("dependency cycle: b -> a -> b")), "{p:?}");
    let p = problems(&app(
        "  components:\n    - {name: a, type: worker, dependsOn: [bb], properties: {image: x}}\n    - {name: b, type: worker, properties: {image: x}}\n",
    ));
    assert_one(p, "spec.components[0].dependsOn[0]", "no component named \"bb\"; did you mean \"b\"?");
}

#[test]
fn overrides_and_workflow_references_must_exist() {
    let p = problems(&app(
        "  components:\n    - {name: web, type: webservice, properties: {image: x}}\n  policies:\n    - {name: o, type: override, properties: {components: [{name: wbe, properties: {image: y}}]}}\n",
    ));
    assert_one(p, "spec.policies[0].properties.components[0].name", "no component named \"wbe\"; did you mean \"web\"?");
    let p = problems(&app(
        "  components:\n    - {name: web, type: webservice, properties: {image: x}}\n  workflow:\n    steps:\n      - {name: d, type: deploy, properties: {policies: [missing]}}\n",
    ));
    assert_one(p, "spec.workflow.steps[0].properties.policies[0]", "no policy named \"missing\"");
    let p = problems(&app(
        "  components:\n    - {name: web, type: webservice, properties: {image: x}}\n  workflow:\n    steps: [{name: s, type: deploi}]\n",
    ));
    assert_one(p, "spec.workflow.steps[0].type", "did you mean \"deploy\"");
}

#[test]
fn score_placeholders_that_refer_to_nothing_are_errors() {
    let yaml = "apiVersion: score.dev/v1b1\nmetadata: {name: w}\ncontainers:\n  main:\n    image: x\n    variables:\n      DB: ${resources.db.host}\n      NAME: ${metadata.nope}\nresources:\n  cache: {type: service}\n";
    let p = problems(yaml);
    assert_one(p.clone(), "spec.containers.main.variables.DB", "does not declare (declared: cache)");
    assert_one(p, "spec.containers.main.variables.NAME", "refers to nothing");
}

#[test]
fn invalid_objects_from_raw_input_are_caught_by_kubernetes_types() {
    let p = problems(&app(
        "  components:\n    - name: raw\n      type: k8s-objects\n      properties:\n        objects:\n          - {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: http}]}}\n",
    ));
    assert_one(p, "spec.components[0]", "renders an invalid Service s: spec.ports[0].port");
    let p = problems(&app(
        "  components:\n    - name: web\n      type: webservice\n      properties: {image: x}\n      traits: [{type: resource, properties: {cpu: lots}}]\n",
    ));
    assert_one(p, "spec.components[0]", "\"lots\" is not a quantity");
}
