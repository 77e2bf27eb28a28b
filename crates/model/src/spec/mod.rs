//! Typed specs of every kind. Validation deserializes a document's `spec` into
//! these types, so a wrong type or an unknown field is reported with its path.
//! Open-ended parts (component `properties`, trait `properties`) stay JSON: their
//! schema belongs to the component or trait definition, which the renderer checks.

pub mod application;
pub mod capability;
pub mod platform;
pub mod score;
pub mod secret;
pub mod tenant;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::{Problem, join_path};

/// Deserializes `value` as `T`, turning the first serde error into a [`Problem`]
/// whose path is rooted at `prefix`.
pub fn deserialize_at<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, Problem> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let inner = err.path().to_string();
        let path = if inner == "." { prefix.to_string() } else { join_path(prefix, &inner) };
        Problem::new(path, err.into_inner().to_string())
    })
}

/// Checks that names in a list are unique, reporting each repeat at its index.
pub(crate) fn check_unique<'a>(
    names: impl Iterator<Item = &'a str>,
    path: impl Fn(usize) -> String,
    what: &str,
    problems: &mut Vec<Problem>,
) {
    let mut seen = std::collections::HashMap::new();
    for (i, name) in names.enumerate() {
        if let Some(first) = seen.insert(name, i) {
            problems.push(Problem::new(path(i), format!("duplicate {what} {name:?}: already used at index {first}")));
        }
    }
}
