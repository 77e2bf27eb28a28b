//! The Backstage entity: envelope, metadata and the spec of each built-in
//! kind, checked with Backstage's rules (those of `@backstage/catalog-model`:
//! names, namespaces, kinds, labels, annotations, tags, and the required
//! spec fields of Component, API, Resource, System, Domain, Group, User,
//! Location and Template). Other kinds (a plugin's `AiResource`) are
//! accepted with the envelope and metadata checked.

use std::collections::BTreeMap;

use heimdall_model::Problem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::reference::{DEFAULT_NAMESPACE, EntityRef};

pub const BACKSTAGE_V1ALPHA1: &str = "backstage.io/v1alpha1";
pub const SCAFFOLDER_V1BETA3: &str = "scaffolder.backstage.io/v1beta3";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub api_version: String,
    pub kind: String,
    pub metadata: EntityMeta,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub spec: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Fields Backstage does not define are kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// A relation as Backstage serves it: `{type: ownedBy, targetRef: group:default/team-c}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    #[serde(rename = "type")]
    pub type_: String,
    pub target_ref: String,
}

impl Entity {
    pub fn entity_ref(&self) -> EntityRef {
        EntityRef::new(&self.kind, &self.metadata.namespace, &self.metadata.name)
    }

    /// A string field of the spec.
    pub fn spec_str(&self, field: &str) -> Option<&str> {
        self.spec.get(field).and_then(Value::as_str)
    }

    /// A list-of-strings field of the spec (absent: empty).
    pub fn spec_list(&self, field: &str) -> Vec<&str> {
        self.spec.get(field).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    }
}

/// `[a-zA-Z0-9]` sequences separated by one of `-_.`, 1 to `max` long.
fn is_name(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value.split(['-', '_', '.']).all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A DNS label: lowercase letters and digits separated by `-`, at most 63.
fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

fn is_dns_subdomain(value: &str) -> bool {
    !value.is_empty() && value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain.
fn is_key(value: &str) -> bool {
    match value.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name(name, 63),
        None => is_name(value, 63),
    }
}

/// Tags: lowercase letters, digits and `:+#`, in parts joined by `-`, at most 63.
fn is_tag(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":+#".contains(c)))
}

fn is_kind(value: &str) -> bool {
    value.len() <= 63 && value.starts_with(|c: char| c.is_ascii_alphabetic()) && value.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_api_version(value: &str) -> bool {
    match value.split_once('/') {
        Some((group, version)) => is_dns_subdomain(group) && !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric()),
        None => false,
    }
}

/// What a built-in kind's spec must have: required strings, optional strings,
/// lists of strings, and which fields are entity references of which default kind.
struct KindRules {
    kind: &'static str,
    api_versions: &'static [&'static str],
    required: &'static [&'static str],
    strings: &'static [&'static str],
    lists: &'static [&'static str],
}

const KINDS: &[KindRules] = &[
    KindRules {
        kind: "Component",
        api_versions: &[BACKSTAGE_V1ALPHA1],
        required: &["type", "lifecycle", "owner"],
        strings: &["system", "subcomponentOf"],
        lists: &["providesApis", "consumesApis", "dependsOn", "dependencyOf"],
    },
    KindRules {
        kind: "API",
        api_versions: &[BACKSTAGE_V1ALPHA1],
        // `definition` (or `remotes` for an MCP server) is checked on its own.
        required: &["type", "lifecycle", "owner"],
        strings: &["system"],
        lists: &[],
    },
    KindRules {
        kind: "Resource",
        api_versions: &[BACKSTAGE_V1ALPHA1],
        required: &["type", "owner"],
        strings: &["system"],
        lists: &["dependsOn", "dependencyOf"],
    },
    KindRules { kind: "System", api_versions: &[BACKSTAGE_V1ALPHA1], required: &["owner"], strings: &["domain", "type"], lists: &[] },
    KindRules { kind: "Domain", api_versions: &[BACKSTAGE_V1ALPHA1], required: &["owner"], strings: &["subdomainOf", "type"], lists: &[] },
    KindRules {
        kind: "Group",
        api_versions: &[BACKSTAGE_V1ALPHA1, "backstage.io/v1beta1"],
        required: &["type"],
        strings: &["parent"],
        lists: &["children", "members"],
    },
    KindRules {
        kind: "User",
        api_versions: &[BACKSTAGE_V1ALPHA1, "backstage.io/v1beta1"],
        required: &[],
        strings: &[],
        lists: &["memberOf"],
    },
    KindRules {
        kind: "Location",
        api_versions: &[BACKSTAGE_V1ALPHA1],
        required: &[],
        strings: &["type", "target", "presence"],
        lists: &["targets"],
    },
    KindRules { kind: "Template", api_versions: &[SCAFFOLDER_V1BETA3], required: &["type"], strings: &["owner", "lifecycle"], lists: &[] },
];

