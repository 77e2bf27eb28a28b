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

/// At most this many condition sets from one predicate (`$any` of `$all`s multiplies).
pub const MAX_PREDICATE_SETS: usize = 256;

impl Filter {
    /// A filter from a predicate query of newer Backstage clients
    /// (`POST /entities/by-query`): `{"kind": "component", "spec.type":
    /// {"$in": [...]}, "metadata.tags": {"$exists": true}}`, `{"$all": [...]}`,
    /// `{"$any": [...]}`. Negation (`$not`, `$exists: false`) is refused:
    /// the index answers what is there, not what is missing. Errors are
    /// `(path, message)`.
    pub fn from_predicate(predicate: &Value) -> Result<Filter, (String, String)> {
        let sets = predicate_sets(predicate, "query")?;
        if sets.iter().any(Vec::is_empty) {
            return Ok(Filter::default());
        }
        Ok(Filter { sets })
    }

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

fn predicate_sets(predicate: &Value, path: &str) -> Result<Vec<Vec<Condition>>, (String, String)> {
    let fail = |path: String, message: &str| Err((path, message.to_string()));
    let Value::Object(object) = predicate else { return fail(path.to_string(), "expected an object") };
    let mut sets: Vec<Vec<Condition>> = vec![Vec::new()];
    for (key, value) in object {
        let at = format!("{path}.{key}");
        let operand = match key.as_str() {
            "$all" | "$any" => {
                let Value::Array(items) = value else { return fail(at, "expected a list of predicates") };
                let parts =
                    items.iter().enumerate().map(|(i, item)| predicate_sets(item, &format!("{at}[{i}]"))).collect::<Result<Vec<_>, _>>()?;
                if key == "$any" {
                    parts.into_iter().flatten().collect()
                } else {
                    parts.into_iter().try_fold(vec![Vec::new()], |acc, part| conjunction(acc, part, &at))?
                }
            }
            "$not" => return fail(at, "negation is not supported by this catalog"),
            field if field.starts_with('$') => return fail(at, "unknown operator: expected $all, $any, $in or $exists"),
            field => vec![vec![field_condition(field, value, &at)?]],
        };
        sets = conjunction(sets, operand, &at)?;
    }
    Ok(sets)
}

fn field_condition(field: &str, value: &Value, at: &str) -> Result<Condition, (String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let key = field.to_lowercase();
    match value {
        Value::Object(operator) if operator.len() == 1 => match operator.iter().next() {
            Some((op, Value::Array(values))) if op == "$in" => {
                let values = values
                    .iter()
                    .map(|v| text(v).ok_or((format!("{at}.$in"), "expected strings".to_string())))
                    .collect::<Result<_, _>>()?;
                Ok(Condition { key, values: Some(values) })
            }
            Some((op, Value::Bool(true))) if op == "$exists" => Ok(Condition { key, values: None }),
            Some((op, Value::Bool(false))) if op == "$exists" => {
                Err((format!("{at}.$exists"), "negation is not supported by this catalog".into()))
            }
            _ => Err((at.to_string(), "expected a value, {\"$in\": [...]} or {\"$exists\": true}".into())),
        },
        other => match text(other) {
            Some(value) => Ok(Condition { key, values: Some(vec![value]) }),
            None => Err((at.to_string(), "expected a value, {\"$in\": [...]} or {\"$exists\": true}".into())),
        },
    }
}

/// Every set of `a` joined with every set of `b`.
fn conjunction(a: Vec<Vec<Condition>>, b: Vec<Vec<Condition>>, at: &str) -> Result<Vec<Vec<Condition>>, (String, String)> {
    if a.len() * b.len() > MAX_PREDICATE_SETS {
        return Err((at.to_string(), format!("the query expands to more than {MAX_PREDICATE_SETS} alternatives")));
    }
    Ok(a.iter().flat_map(|left| b.iter().map(move |right| left.iter().chain(right).cloned().collect())).collect())
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
    fn predicates_become_the_same_sets_of_conditions() {
        let entity = petstore();
        let matches = |predicate: Value| Filter::from_predicate(&predicate).expect("converts").matches(&entity);
        assert!(matches(json!({})));
        assert!(matches(json!({"kind": "Component", "spec.type": {"$in": ["website", "service"]}})));
        assert!(!matches(json!({"kind": "component", "spec.type": "website"})));
        assert!(matches(json!({"$any": [{"kind": "api"}, {"metadata.tags": "rest"}]})));
        assert!(!matches(json!({"$all": [{"kind": "component"}, {"metadata.tags": "go"}]})));
        assert!(matches(json!({"$all": [{"$any": [{"kind": "api"}, {"kind": "component"}]}, {"spec.owner": {"$exists": true}}]})));
        assert!(matches(json!({"relations.ownedBy": "group:default/team-c"})));
        let refused = |predicate: Value| Filter::from_predicate(&predicate).expect_err("refused");
        assert_eq!(refused(json!({"$not": {"kind": "api"}})).0, "query.$not");
        assert_eq!(refused(json!({"$all": [{"kind": "api"}, {"spec.type": {"$exists": false}}]})).0, "query.$all[1].spec.type.$exists");
        assert_eq!(refused(json!({"kind": {"$regex": "a.*"}})).0, "query.kind");
        assert_eq!(refused(json!({"$nope": []})).0, "query.$nope");
        assert_eq!(refused(json!(["kind"])).0, "query");
        let wide: Vec<Value> = (0..20).map(|i| json!({"$any": [{"kind": format!("a{i}")}, {"kind": format!("b{i}")}]})).collect();
        assert!(refused(json!({"$all": wide})).1.contains("alternatives"), "2^20 alternatives are refused, not computed");
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
