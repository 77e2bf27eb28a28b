//! Checks rendered objects against the Kubernetes API's own types
//! (k8s-openapi). Deserializing catches wrong types; serializing back and
//! comparing catches fields Kubernetes does not know, which serde would
//! otherwise drop in silence. Kinds without a type here (custom resources)
//! get the checks every object needs.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::object;

/// Problems with one object: `(path inside the object, message)`.
pub type ObjectProblems = Vec<(String, String)>;

const MAX_REPORTED: usize = 20;

fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), ObjectProblems> {
    let typed: T = serde_path_to_error::deserialize(object).map_err(|e| vec![(e.path().to_string(), e.inner().to_string())])?;
    let back = serde_json::to_value(&typed).map_err(|e| vec![(String::new(), e.to_string())])?;
    let mut problems = Vec::new();
    dropped(object, &back, "", &mut problems);
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Keys of `original` (with a non-null value) that did not survive the round trip.
fn dropped(original: &Value, typed: &Value, path: &str, problems: &mut ObjectProblems) {
    if problems.len() >= MAX_REPORTED {
        return;
    }
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match b.get(key) {
                    Some(typed_value) => dropped(value, typed_value, &child, problems),
                    None if value.is_null()
                        || value.as_object().is_some_and(|m| m.is_empty())
                        || value.as_array().is_some_and(|l| l.is_empty()) => {}
                    None => problems.push((child, "unknown field: Kubernetes would drop it".into())),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                dropped(x, y, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

/// Checks one object; `Ok` for a kind without a Rust type once its envelope is sound.
pub fn check(object: &Value) -> Result<(), ObjectProblems> {
    use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy, rbac};
    let mut problems = Vec::new();
    for field in ["apiVersion", "kind"] {
        if object.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            problems.push((field.to_string(), "required field is missing".to_string()));
        }
    }
    let name = object::name(object);
    if name.is_empty() {
        problems.push(("metadata.name".into(), "required field is missing".into()));
    } else if let Err(e) = check_name(object::kind(object), name) {
        problems.push(("metadata.name".into(), e));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    match (object::api_version(object), object::kind(object)) {
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(object),
        ("apps/v1", "StatefulSet") => round_trip::<apps::v1::StatefulSet>(object),
        ("apps/v1", "DaemonSet") => round_trip::<apps::v1::DaemonSet>(object),
        ("apps/v1", "ReplicaSet") => round_trip::<apps::v1::ReplicaSet>(object),
        ("batch/v1", "Job") => round_trip::<batch::v1::Job>(object),
        ("batch/v1", "CronJob") => round_trip::<batch::v1::CronJob>(object),
        ("v1", "Service") => round_trip::<core::v1::Service>(object),
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(object),
        ("v1", "Secret") => round_trip::<core::v1::Secret>(object),
        ("v1", "PersistentVolumeClaim") => round_trip::<core::v1::PersistentVolumeClaim>(object),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(object),
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(object),
        ("v1", "Pod") => round_trip::<core::v1::Pod>(object),
        ("v1", "ResourceQuota") => round_trip::<core::v1::ResourceQuota>(object),
        ("v1", "LimitRange") => round_trip::<core::v1::LimitRange>(object),
        ("networking.k8s.io/v1", "Ingress") => round_trip::<networking::v1::Ingress>(object),
        ("networking.k8s.io/v1", "NetworkPolicy") => round_trip::<networking::v1::NetworkPolicy>(object),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => round_trip::<autoscaling::v2::HorizontalPodAutoscaler>(object),
        ("autoscaling/v1", "HorizontalPodAutoscaler") => round_trip::<autoscaling::v1::HorizontalPodAutoscaler>(object),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<rbac::v1::RoleBinding>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<rbac::v1::ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trip::<rbac::v1::ClusterRoleBinding>(object),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<policy::v1::PodDisruptionBudget>(object),
        _ => Ok(()),
    }
}

/// Object names follow their kind's rule: RBAC names are path segments
/// (`team:reader` is fine), everything else a DNS subdomain.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if matches!(kind, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") {
        if name == "." || name == ".." || name.contains(['/', '%']) {
            return Err(format!("{name:?} is not a valid {kind} name: it may not be . or .. or contain / or %"));
        }
        return Ok(());
    }
    heimdall_model::validation::check_dns_subdomain(name)
}

/// Kinds that live outside namespaces, so the renderer never gives them one.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "IngressClass"
            | "RuntimeClass"
            | "CSIDriver"
            | "Node"
            | "APIService"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "ClusterIssuer"
    ) || (api_version.starts_with("gateway.networking.k8s.io/") && kind == "GatewayClass")
}

/// Resource quantities (under `requests`, `limits` and `hard`) become the
/// canonical strings the API server stores; one that is not a quantity is a problem.
pub fn normalize_quantities(value: &mut Value) -> ObjectProblems {
    let mut problems = Vec::new();
    normalize_at(value, "", &mut problems);
    problems
}

fn normalize_at(value: &mut Value, path: &str, problems: &mut ObjectProblems) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if matches!(key.as_str(), "requests" | "limits" | "hard")
                    && let Value::Object(quantities) = child
                {
                    for (name, quantity) in quantities.iter_mut() {
                        let text = match quantity {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => s.clone(),
                            _ => continue,
                        };
                        match crate::quantity::canonical(&text) {
                            Some(canonical) => *quantity = Value::String(canonical),
                            None => problems
                                .push((format!("{child_path}.{name}"), format!("{text:?} is not a quantity (e.g. 250m, 1.5, 512Mi, 2Gi)"))),
                        }
                    }
                    continue;
                }
                normalize_at(child, &child_path, problems);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                normalize_at(item, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_kinds_catch_unknown_fields_and_wrong_types() {
        let good = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        assert_eq!(check(&good), Ok(()));
        let mut typo = good.clone();
        typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = json!("Always");
        assert_eq!(
            check(&typo),
            Err(vec![("spec.template.spec.containers[0].imagePullPolcy".into(), "unknown field: Kubernetes would drop it".into())])
        );
        let mut wrong = good.clone();
        wrong["spec"]["replicas"] = json!("three");
        let problems = check(&wrong).expect_err("wrong type");
        assert_eq!(problems[0].0, "spec.replicas");
    }

    #[test]
    fn every_object_needs_an_envelope() {
        let problems = check(&json!({"kind": "Widget", "metadata": {"name": "Not_Valid"}})).expect_err("invalid");
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["apiVersion", "metadata.name"]);
        assert_eq!(
            check(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"anything": 1}})),
            Ok(())
        );
    }

    #[test]
    fn quantities_become_canonical_strings() {
        let mut value = json!({"resources": {"requests": {"cpu": 1, "memory": "1024Mi"}, "limits": {"cpu": 0.5, "memory": "lots"}}});
        let problems = normalize_quantities(&mut value);
        assert_eq!(value["resources"]["requests"], json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(value["resources"]["limits"]["cpu"], json!("500m"));
        assert_eq!(
            problems,
            vec![("resources.limits.memory".to_string(), "\"lots\" is not a quantity (e.g. 250m, 1.5, 512Mi, 2Gi)".to_string())]
        );
    }
}