/// "a Component", "an API".
fn article(kind: &str) -> String {
    if kind.starts_with(['A', 'E', 'I', 'O', 'U']) { format!("an {kind}") } else { format!("a {kind}") }
}

fn check_spec(rules: &KindRules, api_version: &str, spec: &Value, problems: &mut Vec<Problem>) {
    if !rules.api_versions.contains(&api_version) {
        problems.push(Problem::new(
            "apiVersion",
            format!("{} entities are {}, not {api_version:?}", rules.kind, rules.api_versions.join(" or ")),
        ));
    }
    let Some(spec) = spec.as_object() else {
        problems.push(Problem::new("spec", format!("a {} needs a spec (a mapping)", rules.kind)));
        return;
    };
    for field in rules.required {
        match spec.get(*field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => problems.push(Problem::new(format!("spec.{field}"), "expected a non-empty string")),
            None => problems.push(Problem::new(format!("spec.{field}"), format!("required for {}", article(rules.kind)))),
        }
    }
    for field in rules.strings {
        if let Some(value) = spec.get(*field)
            && value.as_str().is_none_or(|s| s.is_empty())
        {
            problems.push(Problem::new(format!("spec.{field}"), "expected a non-empty string"));
        }
    }
    for field in rules.lists {
        match spec.get(*field) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if item.as_str().is_none_or(|s| s.is_empty()) {
                        problems.push(Problem::new(format!("spec.{field}[{i}]"), "expected a non-empty string"));
                    }
                }
            }
            Some(_) => problems.push(Problem::new(format!("spec.{field}"), "expected a list of entity references")),
        }
    }
    match rules.kind {
        "Group" if !spec.contains_key("children") => problems.push(Problem::new("spec.children", "required for a Group (may be [])")),
        "User" if !spec.contains_key("memberOf") => problems.push(Problem::new("spec.memberOf", "required for a User (may be [])")),
        "Location" if spec.get("target").is_none() && spec.get("targets").is_none() => {
            problems.push(Problem::new("spec", "a Location needs target or targets"))
        }
        "Template" if !spec.get("steps").is_some_and(Value::is_array) => {
            problems.push(Problem::new("spec.steps", "required for a Template: a list of steps"))
        }
        "API" if spec.get("type").and_then(Value::as_str) == Some("mcp-server") => {
            let remotes = spec.get("remotes").and_then(Value::as_array);
            if !remotes.is_some_and(|r| !r.is_empty() && r.iter().all(|remote| remote.get("url").is_some_and(Value::is_string))) {
                problems.push(Problem::new("spec.remotes", "an mcp-server API needs remotes: a list of {type, url}"));
            }
        }
        "API" => match spec.get("definition") {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(definition) if is_placeholder(definition) => {}
            Some(_) => problems.push(Problem::new("spec.definition", "expected the definition as text, or {$text|$json|$yaml: location}")),
            None => problems.push(Problem::new("spec.definition", "required for an API")),
        },
        _ => {}
    }
}

/// Backstage's substitution of a field by a file's content: `{$text: ./openapi.yaml}`.
pub fn is_placeholder(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.iter().all(|(k, v)| ["$text", "$json", "$yaml"].contains(&k.as_str()) && v.is_string()))
}

