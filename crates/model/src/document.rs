//! From user-written text to validated resources.
//!
//! [`parse_documents`] splits a (multi-document) YAML or JSON text into values;
//! [`decode`] checks one value against the kind registry and returns a
//! [`Resource`] or every problem found, each with its field path. Errors carry
//! the document's source (`examples/apps/shop.yaml, document 2`) so a person can
//! find it.

use serde_json::{Map, Value};

use crate::kinds::{self, KindInfo, Scope};
use crate::limits;
use crate::problem::Problem;
use crate::resource::{ObjectMeta, Resource};
use crate::spec::{self, score};
use crate::validation::{check_annotations, check_dns_label, check_labels};

/// One document of an input, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: String,
    pub value: Value,
}

/// Everything wrong with one document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct DocumentError {
    /// Where the document came from: `examples/apps/shop.yaml, document 2`.
    pub document: String,
    pub problems: Vec<Problem>,
}

impl DocumentError {
    pub fn new(document: impl Into<String>, problems: Vec<Problem>) -> Self {
        Self { document: document.into(), problems }
    }
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.document)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Names document `index` (0-based) of `origin` for messages.
pub fn document_source(origin: &str, index: usize, count: usize) -> String {
    if count <= 1 { origin.to_string() } else { format!("{origin}, document {}", index + 1) }
}

/// Splits YAML (or JSON) text into documents. Empty documents are skipped;
/// duplicate keys, malformed syntax, alias bombs and more than
/// [`limits::MAX_DOCUMENTS`] documents are errors. An error names the line
/// and column, never the text there: what was read may be someone else's.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Document>, DocumentError> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = limits::MAX_DOCUMENTS;
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.budget = Some(budget);
    let values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options).map_err(|e| match e {
        serde_saphyr::Error::Budget { breach: serde_saphyr::budget::BudgetBreach::Documents { .. }, .. } => {
            too_many_documents(origin, None)
        }
        e => DocumentError::new(origin, vec![Problem::new("", format!("not valid YAML: {e}"))]),
    })?;
    let count = values.len();
    Ok(values.into_iter().enumerate().map(|(i, value)| Document { source: document_source(origin, i, count), value }).collect())
}

/// The refusal of a request with more than [`limits::MAX_DOCUMENTS`] documents.
pub fn too_many_documents(origin: &str, count: Option<usize>) -> DocumentError {
    let count = count.map(|c| format!("{c} documents")).unwrap_or_else(|| format!("more than {} documents", limits::MAX_DOCUMENTS));
    DocumentError::new(
        origin,
        vec![Problem::new("", format!("{count}; one request may hold at most {} (split it)", limits::MAX_DOCUMENTS))],
    )
}

/// JSON into a value, refusing duplicate keys (which `serde_json` would
/// resolve silently, last one winning) as the YAML reader does.
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Strict;

    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(Strict)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if object.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                let value = map.next_value_seed(Strict)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// A validated resource and its kind.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub kind: &'static KindInfo,
    pub resource: Resource,
}

