//! Property tests: whatever a user writes, parsing, validation and rendering
//! return a value or an error, and never panic.

use heimdall_model::{decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, render};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Arbitrary JSON values, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-zA-Z0-9 /:.${}_-]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PROPERTY_KEYS: &[&str] = &[
    "image",
    "ports",
    "port",
    "cmd",
    "args",
    "env",
    "cpu",
    "memory",
    "limit",
    "volumeMounts",
    "volumes",
    "labels",
    "annotations",
    "schedule",
    "count",
    "objects",
    "replicas",
    "http",
    "domain",
    "min",
    "max",
    "cpuUtil",
    "operations",
    "spec",
    "metadata",
    "containerName",
    "name",
    "pvc",
    "strategy",
    "envMappings",
    "hostAliases",
    "exposeType",
    "readinessProbe",
];
const COMPONENT_TYPES: &[&str] =
    &["webservice", "worker", "daemon", "statefulset", "task", "cron-task", "k8s-objects", "ref-objects", "bogus"];
const TRAIT_TYPES: &[&str] = &[
    "scaler",
    "gateway",
    "expose",
    "labels",
    "annotations",
    "env",
    "storage",
    "sidecar",
    "init-container",
    "hpa",
    "cpuscaler",
    "resource",
    "service-account",
    "affinity",
    "securitycontext",
    "command",
    "container-image",
    "startup-probe",
    "k8s-update-strategy",
    "json-patch",
    "json-merge-patch",
    "service-binding",
    "hostalias",
    "pure-ingress",
    "topologyspreadconstraints",
    "podsecuritycontext",
    "nope",
];

/// Properties built from the keys definitions read, with arbitrary values.
fn properties() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(PROPERTY_KEYS), value()), 0..6).prop_map(|pairs| {
        let mut map = Map::new();
        map.insert("image".into(), json!("nginx:1"));
        for (key, value) in pairs {
            map.insert(key.to_string(), value);
        }
        Value::Object(map)
    })
}

fn application() -> impl Strategy<Value = Value> {
    let component = (
        prop::sample::select(COMPONENT_TYPES),
        properties(),
        prop::collection::vec((prop::sample::select(TRAIT_TYPES), properties()), 0..3),
    );
    prop::collection::vec(component, 1..4).prop_map(|components| {
        let components: Vec<Value> = components
            .into_iter()
            .enumerate()
            .map(|(i, (type_, props, traits))| {
                let traits: Vec<Value> = traits.into_iter().map(|(t, p)| json!({"type": t, "properties": p})).collect();
                json!({"name": format!("c{i}"), "type": type_, "properties": props, "traits": traits})
            })
            .collect();
        json!({"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "fuzz", "namespace": "shop"}, "spec": {"components": components}})
    })
}

fn render_value(document: &Value) {
    if let Ok(decoded) = decode(document, "fuzz.yaml", "default") {
        let _ = render(&decoded.resource, "fuzz.yaml", &Platform::builtin(), &RenderOptions::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_any_text_never_panics(text in "(?s).{0,400}") {
        let _ = parse_documents(&text, "fuzz.yaml");
    }

    #[test]
    fn any_spec_never_panics(spec in value()) {
        render_value(&json!({"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "fuzz"}, "spec": spec}));
        render_value(&json!({"apiVersion": "score.dev/v1b1", "kind": "Workload", "metadata": {"name": "fuzz"}, "spec": spec}));
    }

    #[test]
    fn plausible_applications_never_panic(app in application()) {
        render_value(&app);
    }

    #[test]
    fn rendering_is_deterministic(app in application()) {
        if let Ok(decoded) = decode(&app, "fuzz.yaml", "default") {
            let first = render(&decoded.resource, "fuzz.yaml", &Platform::builtin(), &RenderOptions::default()).map(|r| serde_json::to_string(&r.targets).ok());
            let second = render(&decoded.resource, "fuzz.yaml", &Platform::builtin(), &RenderOptions::default()).map(|r| serde_json::to_string(&r.targets).ok());
            prop_assert_eq!(first.ok(), second.ok());
        }
    }
}
