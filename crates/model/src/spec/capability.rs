//! Capabilities: infrastructure a developer asks for by type (`postgresql`,
//! `bucket`), provided by the platform team's compositions per environment and
//! cluster, bounded by limits and budgets. `Capability` is the platform
//! team's kind; `Claim` a developer's standalone request; `ClaimMigration`
//! moves an instance to another composition as a planned operation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::selector::LabelSelectorSpec;
use crate::validation::{check_dns_label, check_labels};

/// A kind of infrastructure the platform offers. Its name is the type
/// developers use (`type: postgresql`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapabilitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// More type names that mean this capability (Score's `postgres` for `postgresql`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// JSON Schema of a claim's parameters, with defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// The connection details every instance provides.
    #[serde(default)]
    pub outputs: Vec<CapabilityOutput>,
    /// How an instance is provided; the first whose selector matches a target wins.
    pub compositions: Vec<Composition>,
    /// Allowed parameter values per environment and tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapabilityOutput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Composition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who provides it (`cloudnative-pg`, `aws`, `gcp`): shown in plans and status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Which targets it serves; empty matches every target.
    #[serde(default)]
    pub selector: CompositionSelector,
    /// What one instance costs a month: `monthly` plus `per` parameter unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    pub connection: Connection,
    /// Objects by name, as structured values with `${{ expression }}`
    /// placeholders (the ComponentDefinition mechanism): `outputs: {name: object}`.
    #[schema(value_type = Object)]
    pub template: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositionSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    #[serde(default)]
    pub cluster_selector: LabelSelectorSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cost {
    #[serde(default)]
    pub monthly: f64,
    /// Price per unit of a numeric parameter (`storageGB: 0.115`), or of a
    /// boolean one when true (`highAvailability: 180`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per: BTreeMap<String, f64>,
}

/// Where an instance's connection details come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    /// The Secret the provider writes in the target namespace (a template:
    /// `${{ context.name }}-app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Credentials the hub generates once and delivers through its secrets
    /// (sealed per cluster), for providers that take a password instead of
    /// making one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GeneratedCredentials>,
    /// Each capability output: a `key` of `secret`, a `generated` key, or a `value` template.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratedCredentials {
    /// The Secret's name (a template), in the claim's namespace.
    pub secret: String,
    /// Keys to fill with a random value (32 letters and digits) when missing.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Parameters a claim must satisfy where the limit applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limit {
    /// Environments it applies in; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// Tenants it applies to; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// JSON Schema the parameters must satisfy (`properties: {storageGB: {maximum: 20}}`).
    #[schema(value_type = Object)]
    pub schema: Value,
    /// Why, in words, shown with a refusal: "prod databases must be highly available".
    pub message: String,
}

/// A developer's standalone request for an instance of a capability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimSpec {
    /// The capability (`postgresql`).
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    /// Where it goes, by environment name; default: the organization's default environments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

/// Moves a claim's instances to another composition: the new instance is
/// made beside the old, consumers switch once it is ready, and the old is
/// deleted only after `confirmDelete`. Its name is the claim's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimMigrationSpec {
    /// The composition to move to.
    pub composition: String,
    /// Only targets in this environment; default: every target of the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Delete the old instance once consumers use the new one.
    #[serde(default)]
    pub confirm_delete: bool,
    /// Keep consumers on the old instance even when the new one is ready,
    /// while the data is copied; set it back to false to switch.
    #[serde(default)]
    pub hold: bool,
}

fn check_output_source(source: &OutputSource, path: &str, problems: &mut Vec<Problem>) {
    let given = [source.key.is_some(), source.generated.is_some(), source.value.is_some()].iter().filter(|g| **g).count();
    if given != 1 {
        problems.push(Problem::new(path, "expected exactly one of key (of the connection secret), generated or value"));
    }
}

