//! Every size and count Heimdall accepts from a caller, in one place, so a
//! refusal can say which limit and its value. Kubernetes' own limits are
//! the model: the API server refuses a request over 3 MiB and etcd an
//! object over about 1.5 MiB, and a ConfigMap holds at most 1 MiB.

/// Documents in one apply (`POST /api/v1/apply`, JSON or YAML).
pub const MAX_DOCUMENTS: usize = 1000;

/// Bytes of one string value anywhere in a document (a ConfigMap's data, an env value).
pub const MAX_STRING_BYTES: usize = 1024 * 1024;

/// Bytes of one stored document, as JSON.
pub const MAX_DOCUMENT_BYTES: usize = 1536 * 1024;

/// Bytes of one rendered Kubernetes object, as JSON: what etcd stores.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// The path and size of the first string in `value` longer than [`MAX_STRING_BYTES`].
pub fn oversized_string(value: &serde_json::Value, path: &str) -> Option<(String, usize)> {
    use serde_json::Value;
    match value {
        Value::String(text) if text.len() > MAX_STRING_BYTES => Some((path.to_string(), text.len())),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| oversized_string(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            if key.len() > MAX_STRING_BYTES {
                return Some((path.to_string(), key.len()));
            }
            oversized_string(child, &if path.is_empty() { key.clone() } else { format!("{path}.{key}") })
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_oversized_string_is_found_by_path() {
        let big = "x".repeat(MAX_STRING_BYTES + 1);
        let value = json!({"spec": {"components": [{"properties": {"env": [{"value": "ok"}, {"value": big}]}}]}});
        assert_eq!(oversized_string(&value, ""), Some(("spec.components[0].properties.env[1].value".into(), MAX_STRING_BYTES + 1)));
        assert_eq!(oversized_string(&json!({"a": "small"}), ""), None);
    }
}
