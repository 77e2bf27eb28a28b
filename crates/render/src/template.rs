//! Custom definitions: templates the platform team writes as structured
//! values, never as text to be parsed, so a parameter can never inject YAML.
//!
//! Inside a template:
//! - a string that is exactly `${{ expr }}` becomes the expression's value
//!   (a number stays a number, a mapping stays a mapping);
//! - a string with `${{ expr }}` inside text interpolates;
//! - a mapping with `$if: expr` is kept only when the expression is truthy;
//! - a list item with `$each: expr` repeats once per element, with the
//!   element bound to `item` (or the name in `$as`); `$value` gives the item
//!   itself when the list holds scalars.
//!
//! Expressions are minijinja expressions over `parameters`, `context` and,
//! for traits, `workload`. Evaluation is fuel-limited and output size is
//! capped, so a template that loops or explodes stops with an error.

use heimdall_model::Problem;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// Fuel for one expression: generous for real templates, finite for loops.
const FUEL_PER_EXPRESSION: u64 = 50_000;
/// The most values one template may produce.
const MAX_NODES: usize = 100_000;
/// The largest value one expression may produce, in bytes of text. Fuel
/// counts template instructions, not the work of built-in filters, so the
/// size of what comes out is checked as well.
const MAX_EXPRESSION_BYTES: usize = 256 * 1024;

pub struct Engine {
    env: Environment<'static>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("template::Engine")
    }
}

impl Default for Engine {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_fuel(Some(FUEL_PER_EXPRESSION));
        Self { env }
    }
}