const ENVELOPE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const METADATA_FIELDS: &str = "name, namespace, labels, annotations, resourceVersion";

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Validates one document and turns it into a [`Resource`]. Namespaced kinds
/// without `metadata.namespace` go to `default_namespace`. Server-owned
/// metadata (uid, generation, creationTimestamp) and `status` are dropped;
/// `resourceVersion` is kept as an update precondition.
pub fn decode(value: &Value, source: &str, default_namespace: &str) -> Result<Decoded, DocumentError> {
    let fail = |problems: Vec<Problem>| DocumentError::new(source, problems);
    let Value::Object(object) = value else {
        return Err(fail(vec![Problem::new(
            "",
            format!("expected a mapping with apiVersion, kind, metadata and spec, got {}", type_name(value)),
        )]));
    };
    let object = normalize_score(object);
    let mut problems = Vec::new();
    if let Some((path, size)) = limits::oversized_string(value, "") {
        problems.push(Problem::new(path, format!("{size} bytes; a value may be at most {} bytes", limits::MAX_STRING_BYTES)));
        return Err(fail(problems));
    }
    let size = serde_json::to_vec(value).map_or(0, |bytes| bytes.len());
    if size > limits::MAX_DOCUMENT_BYTES {
        problems.push(Problem::new("", format!("the document is {size} bytes; one may be at most {} bytes", limits::MAX_DOCUMENT_BYTES)));
        return Err(fail(problems));
    }

    let api_version = match object.get("apiVersion") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            problems.push(Problem::new("apiVersion", format!("expected a string, got {}", type_name(other))));
            None
        }
        None => {
            problems.push(Problem::new("apiVersion", "required field is missing"));
            None
        }
    };
    let kind = match object.get("kind") {
        Some(Value::String(name)) => match kinds::by_kind(name) {
            Some(kind) => Some(kind),
            None => {
                let hint = kinds::suggest(name).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
                problems.push(Problem::new("kind", format!("unknown kind {name:?}: expected one of {}{hint}", kinds::known_kinds())));
                None
            }
        },
        Some(other) => {
            problems.push(Problem::new("kind", format!("expected a string, got {}", type_name(other))));
            None
        }
        None => {
            problems.push(Problem::new("kind", format!("required field is missing: expected one of {}", kinds::known_kinds())));
            None
        }
    };
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(fail(problems));
    };
    if api_version != kind.api_version {
        problems.push(Problem::new("apiVersion", format!("expected {:?} for kind {}, got {api_version:?}", kind.api_version, kind.kind)));
    }
    for key in object.keys() {
        if !ENVELOPE_FIELDS.contains(&key.as_str()) {
            problems.push(Problem::new(key.as_str(), "unknown field: expected apiVersion, kind, metadata, spec or status"));
        }
    }

    let metadata = match object.get("metadata") {
        None => {
            problems.push(Problem::new("metadata", "required field is missing: expected a mapping with at least a name"));
            None
        }
        Some(value) => match spec::deserialize_at::<ObjectMeta>(value, "metadata") {
            Ok(meta) => Some(meta),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };
    let metadata = metadata.map(|meta| check_metadata(meta, kind, default_namespace, &mut problems));

    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    problems.extend(kind.validate_spec(&spec));

    match metadata {
        Some(metadata) if problems.is_empty() => Ok(Decoded {
            kind,
            resource: Resource { api_version: kind.api_version.to_string(), kind: kind.kind.to_string(), metadata, spec, status: None },
        }),
        _ => Err(fail(problems)),
    }
}

/// Kinds whose names (and hub namespaces) become cluster repository folders
/// (`<namespace>/<app-namespace>--<app>`), where `--` separates them.
const FOLDER_KINDS: &[&str] = &["Application", "Workload", "Claim", "Tenant"];
const FOLDER_SEPARATOR: &str = "may not contain \"--\": it separates namespace and name in the cluster repositories";

fn check_metadata(mut meta: ObjectMeta, kind: &KindInfo, default_namespace: &str, problems: &mut Vec<Problem>) -> ObjectMeta {
    if meta.name.is_empty() {
        problems.push(Problem::new("metadata.name", "required field is missing"));
    } else if let Err(e) = check_dns_label(&meta.name) {
        problems.push(Problem::new("metadata.name", e));
    } else if FOLDER_KINDS.contains(&kind.kind) && meta.name.contains("--") {
        problems.push(Problem::new("metadata.name", FOLDER_SEPARATOR));
    }
    match kind.scope {
        Scope::Namespaced => {
            let namespace = meta.namespace.take().unwrap_or_else(|| default_namespace.to_string());
            if let Err(e) = check_dns_label(&namespace) {
                problems.push(Problem::new("metadata.namespace", e));
            } else if namespace.contains("--") {
                problems.push(Problem::new("metadata.namespace", FOLDER_SEPARATOR));
            }
            meta.namespace = Some(namespace);
        }
        Scope::Cluster => {
            if meta.namespace.is_some() {
                problems.push(Problem::new("metadata.namespace", format!("{} is cluster-scoped: remove metadata.namespace", kind.kind)));
            }
        }
    }
    check_labels(&meta.labels, "metadata.labels", problems);
    check_annotations(&meta.annotations, "metadata.annotations", problems);
    if let Some(rv) = &meta.resource_version
        && rv.parse::<i64>().map_or(true, |n| n <= 0)
    {
        problems.push(Problem::new(
            "metadata.resourceVersion",
            format!("expected a resourceVersion returned by the server (a positive integer), got {rv:?}"),
        ));
    }
    // Score's metadata is open (score-v1b1.json: additionalProperties true); ours is not.
    if kind.api_version != score::API_VERSION {
        for key in meta.extra.keys() {
            problems.push(Problem::new(format!("metadata.{key}"), format!("unknown field: expected one of {METADATA_FIELDS}")));
        }
    }
    meta.uid = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta
}

