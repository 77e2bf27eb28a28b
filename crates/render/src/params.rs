//! Reading a definition's `properties`: typed, with every error at its path.

use std::collections::BTreeMap;

use heimdall_model::Problem;
use heimdall_model::problem::join_path;
use heimdall_model::spec::deserialize_at;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Deserializes `properties` as `T` after checking its keys against `allowed`
/// (serde's `deny_unknown_fields` does not combine with flattened structs, so
/// the check is explicit and reports every unknown key with a suggestion).
pub fn read<T: DeserializeOwned>(properties: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<T, Vec<Problem>> {
    let mut problems = Vec::new();
    for key in properties.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = closest(key, allowed.iter().copied()).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            problems.push(Problem::new(join_path(path, key), format!("unknown property{hint} (expected one of {})", allowed.join(", "))));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    deserialize_at(&Value::Object(properties.clone()), path).map_err(|p| vec![p])
}

/// The candidate closest to `name` by edit distance, if any is close.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= 2.max(c.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A Kubernetes quantity written as a string or a number (`cpu: 0.5`, `memory: 1Gi`).
pub fn quantity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Raw>::deserialize(deserializer)?.map(|raw| match raw {
        Raw::Text(text) => text,
        Raw::Number(number) => number.to_string(),
    }))
}

/// Quantities in a map (`requests: {cpu: 1, memory: 1Gi}`).
pub fn quantities<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?;
    Ok(raw.map(|map| {
        map.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect()
    }))
}

/// A string map whose values may be written as numbers or booleans
/// (`prometheus.io/scrape: true`): Kubernetes wants strings.
pub fn string_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!("value of {k:?} must be a string, got {other}"))),
        })
        .collect()
}