/// Splits a string into literal text and `${{ expression }}` parts.
fn parts(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + 3..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed ${{{{ in {text:?}"))?;
        parts.push(Part::Expression(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

enum Part<'a> {
    Text(&'a str),
    Expression(&'a str),
}

struct Evaluation<'e> {
    engine: &'e Engine,
    scope: Map<String, Value>,
    nodes: usize,
}

impl Engine {
    /// Checks every expression of a template compiles; the errors name their path.
    pub fn check(&self, template: &Value, path: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.check_into(template, path, &mut problems);
        problems
    }

    fn check_into(&self, value: &Value, path: &str, problems: &mut Vec<Problem>) {
        match value {
            Value::String(text) => match parts(text) {
                Ok(parts) => {
                    for part in parts {
                        if let Part::Expression(expression) = part
                            && let Err(e) = self.env.compile_expression(expression)
                        {
                            problems.push(Problem::new(path, format!("invalid expression {expression:?}: {e}")));
                        }
                    }
                }
                Err(e) => problems.push(Problem::new(path, e)),
            },
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = format!("{path}.{key}");
                    match (key.as_str(), child) {
                        ("$if" | "$each", Value::String(expression)) => {
                            if let Err(e) = self.env.compile_expression(expression) {
                                problems.push(Problem::new(child_path, format!("invalid expression {expression:?}: {e}")));
                            }
                        }
                        ("$as", Value::String(_)) => {}
                        ("$if" | "$each" | "$as", _) => problems.push(Problem::new(child_path, "expected an expression string")),
                        _ => self.check_into(child, &child_path, problems),
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_into(item, &format!("{path}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }

    /// Evaluates `template` with `scope` as the variables. `None` means the
    /// whole template was dropped by a false `$if`.
    pub fn evaluate(&self, template: &Value, scope: Map<String, Value>, path: &str) -> Result<Option<Value>, Problem> {
        let mut evaluation = Evaluation { engine: self, scope, nodes: 0 };
        evaluation.value(template, path)
    }
}

fn to_json(value: minijinja::Value, expression: &str, path: &str) -> Result<Value, Problem> {
    if value.is_undefined() {
        return Err(Problem::new(
            path,
            format!("${{{{ {expression} }}}} refers to nothing: check the name, or give a default with | default(...)"),
        ));
    }
    let json = serde_json::to_value(&value)
        .map_err(|e| Problem::new(path, format!("${{{{ {expression} }}}} does not give a plain value: {e}")))?;
    let (nodes, bytes) = size(&json);
    if nodes > MAX_NODES || bytes > MAX_EXPRESSION_BYTES {
        return Err(Problem::new(
            path,
            format!(
                "${{{{ {expression} }}}} produced {nodes} values and {bytes} bytes, more than the limit of {MAX_NODES} values or {MAX_EXPRESSION_BYTES} bytes; it was stopped"
            ),
        ));
    }
    Ok(json)
}

/// Values and bytes of text in a value.
fn size(value: &Value) -> (usize, usize) {
    match value {
        Value::String(s) => (1, s.len()),
        Value::Array(items) => items.iter().map(size).fold((1, 0), |(n, b), (n2, b2)| (n + n2, b + b2)),
        Value::Object(map) => map.iter().map(|(k, v)| (k.len(), size(v))).fold((1, 0), |(n, b), (k, (n2, b2))| (n + n2, b + b2 + k)),
        _ => (1, 8),
    }
}

impl Evaluation<'_> {
    fn count(&mut self, path: &str) -> Result<(), Problem> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Problem::new(path, format!("the template produced more than {MAX_NODES} values; it was stopped")));
        }
        Ok(())
    }

    fn expression(&self, expression: &str, path: &str) -> Result<minijinja::Value, Problem> {
        let compiled = self
            .engine
            .env
            .compile_expression(expression)
            .map_err(|e| Problem::new(path, format!("invalid expression {expression:?}: {e}")))?;
        compiled.eval(&self.scope).map_err(|e| Problem::new(path, format!("${{{{ {expression} }}}} failed: {e}")))
    }

    fn string(&mut self, text: &str, path: &str) -> Result<Value, Problem> {
        let parts = parts(text).map_err(|e| Problem::new(path, e))?;
        if let [Part::Expression(expression)] = parts.as_slice() {
            let value = self.expression(expression, path)?;
            return to_json(value, expression, path);
        }
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expression(expression) => {
                    let value = self.expression(expression, path)?;
                    match to_json(value, expression, path)? {
                        Value::String(s) => out.push_str(&s),
                        Value::Null => {}
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(Value::String(out))
    }

    fn value(&mut self, template: &Value, path: &str) -> Result<Option<Value>, Problem> {
        self.count(path)?;
        match template {
            Value::String(text) => self.string(text, path).map(Some),
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item.as_object().and_then(|m| m.get("$each")) {
                        Some(each) => out.extend(self.each(item, each, &item_path)?),
                        None => out.extend(self.value(item, &item_path)?),
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) => {
                if let Some(condition) = map.get("$if") {
                    let expression = condition.as_str().unwrap_or_default();
                    if !self.expression(expression, &format!("{path}.$if"))?.is_true() {
                        return Ok(None);
                    }
                }
                let mut out = Map::new();
                for (key, child) in map {
                    if key.starts_with('$') {
                        continue;
                    }
                    if let Some(value) = self.value(child, &format!("{path}.{key}"))? {
                        out.insert(key.clone(), value);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn each(&mut self, item: &Value, each: &Value, path: &str) -> Result<Vec<Value>, Problem> {
        let expression = each.as_str().unwrap_or_default();
        let iterable = self.expression(expression, &format!("{path}.$each"))?;
        let items = to_json(iterable, expression, path)?;
        let elements: Vec<Value> = match items {
            Value::Array(items) => items,
            // A mapping iterates as [key, value] pairs, sorted by key.
            Value::Object(map) => map.into_iter().map(|(k, v)| Value::Array(vec![Value::String(k), v])).collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(Problem::new(format!("{path}.$each"), format!("expected a list or a mapping, got {other}")));
            }
        };
        let name = item.get("$as").and_then(Value::as_str).unwrap_or("item").to_string();
        let body = item.get("$value").unwrap_or(item);
        let saved = self.scope.get(&name).cloned();
        let mut out = Vec::new();
        for element in elements {
            self.scope.insert(name.clone(), element);
            let result = if body.is_object() && body.get("$value").is_none() {
                let mut stripped = body.as_object().cloned().unwrap_or_default();
                stripped.remove("$each");
                stripped.remove("$as");
                self.value(&Value::Object(stripped), path)?
            } else {
                self.value(body, path)?
            };
            out.extend(result);
        }
        match saved {
            Some(value) => self.scope.insert(name, value),
            None => self.scope.remove(&name),
        };
        Ok(out)
    }
}

/// Fills in `default`s from a JSON Schema where `value` has no such property,
/// recursing into mappings and list items, as KubeVela's parameter defaults do.
pub fn apply_defaults(schema: &Value, value: &mut Value) {
    if let (Some(properties), Value::Object(map)) = (schema.get("properties").and_then(Value::as_object), &mut *value) {
        for (name, property) in properties {
            if !map.contains_key(name)
                && let Some(default) = property.get("default")
            {
                map.insert(name.clone(), default.clone());
            }
            if let Some(child) = map.get_mut(name) {
                apply_defaults(property, child);
            }
        }
    }
    if let (Some(items), Value::Array(list)) = (schema.get("items"), value) {
        for item in list {
            apply_defaults(items, item);
        }
    }
}

/// A compiled parameter schema.
pub struct Parameters {
    schema: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameters").field("schema", &self.schema).finish()
    }
}

impl Parameters {
    pub fn compile(schema: &Value, path: &str) -> Result<Parameters, Problem> {
        let validator = jsonschema::validator_for(schema).map_err(|e| Problem::new(path, format!("not a valid JSON Schema: {e}")))?;
        Ok(Parameters { schema: schema.clone(), validator })
    }

    /// Applies defaults, then validates; every violation is reported at its path.
    pub fn read(&self, properties: &Map<String, Value>, path: &str) -> Result<Value, Vec<Problem>> {
        let mut value = Value::Object(properties.clone());
        apply_defaults(&self.schema, &mut value);
        let problems: Vec<Problem> = self
            .validator
            .iter_errors(&value)
            .map(|error| {
                let pointer = error.instance_path().as_str().to_string();
                Problem::new(format!("{path}{}", pointer_to_path(&pointer)), error.to_string())
            })
            .collect();
        if problems.is_empty() { Ok(value) } else { Err(problems) }
    }
}

/// `/ports/0/port` → `.ports[0].port`.
fn pointer_to_path(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            if token.parse::<usize>().is_ok() {
                format!("[{token}]")
            } else if token.contains(['.', '/']) {
                format!("[{token:?}]")
            } else {
                format!(".{token}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(parameters: Value) -> Map<String, Value> {
        let mut scope = Map::new();
        scope.insert("parameters".into(), parameters);
        scope.insert("context".into(), json!({"name": "web"}));
        scope
    }

    #[test]
    fn exact_expressions_keep_types_and_text_interpolates() {
        let template =
            json!({"replicas": "${{ parameters.replicas }}", "name": "${{ context.name }}-svc", "ports": "${{ parameters.ports }}"});
        let out = Engine::default().evaluate(&template, scope(json!({"replicas": 3, "ports": [80, 443]})), "t").expect("ok").expect("kept");
        assert_eq!(out, json!({"replicas": 3, "name": "web-svc", "ports": [80, 443]}));
    }

    #[test]
    fn if_and_each_shape_the_output() {
        let template = json!({
            "service": {"$if": "parameters.expose", "port": 80},
            "env": [{"$each": "parameters.env", "name": "${{ item[0] }}", "value": "${{ item[1] }}"}],
            "args": [{"$each": "parameters.args", "$as": "arg", "$value": "--${{ arg }}"}],
        });
        let out = Engine::default()
            .evaluate(&template, scope(json!({"expose": false, "env": {"B": "2", "A": "1"}, "args": ["x", "y"]})), "t")
            .expect("ok")
            .expect("kept");
        assert_eq!(out, json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["--x", "--y"]}));
    }

    #[test]
    fn a_parameter_cannot_inject_structure() {
        let template = json!({"image": "${{ parameters.image }}"});
        let evil = "nginx\nprivileged: true";
        let out = Engine::default().evaluate(&template, scope(json!({"image": evil})), "t").expect("ok").expect("kept");
        assert_eq!(out, json!({"image": evil}), "the value stays one string");
    }

    #[test]
    fn undefined_names_and_runaway_templates_are_errors() {
        let engine = Engine::default();
        let err =
            engine.evaluate(&json!({"x": "${{ parameters.nope }}"}), scope(json!({})), "spec.template.workload").expect_err("undefined");
        assert_eq!(err.path, "spec.template.workload.x");
        assert!(err.message.contains("refers to nothing"), "{}", err.message);

        let huge = json!({"x": "${{ range(100000) | map('string') | join(',') }}"});
        let Err(err) = engine.evaluate(&huge, scope(json!({})), "t") else { panic!("a huge value must be refused") };
        assert!(err.message.contains("limit of"), "{}", err.message);

        let exploding = json!([{"$each": "range(1000)", "x": [{"$each": "range(1000)", "$value": "${{ item }}"}]}]);
        let Err(err) = engine.evaluate(&exploding, scope(json!({})), "t") else { panic!("an exploding template must be stopped") };
        assert!(err.message.contains("more than"), "{}", err.message);
    }

    #[test]
    fn checks_report_bad_expressions_by_path() {
        let problems = Engine::default().check(&json!({"a": {"b": ["${{ parameters. }}"]}, "c": {"$if": 3}}), "spec.template");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["spec.template.a.b[0]", "spec.template.c.$if"]);
    }

    #[test]
    fn parameters_get_defaults_and_validation_paths() {
        let schema = json!({"type": "object", "required": ["image"], "properties": {
            "image": {"type": "string"}, "replicas": {"type": "integer", "default": 1, "minimum": 1},
            "ports": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}, "expose": {"type": "boolean", "default": false}}}}}});
        let parameters = Parameters::compile(&schema, "spec.parameters").expect("valid schema");
        let props = json!({"image": "nginx", "ports": [{"port": 80}]});
        let value = parameters.read(props.as_object().expect("map"), "spec.components[0].properties").expect("valid");
        assert_eq!(value, json!({"image": "nginx", "replicas": 1, "ports": [{"port": 80, "expose": false}]}));
        let bad = json!({"replicas": 0, "ports": [{"port": "x"}]});
        let problems = parameters.read(bad.as_object().expect("map"), "p").expect_err("invalid");
        let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["p", "p.ports[0].port", "p.replicas"]);
    }
}