/// Checks a document against Backstage's rules; returns the entity or every
/// problem, each at its field path.
pub fn validate(document: &Value) -> Result<Entity, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(object) = document.as_object() else {
        return Err(vec![Problem::new("", "expected an entity (a mapping with apiVersion, kind, metadata)")]);
    };
    let text = |field: &str| object.get(field).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if !is_api_version(api_version) {
        problems.push(Problem::new("apiVersion", format!("expected group/version such as {BACKSTAGE_V1ALPHA1}, got {api_version:?}")));
    }
    if !is_kind(kind) || kind.is_empty() {
        problems.push(Problem::new(
            "kind",
            format!("expected a kind such as Component (letters and digits, starting with a letter), got {kind:?}"),
        ));
    }
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
    let metadata: EntityMeta = match serde_json::from_value(metadata) {
        Ok(metadata) => metadata,
        Err(e) => {
            problems.push(Problem::new(
                "metadata",
                format!("expected name and optional namespace, title, labels, annotations, tags, links: {e}"),
            ));
            return Err(problems);
        }
    };
    if !is_name(&metadata.name, 63) {
        problems.push(Problem::new(
            "metadata.name",
            format!("{:?} is not a valid name: 1 to 63 letters and digits, in parts joined by -, _ or .", metadata.name),
        ));
    }
    if !is_dns_label(&metadata.namespace) {
        problems.push(Problem::new(
            "metadata.namespace",
            format!("{:?} is not a valid namespace: lowercase letters and digits joined by -, at most 63", metadata.namespace),
        ));
    }
    for (key, value) in &metadata.labels {
        if !is_key(key) {
            problems.push(Problem::new(format!("metadata.labels[{key:?}]"), "not a valid label key: [prefix/]name"));
        }
        if !is_name(value, 63) {
            problems.push(Problem::new(format!("metadata.labels[{key:?}]"), format!("{value:?} is not a valid label value")));
        }
    }
    for key in metadata.annotations.keys() {
        if !is_key(key) {
            problems.push(Problem::new(format!("metadata.annotations[{key:?}]"), "not a valid annotation key: [prefix/]name"));
        }
    }
    for (i, tag) in metadata.tags.iter().enumerate() {
        if !is_tag(tag) {
            problems.push(Problem::new(
                format!("metadata.tags[{i}]"),
                format!("{tag:?} is not a valid tag: lowercase letters, digits and :+# in parts joined by -, at most 63"),
            ));
        }
    }
    for (i, link) in metadata.links.iter().enumerate() {
        if link.url.trim().is_empty() {
            problems.push(Problem::new(format!("metadata.links[{i}].url"), "expected a URL"));
        } else if !is_safe_url(&link.url) {
            problems.push(Problem::new(
                format!("metadata.links[{i}].url"),
                format!("{:?} is not an http(s) or relative URL: a link may not run code in the portal", link.url),
            ));
        }
    }
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(rules) = KINDS.iter().find(|r| r.kind.eq_ignore_ascii_case(kind)) {
        check_spec(rules, api_version, &spec, &mut problems);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let entity = Entity { api_version: api_version.to_string(), kind: kind.to_string(), metadata, spec, relations: Vec::new() };
    let reference_problems = crate::relations::check_references(&entity);
    if reference_problems.is_empty() { Ok(entity) } else { Err(reference_problems) }
}

