//! Backstage software templates (`scaffolder.backstage.io/v1beta3`), run
//! as Backstage's scaffolder runs them: parameters checked, then each step's
//! `input` evaluated (`${{ parameters.name }}`, `${{ steps['publish'].output.url }}`),
//! its `if` honoured, its action run over an in-memory workspace, its
//! output kept for later steps; then the template's `output` evaluated.
//!
//! The file actions (`fetch:template`, `fetch:plain`, `fs:rename`,
//! `fs:delete`, `debug:log`) are built in and pure: the files a fetch reads
//! come from the caller ([`Sources`]). Actions that reach outside
//! (`publish:heimdall`, `catalog:register`, `heimdall:apply`) are the
//! caller's [`Actions`]. A dry run gives the workspace as it would be
//! published.

pub mod budget;
pub mod expression;
mod files;
pub mod structured;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use expression::Expressions;

/// The workspace: relative path → content.
pub type Workspace = BTreeMap<String, Vec<u8>>;

/// Files a fetch may read, by the location a step names (`./content`,
/// `./skeleton`, a URL): relative path → content.
pub type Sources = BTreeMap<String, Workspace>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaffolderError {
    #[error("{path}: {message}")]
    Template { path: String, message: String },
    #[error("step {step} ({action}) failed: {message}")]
    Step { step: String, action: String, message: String },
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub action: String,
    pub input: Value,
    pub condition: Option<Value>,
}

/// A template ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub title: Option<String>,
    /// One JSON Schema per form page.
    pub pages: Vec<Value>,
    pub steps: Vec<Step>,
    pub output: Value,
}

impl Template {
    /// Reads a Template entity; every problem is at its path.
    pub fn from_entity(entity: &Value) -> Result<Template, ScaffolderError> {
        let fail = |path: &str, message: &str| ScaffolderError::Template { path: path.into(), message: message.into() };
        if entity.get("apiVersion").and_then(Value::as_str) != Some("scaffolder.backstage.io/v1beta3") {
            return Err(fail("apiVersion", "expected scaffolder.backstage.io/v1beta3"));
        }
        if entity.get("kind").and_then(Value::as_str) != Some("Template") {
            return Err(fail("kind", "expected Template"));
        }
        let spec = entity.get("spec").and_then(Value::as_object).ok_or_else(|| fail("spec", "expected a mapping"))?;
        let pages = match spec.get("parameters") {
            None => Vec::new(),
            Some(Value::Array(pages)) => pages.clone(),
            Some(page @ Value::Object(_)) => vec![page.clone()],
            Some(_) => return Err(fail("spec.parameters", "expected a JSON Schema or a list of them (form pages)")),
        };
        let mut steps = Vec::new();
        let listed = spec.get("steps").and_then(Value::as_array).ok_or_else(|| fail("spec.steps", "expected a list of steps"))?;
        if listed.len() > budget::MAX_STEPS {
            return Err(fail("spec.steps", &format!("{} steps; a template may have at most {}", listed.len(), budget::MAX_STEPS)));
        }
        for (i, step) in listed.iter().enumerate() {
            let text = |field: &str| step.get(field).and_then(Value::as_str).map(String::from);
            let action = text("action").ok_or_else(|| fail(&format!("spec.steps[{i}].action"), "expected an action name"))?;
            let id = text("id").unwrap_or_else(|| format!("step-{i}"));
            if steps.iter().any(|s: &Step| s.id == id) {
                return Err(fail(&format!("spec.steps[{i}].id"), &format!("duplicate step id {id:?}")));
            }
            steps.push(Step {
                name: text("name").unwrap_or_else(|| id.clone()),
                id,
                action,
                input: step.get("input").cloned().unwrap_or_else(|| json!({})),
                condition: step.get("if").cloned(),
            });
        }
        Ok(Template {
            name: entity.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            title: entity.pointer("/metadata/title").and_then(Value::as_str).map(String::from),
            pages,
            steps,
            output: spec.get("output").cloned().unwrap_or(Value::Null),
        })
    }