pub(crate) fn validate_capability(spec: &Value) -> Vec<Problem> {
    let spec = match super::deserialize_at::<CapabilitySpec>(spec, "spec") {
        Ok(spec) => spec,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    if let Some(schema) = &spec.parameters
        && !schema.is_object()
    {
        problems.push(Problem::new("spec.parameters", "expected a JSON Schema (a mapping)"));
    }
    for (i, alias) in spec.aliases.iter().enumerate() {
        if let Err(e) = check_dns_label(alias) {
            problems.push(Problem::new(format!("spec.aliases[{i}]"), e));
        }
    }
    super::check_unique(spec.outputs.iter().map(|o| o.name.as_str()), |i| format!("spec.outputs[{i}].name"), "output", &mut problems);
    for (i, output) in spec.outputs.iter().enumerate() {
        if output.name.is_empty() || !output.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            problems.push(Problem::new(
                format!("spec.outputs[{i}].name"),
                "expected letters, digits and _ (it becomes part of variable names)",
            ));
        }
    }
    if spec.compositions.is_empty() {
        problems.push(Problem::new("spec.compositions", "expected at least one composition"));
    }
    super::check_unique(
        spec.compositions.iter().map(|c| c.name.as_str()),
        |i| format!("spec.compositions[{i}].name"),
        "composition",
        &mut problems,
    );
    let declared: Vec<&str> = spec.outputs.iter().map(|o| o.name.as_str()).collect();
    for (i, composition) in spec.compositions.iter().enumerate() {
        let at = format!("spec.compositions[{i}]");
        if let Err(e) = check_dns_label(&composition.name) {
            problems.push(Problem::new(format!("{at}.name"), e));
        }
        for (j, env) in composition.selector.environments.iter().enumerate() {
            if let Err(e) = check_dns_label(env) {
                problems.push(Problem::new(format!("{at}.selector.environments[{j}]"), e));
            }
        }
        check_labels(
            &composition.selector.cluster_selector.match_labels,
            &format!("{at}.selector.clusterSelector.matchLabels"),
            &mut problems,
        );
        if let Some(cost) = &composition.cost {
            if cost.monthly < 0.0 || !cost.monthly.is_finite() {
                problems.push(Problem::new(format!("{at}.cost.monthly"), "expected a price of zero or more"));
            }
            for (parameter, price) in &cost.per {
                if *price < 0.0 || !price.is_finite() {
                    problems.push(Problem::new(format!("{at}.cost.per.{parameter}"), "expected a price of zero or more"));
                }
            }
        }
        let connection = &composition.connection;
        for (name, source) in &connection.outputs {
            let path = format!("{at}.connection.outputs.{name}");
            if !declared.contains(&name.as_str()) {
                problems
                    .push(Problem::new(&path, format!("{name:?} is not an output of this capability (outputs: {})", declared.join(", "))));
            }
            check_output_source(source, &path, &mut problems);
            if source.key.is_some() && connection.secret.is_none() {
                problems.push(Problem::new(format!("{path}.key"), "a key needs connection.secret: the Secret the provider writes"));
            }
            if let Some(key) = &source.generated
                && !connection.generate.as_ref().is_some_and(|g| g.keys.contains(key))
            {
                problems.push(Problem::new(format!("{path}.generated"), format!("{key:?} is not among connection.generate.keys")));
            }
        }
        for output in &declared {
            if !connection.outputs.contains_key(*output) {
                problems.push(Problem::new(
                    format!("{at}.connection.outputs"),
                    format!("output {output:?} is not produced by composition {}: add it with a key, generated or value", composition.name),
                ));
            }
        }
        if let Some(generate) = &connection.generate {
            if generate.keys.is_empty() {
                problems.push(Problem::new(format!("{at}.connection.generate.keys"), "expected at least one key to generate"));
            }
            for (j, key) in generate.keys.iter().enumerate() {
                if let Err(e) = crate::validation::check_secret_key(key) {
                    problems.push(Problem::new(format!("{at}.connection.generate.keys[{j}]"), e));
                }
            }
        }
        match composition.template.as_object() {
            Some(template) => {
                for key in template.keys().filter(|k| *k != "outputs") {
                    problems.push(Problem::new(format!("{at}.template.{key}"), "unknown field: expected outputs (objects by name)"));
                }
                if !template.get("outputs").is_some_and(Value::is_object) {
                    problems.push(Problem::new(format!("{at}.template.outputs"), "expected a mapping of object name to object template"));
                }
            }
            None => problems.push(Problem::new(format!("{at}.template"), "expected a mapping with outputs")),
        }
    }
    for (i, limit) in spec.limits.iter().enumerate() {
        if !limit.schema.is_object() {
            problems.push(Problem::new(format!("spec.limits[{i}].schema"), "expected a JSON Schema (a mapping)"));
        }
        if limit.message.trim().is_empty() {
            problems.push(Problem::new(format!("spec.limits[{i}].message"), "expected the reason, in words"));
        }
    }
    problems
}

