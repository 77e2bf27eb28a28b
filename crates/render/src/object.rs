//! Helpers for Kubernetes objects held as JSON values, and the three ways
//! KubeVela traits patch them: strategic merge (by merge key), JSON merge
//! patch (RFC 7386) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// A Kubernetes object under construction.
pub type Object = Value;

pub fn api_version(object: &Object) -> &str {
    object.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
}

pub fn kind(object: &Object) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or_default()
}

pub fn name(object: &Object) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

pub fn namespace(object: &Object) -> Option<&str> {
    object.pointer("/metadata/namespace").and_then(Value::as_str)
}

/// The mapping at `path`, created (replacing non-mappings) as needed.
pub fn map_at<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut current = value;
    for key in path {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current = current
            .as_object_mut()
            .map(|m| m.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new())))
            .unwrap_or_else(|| unreachable!("made an object above"));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    match current {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

/// The list at `key` of `map`, created as needed.
pub fn list_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let entry = map.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    match entry {
        Value::Array(list) => list,
        _ => unreachable!("made a list above"),
    }
}

/// Where the pod template of a workload kind lives.
pub fn pod_template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some(&["spec", "template"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// The pod template (`metadata` and `spec`) of a workload, if its kind has one.
pub fn pod_template_mut(workload: &mut Object) -> Option<&mut Map<String, Value>> {
    let path = pod_template_path(kind(workload))?;
    Some(map_at(workload, path))
}

pub fn pod_spec_mut(workload: &mut Object) -> Option<&mut Map<String, Value>> {
    let template = pod_template_mut(workload)?;
    let spec = template.entry("spec").or_insert_with(|| Value::Object(Map::new()));
    spec.as_object_mut()
}

pub fn pod_spec(workload: &Object) -> Option<&Map<String, Value>> {
    let mut current = workload;
    for key in pod_template_path(kind(workload))? {
        current = current.get(key)?;
    }
    current.get("spec")?.as_object()
}

/// A ConfigMap or Secret volume source with its optional mode and items.
pub fn with_mode(mut source: Value, default_mode: Option<i32>, items: &Option<Vec<Value>>) -> Value {
    if let Some(mode) = default_mode {
        source["defaultMode"] = Value::from(mode);
    }
    if let Some(items) = items {
        source["items"] = Value::Array(items.clone());
    }
    source
}

/// Inserts `value` at `key` unless the mapping already has one.
pub fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

/// The merge key Kubernetes' strategic merge patch uses for a list field.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let has = |key: &str| items.iter().all(|item| item.get(key).is_some());
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "hostAliases" => Some("ip"),
        "ports" if has("containerPort") => Some("containerPort"),
        "ports" if has("port") => Some("port"),
        _ => None,
    }
}

/// Kubernetes strategic merge: mappings merge recursively, `null` deletes a
/// key, lists with a known merge key (containers by name, ports by port, ...)
/// merge item by item, other lists are replaced.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                    continue;
                }
                match target.get_mut(key) {
                    Some(Value::Array(existing)) if value.is_array() => {
                        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                        match merge_key(key, items).filter(|k| existing.iter().all(|item| item.get(*k).is_some())) {
                            Some(merge_key) => merge_lists(existing, items, merge_key),
                            None => *existing = items.to_vec(),
                        }
                    }
                    Some(existing) => strategic_merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn merge_lists(existing: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        match existing.iter_mut().find(|e| e.get(key) == item.get(key)) {
            Some(current) => strategic_merge(current, item),
            None => existing.push(item.clone()),
        }
    }
}

/// RFC 7386 JSON merge patch: mappings merge, `null` deletes, everything else replaces.
pub fn json_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                json_merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies RFC 6902 operations; an operation that cannot apply is an error
/// naming its index, and the target is left unchanged.
pub fn json_patch(target: &mut Value, operations: &[Value]) -> Result<(), (usize, String)> {
    let mut working = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(&mut working, operation).map_err(|e| (index, e))?;
    }
    *target = working;
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("the whole document cannot be the target of this operation".into());
    }
    if !path.starts_with('/') {
        return Err(format!("path {path:?} is not a JSON pointer: expected it to start with '/'"));
    }
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    Ok((parent.to_string(), unescape(last)))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let index =
                if last == "-" { list.len() } else { last.parse::<usize>().map_err(|_| format!("{last:?} is not a list index"))? };
            if index > list.len() {
                return Err(format!("index {index} is past the end of the list at {parent:?}"));
            }
            list.insert(index, value);
            Ok(())
        }
        Some(_) => Err(format!("{parent:?} is neither a mapping nor a list")),
        None => Err(format!("{parent:?} does not exist")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(|| format!("{path:?} does not exist")),
        Some(Value::Array(list)) => {
            let index = last.parse::<usize>().map_err(|_| format!("{last:?} is not a list index"))?;
            if index >= list.len() {
                return Err(format!("{path:?} does not exist"));
            }
            Ok(list.remove(index))
        }
        _ => Err(format!("{path:?} does not exist")),
    }
}

fn apply_operation(target: &mut Value, operation: &Value) -> Result<(), String> {
    let field = |name: &str| operation.get(name).and_then(Value::as_str).ok_or_else(|| format!("expected a string field {name:?}"));
    let op = field("op")?;
    let path = field("path")?;
    let value = || operation.get("value").cloned().ok_or_else(|| "expected a \"value\"".to_string());
    match op {
        "add" => add(target, path, value()?),
        "remove" => remove(target, path).map(drop),
        "replace" => {
            let slot = target.pointer_mut(path).ok_or_else(|| format!("{path:?} does not exist"))?;
            *slot = value()?;
            Ok(())
        }
        "move" => {
            let moved = remove(target, field("from")?)?;
            add(target, path, moved)
        }
        "copy" => {
            let copied = target.pointer(field("from")?).cloned().ok_or_else(|| "\"from\" does not exist".to_string())?;
            add(target, path, copied)
        }
        "test" => match target.pointer(path) {
            Some(current) if *current == value()? => Ok(()),
            _ => Err(format!("test failed at {path:?}")),
        },
        other => Err(format!("unknown op {other:?}: expected add, remove, replace, move, copy or test")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_deletes_nulls() {
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}], "drop": 1}});
        strategic_merge(&mut target, &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c"}], "drop": null}}));
        assert_eq!(target, json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}, {"name": "c"}]}}));
        let mut args = json!({"args": ["a"]});
        strategic_merge(&mut args, &json!({"args": ["b"]}));
        assert_eq!(args, json!({"args": ["b"]}), "lists without a merge key are replaced");
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        json_merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_applies_all_or_nothing() {
        let mut target = json!({"spec": {"replicas": 1, "list": [1, 3]}});
        json_patch(
            &mut target,
            &[
                json!({"op": "replace", "path": "/spec/replicas", "value": 2}),
                json!({"op": "add", "path": "/spec/list/1", "value": 2}),
                json!({"op": "add", "path": "/spec/new~1key", "value": true}),
            ],
        )
        .expect("applies");
        assert_eq!(target, json!({"spec": {"replicas": 2, "list": [1, 2, 3], "new/key": true}}));
        let before = target.clone();
        let err = json_patch(&mut target, &[json!({"op": "remove", "path": "/spec/replicas"}), json!({"op": "remove", "path": "/nope/x"})])
            .expect_err("fails");
        assert_eq!(err.0, 1);
        assert_eq!(target, before, "a failing patch changes nothing");
    }
}