    /// The parameters with defaults, checked against every page's schema.
    pub fn parameters(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, Vec<(String, String)>> {
        let size = budget::json_size(&Value::Object(given.clone()));
        if size > budget::MAX_PARAMETER_BYTES {
            return Err(vec![(String::new(), budget::too_large("the values", size, budget::MAX_PARAMETER_BYTES))]);
        }
        let mut values = given.clone();
        let mut problems = Vec::new();
        for page in &self.pages {
            for (name, property) in page.get("properties").and_then(Value::as_object).into_iter().flatten() {
                if !values.contains_key(name)
                    && let Some(default) = property.get("default")
                {
                    values.insert(name.clone(), default.clone());
                }
            }
            // `ui:*` keys are for the form; the schema is the rest.
            let schema = strip_ui(page);
            match jsonschema_check(&schema, &Value::Object(values.clone())) {
                Ok(()) => {}
                Err(mut found) => problems.append(&mut found),
            }
        }
        if problems.is_empty() { Ok(values) } else { Err(problems) }
    }
}

fn strip_ui(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(k, _)| !k.starts_with("ui:")).map(|(k, v)| (k.clone(), strip_ui(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(strip_ui).collect()),
        other => other.clone(),
    }
}

/// The subset of JSON Schema forms use: required, type, enum, pattern, min/max length.
fn jsonschema_check(schema: &Value, value: &Value) -> Result<(), Vec<(String, String)>> {
    let mut problems = Vec::new();
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if value.get(name).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            problems.push((name.to_string(), "required".to_string()));
        }
    }
    for (name, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let Some(given) = value.get(name) else { continue };
        let wanted = property.get("type").and_then(Value::as_str);
        let type_ok = match wanted {
            Some("string") => given.is_string(),
            Some("number") => given.is_number(),
            Some("integer") => given.is_i64() || given.is_u64(),
            Some("boolean") => given.is_boolean(),
            Some("array") => given.is_array(),
            Some("object") => given.is_object(),
            _ => true,
        };
        if !type_ok {
            problems.push((name.clone(), format!("expected {}", wanted.unwrap_or("a value"))));
            continue;
        }
        if let Some(options) = property.get("enum").and_then(Value::as_array)
            && !options.contains(given)
        {
            problems.push((name.clone(), format!("expected one of {}", Value::Array(options.clone()))));
        }
        if let Some(text) = given.as_str() {
            if let Some(min) = property.get("minLength").and_then(Value::as_u64)
                && (text.chars().count() as u64) < min
            {
                problems.push((name.clone(), format!("at least {min} characters")));
            }
            if let Some(max) = property.get("maxLength").and_then(Value::as_u64)
                && (text.chars().count() as u64) > max
            {
                problems.push((name.clone(), format!("at most {max} characters")));
            }
            if let Some(pattern) = property.get("pattern").and_then(Value::as_str)
                && !expression::matches_pattern(pattern, text)
            {
                problems.push((name.clone(), format!("must match {pattern}")));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Actions that reach outside the workspace: the caller's.
pub trait Actions {
    /// Runs `action` with its evaluated `input` over the workspace; returns the step's output.
    fn run(&self, action: &str, input: &Value, workspace: &Workspace) -> impl std::future::Future<Output = Result<Value, String>> + Send;
    /// Whether the caller provides `action` (checked before anything runs).
    fn provides(&self, action: &str) -> bool;
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The step it belongs to, if any.
    pub step: Option<String>,
    pub message: String,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub output: Value,
    /// Step id → its output.
    pub steps: BTreeMap<String, Value>,
    #[serde(skip)]
    pub workspace: Workspace,
    /// Steps skipped by their `if` or, in a dry run, because they reach outside.
    pub skipped: Vec<String>,
}

pub const BUILTIN_ACTIONS: &[&str] = &["fetch:template", "fetch:plain", "fs:rename", "fs:delete", "debug:log"];

/// Runs a template. `log` receives each line as it happens (for a live log).
pub async fn run<A: Actions>(
    template: &Template,
    parameters: &Map<String, Value>,
    user: Value,
    sources: &Sources,
    actions: &A,
    dry_run: bool,
    mut log: impl FnMut(LogLine),
) -> Result<Outcome, ScaffolderError> {
    for step in &template.steps {
        if !BUILTIN_ACTIONS.contains(&step.action.as_str()) && !actions.provides(&step.action) {
            return Err(ScaffolderError::Step {
                step: step.id.clone(),
                action: step.action.clone(),
                message: format!(
                    "action {} is not available here (built in: {}; and the hub's publish:heimdall, catalog:register, heimdall:apply)",
                    step.action,
                    BUILTIN_ACTIONS.join(", ")
                ),
            });
        }
    }
    let expressions = Expressions::new();
    let mut context = json!({"parameters": parameters, "steps": {}, "user": user});
    let mut outcome = Outcome { output: Value::Null, steps: BTreeMap::new(), workspace: Workspace::new(), skipped: Vec::new() };
    let mut log_budget = budget::LogBudget::new();
    let mut log = move |line: LogLine| {
        if let Some(message) = log_budget.admit(line.message) {
            log(LogLine { step: line.step, message });
        }
    };
    let bounded = |value: Value, what: &str| {
        let size = budget::json_size(&value);
        if size > budget::MAX_VALUE_BYTES { Err(budget::too_large(what, size, budget::MAX_VALUE_BYTES)) } else { Ok(value) }
    };
    for step in &template.steps {
        let failed = |message: String| ScaffolderError::Step { step: step.id.clone(), action: step.action.clone(), message };
        if let Some(condition) = &step.condition {
            let value = expressions.evaluate(condition, &context).and_then(|v| bounded(v, "its `if`")).map_err(failed)?;
            if !truthy(&value) {
                log(LogLine { step: Some(step.id.clone()), message: format!("skipped: `if` is {value}") });
                outcome.skipped.push(step.id.clone());
                continue;
            }
        }
        let input = expressions.evaluate(&step.input, &context).and_then(|v| bounded(v, "its input")).map_err(failed)?;
        log(LogLine { step: Some(step.id.clone()), message: format!("{} ({})", step.name, step.action) });
        let output = if BUILTIN_ACTIONS.contains(&step.action.as_str()) {
            files::run(&step.action, &input, &mut outcome.workspace, sources, &expressions, &mut |message| {
                log(LogLine { step: Some(step.id.clone()), message })
            })
            .map_err(failed)?
        } else if dry_run {
            log(LogLine { step: Some(step.id.clone()), message: "dry run: not run".into() });
            outcome.skipped.push(step.id.clone());
            json!({})
        } else {
            actions.run(&step.action, &input, &outcome.workspace).await.map_err(failed)?
        };
        let output = bounded(output, "its output").map_err(failed)?;
        let files = outcome.workspace.len();
        let bytes: usize = outcome.workspace.iter().map(|(path, content)| path.len() + content.len()).sum();
        if files > budget::MAX_WORKSPACE_FILES || bytes > budget::MAX_WORKSPACE_BYTES {
            return Err(failed(format!(
                "the workspace holds {files} files and {bytes} bytes; at most {} files and {} bytes are allowed",
                budget::MAX_WORKSPACE_FILES,
                budget::MAX_WORKSPACE_BYTES
            )));
        }
        context["steps"][&step.id] = json!({"output": output});
        outcome.steps.insert(step.id.clone(), output);
    }
    outcome.output = expressions
        .evaluate(&template.output, &context)
        .and_then(|v| bounded(v, "the output"))
        .map_err(|message| ScaffolderError::Template { path: "spec.output".into(), message })?;
    Ok(outcome)
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}
