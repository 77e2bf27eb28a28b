//! Queries as Backstage's catalog API takes them: `filter` (each parameter
//! a set of `key=value` conditions that must all hold, several parameters
//! any of which may match; a key repeated in one set means any of its
//! values; a key alone means the field exists), `fullTextFilter`,
//! `orderField`, and facets. Keys are dot paths into the entity
//! (`spec.type`, `metadata.tags`) or `relations.<type>`; keys and values
//! compare case-insensitively.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::entity::Entity;

/// One condition: `key` has one of `values` (any value when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: String,
    pub values: Option<Vec<String>>,
}

/// Sets of conditions; an entity matches when every condition of any set holds.
/// No sets: everything matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub sets: Vec<Vec<Condition>>,
}

impl Filter {
    /// Parses `filter` query parameters (`kind=component,spec.type=service`).
    pub fn parse<S: AsRef<str>>(parameters: &[S]) -> Result<Filter, String> {
        let mut sets = Vec::new();
        for parameter in parameters {
            let mut conditions: Vec<Condition> = Vec::new();
            for part in parameter.as_ref().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, value) = match part.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(value.trim().to_lowercase())),
                    None => (part, None),
                };
                if key.is_empty() {
                    return Err(format!("filter {:?}: expected key=value or key", parameter.as_ref()));
                }
                let key = key.to_lowercase();
                match conditions.iter_mut().find(|c| c.key == key) {
                    Some(existing) => match (&mut existing.values, value) {
                        (Some(values), Some(value)) => values.push(value),
                        (slot, _) => *slot = None,
                    },
                    None => conditions.push(Condition { key, values: value.map(|v| vec![v]) }),
                }
            }
            if !conditions.is_empty() {
                sets.push(conditions);
            }
        }
        Ok(Filter { sets })
    }

    pub fn matches(&self, fields: &Fields) -> bool {
        self.sets.is_empty()
            || self.sets.iter().any(|set| {
                set.iter().all(|condition| match (fields.values(&condition.key), &condition.values) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(found), Some(wanted)) => found.iter().any(|f| wanted.iter().any(|w| f.eq_ignore_ascii_case(w))),
                })
            })
    }
}

/// An entity flattened for queries: every leaf value by its lowercase dot
/// path (lists of values under one path), relations under `relations.<type>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    by_path: BTreeMap<String, Vec<String>>,
}

fn flatten(prefix: &str, value: &Value, into: &mut BTreeMap<String, Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.to_lowercase() } else { format!("{prefix}.{}", key.to_lowercase()) };
                flatten(&path, child, into);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(prefix, item, into);
            }
        }
        Value::String(s) => into.entry(prefix.to_string()).or_default().push(s.clone()),
        Value::Bool(_) | Value::Number(_) => into.entry(prefix.to_string()).or_default().push(value.to_string()),
        Value::Null => {}
    }
}

impl Fields {
    /// The entity's fields; `relations` are read from the entity as given.
    pub fn of(entity: &Entity) -> Fields {
        let mut by_path = BTreeMap::new();
        by_path.insert("apiversion".into(), vec![entity.api_version.clone()]);
        by_path.insert("kind".into(), vec![entity.kind.clone()]);
        flatten("metadata", &serde_json::to_value(&entity.metadata).unwrap_or(Value::Null), &mut by_path);
        // Every etag is different and nobody filters by one: not worth an index entry each.
        by_path.remove("metadata.etag");
        flatten("spec", &entity.spec, &mut by_path);
        for relation in &entity.relations {
            by_path.entry(relation_path(&relation.type_)).or_default().push(relation.target_ref.clone());
        }
        Fields { by_path }
    }

    /// Adds a relation (`relations.<type>` = target).
    pub fn add_relation(&mut self, type_: &str, target: String) {
        self.by_path.entry(relation_path(type_)).or_default().push(target);
    }