/// Whether a link may be followed from a page: an `http:` or `https:` URL,
/// or a relative one. Read as a browser reads it: tabs and line breaks
/// anywhere and control characters around it do not count, and the scheme
/// is case-insensitive (`JaVa\tScRiPt:` is `javascript:`).
pub fn is_safe_url(url: &str) -> bool {
    let cleaned: String = url.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let cleaned = cleaned.trim_matches(|c: char| c <= ' ');
    let scheme_end = cleaned.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')));
    match scheme_end {
        Some(end) if end > 0 && cleaned[end..].starts_with(':') && cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            let scheme = cleaned[..end].to_ascii_lowercase();
            scheme == "http" || scheme == "https"
        }
        // No scheme: a path, a query, a fragment or `//host/...` on the page's own scheme.
        _ => !cleaned.starts_with('\\') && !cleaned.starts_with("/\\"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_http_or_relative() {
        for safe in ["https://runbook.example.com/x", "HTTP://x", "/docs/api", "docs", "#top", "?q=1", "//cdn.example.com/x", "mailto"] {
            assert!(is_safe_url(safe), "{safe}");
        }
        for unsafe_ in [
            "javascript:alert(1)",
            " JaVa\tScRiPt:alert(1)",
            "\u{1}javascript:x",
            "data:text/html,x",
            "vbscript:x",
            "file:///etc/passwd",
            "mailto:a@b",
        ] {
            assert!(!is_safe_url(unsafe_), "{unsafe_:?}");
        }
    }
    use serde_json::json;

    fn component(metadata: Value, spec: Value) -> Value {
        json!({"apiVersion": BACKSTAGE_V1ALPHA1, "kind": "Component", "metadata": metadata, "spec": spec})
    }

    fn paths(result: Result<Entity, Vec<Problem>>) -> Vec<String> {
        result.expect_err("invalid").into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn names_namespaces_tags_and_labels_follow_backstage() {
        let spec = json!({"type": "service", "lifecycle": "production", "owner": "team-a"});
        assert!(validate(&component(json!({"name": "artist_web.v2-x"}), spec.clone())).is_ok());
        assert_eq!(paths(validate(&component(json!({"name": "invalid component"}), spec.clone()))), ["metadata.name"]);
        assert_eq!(paths(validate(&component(json!({"name": "a", "namespace": "Team_A"}), spec.clone()))), ["metadata.namespace"]);
        assert_eq!(paths(validate(&component(json!({"name": "a", "tags": ["java", "go 1.15"]}), spec.clone()))), ["metadata.tags[1]"]);
        assert_eq!(
            paths(validate(&component(json!({"name": "a", "labels": {"example.com/ok": "v", "bad key!": "v"}}), spec.clone()))),
            ["metadata.labels[\"bad key!\"]"]
        );
        assert_eq!(paths(validate(&component(json!({"name": "-a"}), spec))), ["metadata.name"]);
    }

    #[test]
    fn each_kind_requires_its_fields() {
        assert_eq!(paths(validate(&component(json!({"name": "a"}), json!({"type": "service"})))), ["spec.lifecycle", "spec.owner"]);
        let api = json!({"apiVersion": BACKSTAGE_V1ALPHA1, "kind": "API", "metadata": {"name": "a"}, "spec": {"type": "openapi", "lifecycle": "x", "owner": "t"}});
        assert_eq!(paths(validate(&api)), ["spec.definition"]);
        let mut placeholder = api.clone();
        placeholder["spec"]["definition"] = json!({"$text": "./openapi.yaml"});
        assert!(validate(&placeholder).is_ok());
        let mut mcp = api.clone();
        mcp["spec"]["type"] = json!("mcp-server");
        assert_eq!(paths(validate(&mcp)), ["spec.remotes"]);
        mcp["spec"]["remotes"] = json!([{"type": "streamable-http", "url": "http://localhost:7007/api/mcp/v1"}]);
        assert!(validate(&mcp).is_ok());
        let group = json!({"apiVersion": BACKSTAGE_V1ALPHA1, "kind": "Group", "metadata": {"name": "g"}, "spec": {"type": "team"}});
        assert_eq!(paths(validate(&group)), ["spec.children"]);
        let location = json!({"apiVersion": BACKSTAGE_V1ALPHA1, "kind": "Location", "metadata": {"name": "l"}, "spec": {}});
        assert_eq!(paths(validate(&location)), ["spec"]);
        let template = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Template", "metadata": {"name": "t"}, "spec": {"type": "service", "steps": []}});
        assert_eq!(paths(validate(&template)), ["apiVersion"]);
    }

    #[test]
    fn other_kinds_get_the_envelope_checked() {
        let custom =
            json!({"apiVersion": BACKSTAGE_V1ALPHA1, "kind": "AiResource", "metadata": {"name": "skill"}, "spec": {"anything": 1}});
        assert_eq!(validate(&custom).map(|e| e.kind), Ok("AiResource".to_string()));
        assert_eq!(paths(validate(&json!({"apiVersion": "v1", "kind": "9x", "metadata": {"name": "a"}}))), ["apiVersion", "kind"]);
    }
}
