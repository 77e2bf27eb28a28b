//! Runs Backstage software templates (the catalog's Template entities):
//! a task runs a template (the pure runner of `heimdall-scaffolder`) with
//! the hub's actions, as the person who asked; its log is kept for
//! `api::scaffolder` (Backstage's `/api/scaffolder/v2`) and the portal.

pub mod actions;
pub mod tasks;

use std::collections::VecDeque;

use base64::Engine;
use futures::Stream;
use heimdall_catalog::{Entity, EntityRef};
use heimdall_scaffolder::{LogLine, Outcome, ScaffolderError, Template, Workspace};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::state::AppState;
use actions::HubActions;
use tasks::{Task, TaskEvent, Tasks};

/// Why a template was not run or a task not shown.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// A field of the request (`templateRef`, a template's own path, `directoryContents[i]`).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Values that do not fit the template's parameters, field by field.
    #[error("{} value(s) do not fit template {template}; nothing was run", .problems.len())]
    Values { template: String, problems: Vec<(String, String)> },
    #[error("no template {0} in the catalog")]
    NoTemplate(String),
    #[error("no task {0}")]
    NoTask(String),
    /// A template the runner cannot read for another reason than a field of it.
    #[error("{0}")]
    Unreadable(String),
    /// The hub's own failure (logged where it is answered, never described).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Denied(#[from] crate::auth::Denied),
    /// A dry run's step failed: `step` is its index in `spec.steps`.
    #[error("{message}")]
    StepFailed { message: String, step: Option<usize> },
}

fn invalid(path: &str, message: impl Into<String>) -> ScaffoldError {
    ScaffoldError::Invalid { path: path.to_string(), message: message.into() }
}

/// A template from the catalog, ready to run.
pub fn template(state: &AppState, reference: &str) -> Result<(Entity, Template), ScaffoldError> {
    let reference = EntityRef::parse(reference, Some("template"), "default").map_err(|e| invalid("templateRef", e))?;
    if reference.kind != "template" {
        return Err(invalid("templateRef", format!("{reference} is not a template: expected template:<namespace>/<name>")));
    }
    let entity = state.catalog.read(|catalog| catalog.get(&reference)).ok_or_else(|| ScaffoldError::NoTemplate(reference.to_string()))?;
    let value = serde_json::to_value(&entity).map_err(|e| ScaffoldError::Internal(format!("template {reference} does not encode: {e}")))?;
    let parsed = template_of(&value, &reference.to_string())?;
    Ok((entity, parsed))
}

fn template_of(value: &Value, name: &str) -> Result<Template, ScaffoldError> {
    Template::from_entity(value).map_err(|e| match e {
        ScaffolderError::Template { path, message } => invalid(&path, format!("template {name}: {message}")),
        other => ScaffoldError::Unreadable(other.to_string()),
    })
}

/// The values with defaults, or every field that is wrong.
fn checked_values(template: &Template, values: &Map<String, Value>) -> Result<Map<String, Value>, ScaffoldError> {
    template.parameters(values).map_err(|problems| ScaffoldError::Values { template: template.name.clone(), problems })
}

/// Who runs a template, as templates see them (`${{ user.entity.metadata.name }}`).
fn user_of(principal: &Principal) -> Value {
    let name = crate::identity::resource_name(&principal.name);
    json!({"ref": format!("user:default/{name}"), "entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": name}, "spec": {"profile": {"displayName": principal.name}}}})
}

/// Checks the values, then runs the template in the background as
/// `principal`; answers the task's id. A failed task undoes what it made.
pub fn start(state: &AppState, principal: &Principal, template_ref: &str, values: &Map<String, Value>) -> Result<String, ScaffoldError> {
    let (entity, template) = template(state, template_ref)?;
    let values = checked_values(&template, values)?;
    let sources = actions::sources_of(&entity, &template).map_err(|message| invalid("templateRef", message))?;
    let spec = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "templateInfo": {"entityRef": entity.entity_ref().to_string()},
        "parameters": values, "user": user_of(principal)});
    let id = state.tasks.create(spec, &principal.name);
    tracing::info!(task = %id, template = %template.name, actor = %principal.name, "scaffolder task created");
    let (tasks, task_id, state, principal) = (state.tasks.clone(), id.clone(), state.clone(), principal.clone());
    tokio::spawn(async move {
        tasks.start(&task_id);
        let user = user_of(&principal);
        let hub = HubActions::new(state, principal);
        let log = |line: LogLine| tasks.log(&task_id, line.step.as_deref(), &line.message);
        let result = heimdall_scaffolder::run(&template, &values, user, &sources, &hub, false, log).await;
        let result = result.map(|outcome| outcome.output).map_err(|e| e.to_string());
        if let Err(message) = &result {
            tracing::info!(task = %task_id, %message, "scaffolder task failed");
            tasks.log(&task_id, None, message);
            for line in hub.undo().await {
                tasks.log(&task_id, None, &line);
            }
        }
        tasks.finish(&task_id, result);
    });
    Ok(id)
}