/// A Score file keeps its fields at the top level and has no `kind`. Move them
/// under `spec` and call it a `Workload`, so it shares the envelope of every kind.
fn normalize_score(object: &Map<String, Value>) -> std::borrow::Cow<'_, Map<String, Value>> {
    let is_score_file = object.get("apiVersion").and_then(Value::as_str) == Some(score::API_VERSION) && !object.contains_key("kind");
    if !is_score_file {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut envelope = Map::new();
    let mut spec = Map::new();
    for (key, value) in object {
        if score::SPEC_FIELDS.contains(&key.as_str()) {
            spec.insert(key.clone(), value.clone());
        } else {
            envelope.insert(key.clone(), value.clone());
        }
    }
    envelope.insert("kind".into(), Value::String("Workload".into()));
    envelope.insert("spec".into(), Value::Object(spec));
    std::borrow::Cow::Owned(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_yaml(text: &str) -> Result<Decoded, DocumentError> {
        let docs = parse_documents(text, "test.yaml").expect("parses");
        decode(&docs[0].value, &docs[0].source, "default")
    }

    fn paths(err: &DocumentError) -> Vec<&str> {
        err.problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn decodes_an_application_into_the_default_namespace() {
        let decoded = decode_yaml(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: web\n  uid: forged\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties: {image: nginx}\nstatus: {forged: true}\n",
        )
        .expect("valid");
        assert_eq!(decoded.kind.kind, "Application");
        assert_eq!(decoded.resource.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(decoded.resource.metadata.uid, None, "server-owned fields are dropped");
        assert_eq!(decoded.resource.status, None);
    }

    #[test]
    fn wrong_types_name_their_field_path() {
        let err = decode_yaml(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: web}\nspec:\n  components:\n    - name: web\n      type: webservice\n      traits:\n        - type: scaler\n          properties: 3\n",
        )
        .expect_err("invalid");
        assert_eq!(paths(&err), vec!["spec.components[0].traits[0].properties"]);
        assert!(err.problems[0].message.contains("expected a map"), "{}", err.problems[0].message);
    }

    #[test]
    fn unknown_kinds_suggest_the_closest() {
        let err = decode_yaml("apiVersion: core.oam.dev/v1beta1\nkind: Aplication\nmetadata: {name: web}\n").expect_err("invalid");
        assert_eq!(paths(&err), vec!["kind"]);
        assert!(err.problems[0].message.contains("did you mean \"Application\""), "{}", err.problems[0].message);
    }

    #[test]
    fn collects_every_metadata_problem() {
        let err = decode_yaml(
            "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: Bad Name\n  namespace: x\n  labels: {\"bad key!\": v}\n  nmae: typo\nspec: {delivery: rocket}\n",
        )
        .expect_err("invalid");
        let mut got = paths(&err);
        got.sort();
        assert_eq!(got, vec!["metadata.labels[\"bad key!\"]", "metadata.name", "metadata.namespace", "metadata.nmae", "spec.delivery"]);
    }

    #[test]
    fn missing_kind_and_non_mappings_are_explained() {
        let err = decode_yaml("apiVersion: v1\nmetadata: {name: x}\n").expect_err("invalid");
        assert_eq!(paths(&err), vec!["kind"]);
        let err = decode(&json!([1, 2]), "x.yaml", "default").expect_err("invalid");
        assert!(err.problems[0].message.contains("got a list"));
    }

    #[test]
    fn score_files_become_workloads() {
        let decoded =
            decode_yaml("apiVersion: score.dev/v1b1\nmetadata:\n  name: hello\n  other: kept\ncontainers:\n  main:\n    image: nginx\n")
                .expect("valid");
        assert_eq!(decoded.resource.kind, "Workload");
        assert_eq!(decoded.resource.spec["containers"]["main"]["image"], "nginx");
        assert_eq!(decoded.resource.metadata.extra["other"], "kept");
    }

    #[test]
    fn documents_are_numbered_and_bad_yaml_is_an_error() {
        let docs = parse_documents("a: 1\n---\nb: 2\n", "f.yaml").expect("parses");
        assert_eq!(docs[1].source, "f.yaml, document 2");
        let err = parse_documents("a: 1\na: 2\n", "dup.yaml").expect_err("duplicate keys");
        assert_eq!(err.document, "dup.yaml");
        assert!(parse_documents("a: [1,\n", "bad.yaml").is_err());
    }

    #[test]
    fn parse_errors_name_the_place_not_the_text() {
        let err = parse_documents("ami: i-123\ntoken: SECRETVALUE\n  bad: [\n", "fetched.yaml").expect_err("invalid");
        let message = err.problems[0].message.clone();
        assert!(message.contains("line 3") && !message.contains("SECRETVALUE"), "{message}");
    }

    #[test]
    fn budgets_name_the_limit() {
        let many = "a: 1\n---\n".repeat(limits::MAX_DOCUMENTS + 1);
        let err = parse_documents(&many, "many.yaml").expect_err("too many");
        assert!(err.problems[0].message.contains("one request may hold at most 1000"), "{err}");
        let big = "x".repeat(limits::MAX_STRING_BYTES + 1);
        let err = decode(
            &json!({"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "a"},
            "spec": {"components": [{"name": "a", "type": "webservice", "properties": {"env": [{"name": "E", "value": big}]}}]}}),
            "big.yaml",
            "default",
        )
        .expect_err("too big");
        assert_eq!(paths(&err), vec!["spec.components[0].properties.env[0].value"]);
        assert!(err.problems[0].message.contains("a value may be at most 1048576 bytes"));
    }

    #[test]
    fn json_with_duplicate_keys_is_refused() {
        assert_eq!(parse_json_strict(br#"{"a": {"b": 1, "c": [1, {"d": null}]}}"#), Ok(json!({"a": {"b": 1, "c": [1, {"d": null}]}})));
        assert!(parse_json_strict(br#"{"a": 1, "a": 2}"#).expect_err("duplicate").contains("duplicate key \"a\""));
        assert!(parse_json_strict(br#"{"x": {"kind": "A", "kind": "B"}}"#).is_err());
        assert!(parse_json_strict(b"{} trailing").is_err());
    }

    #[test]
    fn names_that_would_be_read_as_another_tenants_folder_are_refused() {
        let err = decode_yaml("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: payments--web, namespace: shop}\nspec: {components: [{name: a, type: webservice}]}\n")
            .expect_err("ambiguous");
        assert_eq!(paths(&err), vec!["metadata.name"]);
        let err = decode_yaml("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata: {name: a--b}\n").expect_err("ambiguous");
        assert!(err.problems[0].message.contains("separates namespace and name"));
    }

    #[test]
    fn stale_looking_resource_versions_are_rejected() {
        let err = decode_yaml("apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop, resourceVersion: abc}\n")
            .expect_err("invalid");
        assert_eq!(paths(&err), vec!["metadata.resourceVersion"]);
    }
}
