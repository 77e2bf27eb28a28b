//! Relations, as Backstage's built-in kinds processor derives them from
//! spec fields, with the inverse of each: an owner gives `ownedBy` on the
//! entity and `ownerOf` on the owner, and so on.

use heimdall_model::Problem;
use serde_json::Value;

use crate::entity::Entity;
use crate::reference::EntityRef;

/// A spec field that refers to other entities.
struct RefField {
    field: &'static str,
    /// The kind a reference without one means; `None`: the kind must be written.
    default_kind: Option<&'static str>,
    relation: &'static str,
    inverse: &'static str,
}

const fn field(field: &'static str, default_kind: Option<&'static str>, relation: &'static str, inverse: &'static str) -> RefField {
    RefField { field, default_kind, relation, inverse }
}

const OWNER: RefField = field("owner", Some("Group"), "ownedBy", "ownerOf");
const SYSTEM: RefField = field("system", Some("System"), "partOf", "hasPart");
const DEPENDS_ON: RefField = field("dependsOn", None, "dependsOn", "dependencyOf");
const DEPENDENCY_OF: RefField = field("dependencyOf", None, "dependencyOf", "dependsOn");

const COMPONENT: &[RefField] = &[
    OWNER,
    SYSTEM,
    field("subcomponentOf", Some("Component"), "partOf", "hasPart"),
    field("providesApis", Some("API"), "providesApi", "apiProvidedBy"),
    field("consumesApis", Some("API"), "consumesApi", "apiConsumedBy"),
    DEPENDS_ON,
    DEPENDENCY_OF,
];
const API: &[RefField] = &[OWNER, SYSTEM];
const RESOURCE: &[RefField] = &[OWNER, SYSTEM, DEPENDS_ON, DEPENDENCY_OF];
const SYSTEM_FIELDS: &[RefField] = &[OWNER, field("domain", Some("Domain"), "partOf", "hasPart")];
const DOMAIN: &[RefField] = &[OWNER, field("subdomainOf", Some("Domain"), "partOf", "hasPart")];
const GROUP: &[RefField] = &[
    field("parent", Some("Group"), "childOf", "parentOf"),
    field("children", Some("Group"), "parentOf", "childOf"),
    field("members", Some("User"), "hasMember", "memberOf"),
];
const USER: &[RefField] = &[field("memberOf", Some("Group"), "memberOf", "hasMember")];
const TEMPLATE: &[RefField] = &[OWNER];

fn fields(kind: &str) -> &'static [RefField] {
    match kind {
        "Component" => COMPONENT,
        "API" => API,
        "Resource" => RESOURCE,
        "System" => SYSTEM_FIELDS,
        "Domain" => DOMAIN,
        "Group" => GROUP,
        "User" => USER,
        "Template" => TEMPLATE,
        _ => &[],
    }
}

/// The references of one field, with their index when the field is a list.
fn values(spec: &Value, field: &str) -> Vec<(String, String)> {
    match spec.get(field) {
        Some(Value::String(s)) => vec![(format!("spec.{field}"), s.clone())],
        Some(Value::Array(items)) => {
            items.iter().enumerate().filter_map(|(i, v)| Some((format!("spec.{field}[{i}]"), v.as_str()?.to_string()))).collect()
        }
        _ => Vec::new(),
    }
}

/// One relation from an entity, and its inverse from the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub source: EntityRef,
    pub relation: &'static str,
    pub target: EntityRef,
    pub inverse: &'static str,
}

/// Every relation an entity states. References that do not parse are
/// left out here; [`check_references`] reports them.
pub fn edges(entity: &Entity) -> Vec<Edge> {
    let source = entity.entity_ref();
    let mut edges = Vec::new();
    for field in fields(&entity.kind) {
        for (_, text) in values(&entity.spec, field.field) {
            if let Ok(target) = EntityRef::parse(&text, field.default_kind, &entity.metadata.namespace) {
                edges.push(Edge { source: source.clone(), relation: field.relation, target, inverse: field.inverse });
            }
        }
    }
    edges.sort();
    edges.dedup();
    edges
}

/// Every reference in the spec that does not parse, at its path.
pub fn check_references(entity: &Entity) -> Vec<Problem> {
    let mut problems = Vec::new();
    for field in fields(&entity.kind) {
        for (path, text) in values(&entity.spec, field.field) {
            if let Err(message) = EntityRef::parse(&text, field.default_kind, &entity.metadata.namespace) {
                let hint = if field.default_kind.is_none() { " (this field needs the kind, e.g. resource:artists-db)" } else { "" };
                problems.push(Problem::new(path, format!("{message}{hint}")));
            }
        }
    }
    problems
}