pub(crate) fn validate_claim(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<ClaimSpec>(spec, "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            if let Err(e) = check_dns_label(&spec.type_) {
                problems.push(Problem::new("spec.type", e));
            }
            for (i, env) in spec.environments.iter().enumerate() {
                if let Err(e) = check_dns_label(env) {
                    problems.push(Problem::new(format!("spec.environments[{i}]"), e));
                }
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_claim_migration(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<ClaimMigrationSpec>(spec, "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            if let Err(e) = check_dns_label(&spec.composition) {
                problems.push(Problem::new("spec.composition", e));
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capability() -> Value {
        json!({
            "outputs": [{"name": "host"}, {"name": "password"}],
            "compositions": [{
                "name": "in-cluster",
                "connection": {"secret": "${{ context.name }}-app", "outputs": {"host": {"value": "${{ context.name }}-rw"}, "password": {"key": "password"}}},
                "template": {"outputs": {"db": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}}
            }]
        })
    }

    #[test]
    fn a_complete_capability_is_valid() {
        assert_eq!(validate_capability(&capability()), vec![]);
    }

    #[test]
    fn every_output_must_be_produced_by_every_composition() {
        let mut spec = capability();
        spec["compositions"][0]["connection"]["outputs"].as_object_mut().expect("map").remove("password");
        let problems = validate_capability(&spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.compositions[0].connection.outputs");
        assert!(problems[0].message.contains("\"password\" is not produced by composition in-cluster"), "{}", problems[0].message);
    }

    #[test]
    fn output_sources_are_one_of_three_and_keys_need_a_secret() {
        let mut spec = capability();
        spec["compositions"][0]["connection"]["outputs"]["host"] = json!({"value": "x", "key": "host"});
        spec["compositions"][0]["connection"].as_object_mut().expect("map").remove("secret");
        spec["compositions"][0]["connection"]["outputs"]["ghost"] = json!({"generated": "pw"});
        let paths: Vec<String> = validate_capability(&spec).into_iter().map(|p| p.path).collect();
        assert!(paths.contains(&"spec.compositions[0].connection.outputs.host".to_string()), "{paths:?}");
        assert!(paths.contains(&"spec.compositions[0].connection.outputs.password.key".to_string()), "{paths:?}");
        assert!(paths.contains(&"spec.compositions[0].connection.outputs.ghost".to_string()), "{paths:?}");
        assert!(paths.contains(&"spec.compositions[0].connection.outputs.ghost.generated".to_string()), "{paths:?}");
    }

    #[test]
    fn compositions_and_limits_are_checked() {
        let mut spec = capability();
        spec["compositions"][0]["cost"] = json!({"monthly": -1});
        spec["limits"] = json!([{"schema": "no", "message": " "}]);
        let paths: Vec<String> = validate_capability(&spec).into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["spec.compositions[0].cost.monthly", "spec.limits[0].schema", "spec.limits[0].message"]);
        assert_eq!(validate_capability(&json!({"compositions": []}))[0].path, "spec.compositions");
    }

    #[test]
    fn claims_and_migrations_name_their_fields() {
        assert_eq!(validate_claim(&json!({"type": "postgresql", "parameters": {"storageGB": 10}})), vec![]);
        assert_eq!(validate_claim(&json!({"type": "Postgres SQL"}))[0].path, "spec.type");
        assert_eq!(validate_claim(&json!({"parameters": {}}))[0].path, "spec");
        assert_eq!(validate_claim_migration(&json!({"composition": "gcp-cloudsql", "confirmDelete": true})), vec![]);
        assert_eq!(validate_claim_migration(&json!({"composition": "x", "confirm": true}))[0].path, "spec.confirm");
    }
}
