//! A small structural diff between two JSON values, recorded in the audit trail
//! so that a reader sees what a change did without fetching both versions.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::join_path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub op: ChangeOp,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub new: Option<Value>,
}

/// The changes that turn `old` into `new`, in path order. Objects are compared
/// key by key; lists of equal length item by item; anything else is replaced whole.
pub fn diff(old: &Value, new: &Value, path: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(old, new, path, &mut changes);
    changes
}

fn walk(old: &Value, new: &Value, path: &str, out: &mut Vec<Change>) {
    match (old, new) {
        _ if old == new => {}
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = join_path(path, &field_segment(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, &child, out),
                    (Some(x), None) => out.push(Change { op: ChangeOp::Remove, path: child, old: Some(x.clone()), new: None }),
                    (None, Some(y)) => out.push(Change { op: ChangeOp::Add, path: child, old: None, new: Some(y.clone()) }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(Change {
            op: ChangeOp::Replace,
            path: path.to_string(),
            old: (!old.is_null()).then(|| old.clone()),
            new: (!new.is_null()).then(|| new.clone()),
        }),
    }
}

/// Plain keys print as `.key`; keys with dots or slashes as `["key"]`, the
/// convention of the conformance corpus's expectation paths.
fn field_segment(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !key.is_empty() {
        key.to_string()
    } else {
        format!("[{key:?}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_adds_removes_and_replacements_by_path() {
        let old = json!({"components": [{"name": "web", "properties": {"image": "a:1", "port": 80}}], "x": 1});
        let new = json!({"components": [{"name": "web", "properties": {"image": "a:2", "app.io/k": "v"}}]});
        let changes = diff(&old, &new, "spec");
        let summary: Vec<(ChangeOp, &str)> = changes.iter().map(|c| (c.op.clone(), c.path.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (ChangeOp::Add, "spec.components[0].properties[\"app.io/k\"]"),
                (ChangeOp::Replace, "spec.components[0].properties.image"),
                (ChangeOp::Remove, "spec.components[0].properties.port"),
                (ChangeOp::Remove, "spec.x"),
            ]
        );
        assert_eq!(changes[1].old, Some(json!("a:1")));
        assert_eq!(changes[1].new, Some(json!("a:2")));
    }

    #[test]
    fn equal_values_have_no_changes_and_lists_of_new_length_are_replaced() {
        let v = json!({"a": [1, 2]});
        assert!(diff(&v, &v, "spec").is_empty());
        let changes = diff(&v, &json!({"a": [1, 2, 3]}), "spec");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op, ChangeOp::Replace);
        assert_eq!(changes[0].path, "spec.a");
    }
}