/// A task is its creator's (and the platform team's) to see.
pub fn visible(state: &AppState, principal: &Principal, id: &str) -> Result<Task, ScaffoldError> {
    state
        .tasks
        .get(id)
        .filter(|task| crate::auth::may_see_task(principal, &task.created_by))
        .ok_or_else(|| ScaffoldError::NoTask(id.to_string()))
}

/// The tasks `principal` may see, of `created_by` (a name or `user:default/<name>`) if given.
pub fn tasks_of(state: &AppState, principal: &Principal, created_by: Option<&str>) -> Vec<Task> {
    let created_by = created_by.map(|c| c.strip_prefix("user:default/").unwrap_or(c).to_string());
    state.tasks.list(|task| {
        crate::auth::may_see_task(principal, &task.created_by)
            && created_by.as_ref().is_none_or(|c| *c == task.created_by || crate::identity::resource_name(&task.created_by) == *c)
    })
}

/// A visible task's events after `after`.
pub fn events(state: &AppState, principal: &Principal, id: &str, after: Option<usize>) -> Result<Vec<TaskEvent>, ScaffoldError> {
    visible(state, principal, id)?;
    let (events, _) = state.tasks.events(id, after).ok_or_else(|| ScaffoldError::NoTask(id.to_string()))?;
    Ok(events)
}

struct Follow {
    tasks: Tasks,
    id: String,
    after: Option<usize>,
    pending: VecDeque<TaskEvent>,
    moved: tokio::sync::watch::Receiver<u64>,
    finished: bool,
}

/// The task's events from `after` on, then each as it happens, until the completion.
pub fn follow(tasks: Tasks, id: String, after: Option<usize>) -> impl Stream<Item = TaskEvent> {
    let moved = tasks.subscribe();
    let start = Follow { tasks, id, after, pending: VecDeque::new(), moved, finished: false };
    futures::stream::unfold(start, |mut follow| async move {
        loop {
            if let Some(event) = follow.pending.pop_front() {
                follow.after = Some(event.id);
                return Some((event, follow));
            }
            if follow.finished {
                return None;
            }
            follow.moved.borrow_and_update();
            let (events, done) = follow.tasks.events(&follow.id, follow.after)?;
            follow.finished = done;
            follow.pending.extend(events);
            if follow.pending.is_empty() && !done && follow.moved.changed().await.is_err() {
                return None;
            }
        }
    })
}

/// Every action a template may use, with what it does.
pub fn actions() -> impl Iterator<Item = (&'static str, &'static str)> {
    let builtin = heimdall_scaffolder::BUILTIN_ACTIONS.iter().map(|id| (*id, "Built in: works on the task's workspace only."));
    builtin.chain(actions::HUB_ACTIONS.iter().copied())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunFile {
    pub path: String,
    pub base64_content: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// A template in the catalog (Heimdall reads its files next to it) ...
    #[serde(default)]
    pub template_ref: Option<String>,
    /// ... or one sent whole, with its folder's files (Backstage's template editor).
    #[serde(default)]
    pub template: Option<Value>,
    #[serde(default)]
    pub directory_contents: Vec<DryRunFile>,
    #[serde(default)]
    pub values: Map<String, Value>,
}

/// What a dry run did: the template it ran, its outcome and its log.
pub struct DryRunResult {
    pub template: Template,
    pub outcome: Outcome,
    pub log: Vec<LogLine>,
}

/// Runs the workspace steps only: the files the template would publish.
pub async fn dry_run(state: &AppState, principal: &Principal, request: DryRun) -> Result<DryRunResult, ScaffoldError> {
    let (template, sources) = match (&request.template_ref, &request.template) {
        (Some(reference), _) => {
            let (entity, template) = template(state, reference)?;
            let sources = actions::sources_of(&entity, &template).map_err(|message| invalid("templateRef", message))?;
            (template, sources)
        }
        (None, Some(value)) => {
            // A template sent whole is code the hub runs: its authors are the platform team.
            crate::auth::require(principal, &crate::auth::Need::dry_run_any_template())
                .map_err(|e| e.with_hint("dry-run a template of the catalog with templateRef"))?;
            let template = template_of(value, "template")?;
            let mut contents = Workspace::new();
            for (i, file) in request.directory_contents.iter().enumerate() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&file.base64_content)
                    .map_err(|_| invalid(&format!("directoryContents[{i}].base64Content"), "expected base64"))?;
                contents.insert(file.path.clone(), bytes);
            }
            let sources = actions::sources_from_contents(&template, &contents);
            (template, sources)
        }
        (None, None) => return Err(invalid("templateRef", "expected templateRef, or template with directoryContents")),
    };
    let values = checked_values(&template, &request.values)?;
    let hub = HubActions::new(state.clone(), principal.clone());
    let mut log = Vec::new();
    let outcome = heimdall_scaffolder::run(&template, &values, user_of(principal), &sources, &hub, true, |line| log.push(line))
        .await
        .map_err(|e| {
            let step = match &e {
                ScaffolderError::Step { step, .. } => Some(template.steps.iter().position(|s| &s.id == step).unwrap_or_default()),
                _ => None,
            };
            ScaffoldError::StepFailed { message: e.to_string(), step }
        })?;
    Ok(DryRunResult { template, outcome, log })
}