    /// Removes one occurrence of a relation.
    pub fn remove_relation(&mut self, type_: &str, target: &str) {
        let path = relation_path(type_);
        if let Some(values) = self.by_path.get_mut(&path) {
            if let Some(index) = values.iter().position(|v| v == target) {
                values.swap_remove(index);
            }
            if values.is_empty() {
                self.by_path.remove(&path);
            }
        }
    }

    /// Every path with its values.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.by_path.iter()
    }

    pub fn values(&self, path: &str) -> Option<&Vec<String>> {
        self.by_path.get(path)
    }

    /// The first value at `path`, for ordering.
    pub fn first(&self, path: &str) -> Option<&str> {
        self.by_path.get(path).and_then(|v| v.first()).map(String::as_str)
    }

    /// Whether `term` (lowercase) occurs in any of `paths`, ignoring ASCII case.
    pub fn contains_text(&self, term: &str, paths: &[String]) -> bool {
        let needle = term.as_bytes();
        paths
            .iter()
            .filter_map(|p| self.by_path.get(p))
            .flatten()
            .any(|value| needle.is_empty() || value.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle)))
    }
}

/// The query path of a relation type: `relations.ownedby`.
pub fn relation_path(type_: &str) -> String {
    format!("relations.{}", type_.to_lowercase())
}

/// The fields a full-text search looks in when none are given: name,
/// title, description, tags and owner.
pub const DEFAULT_TEXT_FIELDS: &[&str] = &["metadata.name", "metadata.title", "metadata.description", "metadata.tags", "spec.owner"];

/// Sort order: a field and a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

impl Order {
    /// Parses `metadata.name,asc` (the direction is optional: ascending).
    pub fn parse(text: &str) -> Result<Order, String> {
        let (field, direction) = text.split_once(',').map_or((text, "asc"), |(f, d)| (f, d));
        let descending = match direction.trim().to_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            other => return Err(format!("orderField {text:?}: expected asc or desc, got {other:?}")),
        };
        if field.trim().is_empty() {
            return Err(format!("orderField {text:?}: expected field[,asc|desc]"));
        }
        Ok(Order { field: field.trim().to_lowercase(), descending })
    }
}

/// One value of a facet and how many matching entities have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::of(&serde_json::from_value(value).expect("entity"))
    }

    fn petstore() -> Fields {
        fields(json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "petstore", "title": "Pet Store", "tags": ["java", "rest"]},
            "spec": {"type": "service", "lifecycle": "experimental", "owner": "team-c"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-c"}],
        }))
    }

    #[test]
    fn filters_are_sets_of_conditions_any_of_which_may_match() {
        let entity = petstore();
        let matches = |filters: &[&str]| Filter::parse(filters).expect("parses").matches(&entity);
        assert!(matches(&[]));
        assert!(matches(&["kind=component,spec.type=service"]));
        assert!(matches(&["KIND=Component"]), "keys and values compare case-insensitively");
        assert!(!matches(&["kind=component,spec.type=website"]));
        assert!(matches(&["kind=api", "spec.type=service"]), "separate filters: any");
        assert!(matches(&["spec.type=website,spec.type=service"]), "a repeated key: any of its values");
        assert!(matches(&["metadata.tags=rest"]), "a list matches any element");
        assert!(matches(&["relations.ownedby=group:default/team-c"]));
        assert!(matches(&["metadata.title"]), "a key alone: the field exists");
        assert!(!matches(&["metadata.description"]));
        assert!(Filter::parse(&["=x"]).is_err());
    }

    #[test]
    fn full_text_and_order() {
        let entity = petstore();
        let paths: Vec<String> = DEFAULT_TEXT_FIELDS.iter().map(|s| s.to_string()).collect();
        assert!(entity.contains_text("pet st", &paths));
        assert!(entity.contains_text("team-c", &paths), "the owner is searched");
        assert!(!entity.contains_text("kafka", &paths));
        assert_eq!(Order::parse("metadata.name,desc"), Ok(Order { field: "metadata.name".into(), descending: true }));
        assert!(Order::parse("metadata.name,sideways").is_err());
    }
}
