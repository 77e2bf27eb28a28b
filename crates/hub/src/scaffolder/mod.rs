//! Backstage's scaffolder API (`/api/scaffolder/v2`) over the catalog's
//! Template entities: a task runs a template (the pure runner of
//! `heimdall-scaffolder`) with the hub's actions, as the person who asked,
//! and its log streams as server-sent events.
//!
//! - `GET  /actions`: the actions a template may use
//! - `GET  /templates/{namespace}/{kind}/{name}/parameter-schema`: the form pages
//! - `POST /tasks {templateRef, values}` → `201 {id}` (values checked first: 422 names each field)
//! - `GET  /tasks`, `GET /tasks/{id}`, `GET /tasks/{id}/events?after=N`, `GET /tasks/{id}/eventstream`
//! - `POST /dry-run {templateRef | template + directoryContents, values}`: the files it would create

pub mod actions;
pub mod tasks;

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use futures::Stream;
use heimdall_catalog::{Entity, EntityRef};
use heimdall_scaffolder::{BUILTIN_ACTIONS, LogLine, ScaffolderError, Template, Workspace};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorDetail};
use crate::state::AppState;
use actions::HubActions;
use tasks::{Task, TaskEvent, Tasks};

/// A template from the catalog, ready to run.
pub fn template(state: &AppState, reference: &str) -> Result<(Entity, Template), ApiError> {
    let reference = EntityRef::parse(reference, Some("template"), "default").map_err(|e| ApiError::invalid_field("templateRef", e))?;
    if reference.kind != "template" {
        return Err(ApiError::invalid_field("templateRef", format!("{reference} is not a template: expected template:<namespace>/<name>")));
    }
    let entity = state
        .catalog
        .read(|catalog| catalog.get(&reference))
        .ok_or_else(|| ApiError::not_found(format!("no template {reference} in the catalog")))?;
    let parsed = template_of(&serde_json::to_value(&entity).map_err(|_| ApiError::internal())?, &reference.to_string())?;
    Ok((entity, parsed))
}

fn template_of(value: &Value, name: &str) -> Result<Template, ApiError> {
    Template::from_entity(value).map_err(|e| match e {
        ScaffolderError::Template { path, message } => ApiError::invalid_field(&path, format!("template {name}: {message}")),
        other => ApiError::bad_request(other.to_string()),
    })
}

/// The values with defaults, or a 422 naming every field that is wrong.
fn checked_values(template: &Template, values: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    template.parameters(values).map_err(|problems| {
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} value(s) do not fit template {}; nothing was run", problems.len(), template.name),
        );
        error.details =
            problems.into_iter().map(|(field, message)| ErrorDetail { document: None, path: format!("values.{field}"), message }).collect();
        error
    })
}

/// Who runs a template, as templates see them (`${{ user.entity.metadata.name }}`).
fn user_of(principal: &Principal) -> Value {
    let name = crate::identity::resource_name(&principal.name);
    json!({"ref": format!("user:default/{name}"), "entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": name}, "spec": {"profile": {"displayName": principal.name}}}})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTask {
    pub template_ref: String,
    #[serde(default)]
    pub values: Map<String, Value>,
}

/// `POST /api/scaffolder/v2/tasks`: checks the values, then runs the template in the background.
#[utoipa::path(post, path = "/api/scaffolder/v2/tasks", tag = "scaffolder", request_body(content = Object, description = "{templateRef, values}"), responses((status = 201, description = "{id}", body = Object), (status = 422, body = ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<CreateTask>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (entity, template) = template(&state, &request.template_ref)?;
    let values = checked_values(&template, &request.values)?;
    let sources = actions::sources_of(&entity, &template).map_err(|message| ApiError::invalid_field("templateRef", message))?;
    let spec = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "templateInfo": {"entityRef": entity.entity_ref().to_string()},
        "parameters": values, "user": user_of(&principal)});
    let id = state.tasks.create(spec, &principal.name);
    tracing::info!(task = %id, template = %template.name, actor = %principal.name, "scaffolder task created");
    let (tasks, task_id) = (state.tasks.clone(), id.clone());
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
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

/// A task is its creator's (and the platform team's) to see.
fn visible(state: &AppState, principal: &Principal, id: &str) -> Result<Task, ApiError> {
    state
        .tasks
        .get(id)
        .filter(|task| crate::auth::may_see_task(principal, &task.created_by))
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}", tag = "scaffolder", params(("id" = String, Path)), responses((status = 200, description = "the task", body = Object), (status = 404, body = ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let task = visible(&state, &principal, &id)?;
    let mut value = serde_json::to_value(&task).map_err(|_| ApiError::internal())?;
    if let Some(output) = task.output {
        value["output"] = output;
    }
    Ok(Json(value))
}

/// `GET /tasks`: your tasks (a platform admin's: everyone's, or `createdBy`'s).
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks", tag = "scaffolder", params(("createdBy" = Option<String>, Query)), responses((status = 200, description = "{totalTasks, tasks}", body = Object)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let created_by = query.get("createdBy").map(|c| c.strip_prefix("user:default/").unwrap_or(c).to_string());
    let tasks = state.tasks.list(|task| {
        crate::auth::may_see_task(&principal, &task.created_by)
            && created_by.as_ref().is_none_or(|c| *c == task.created_by || crate::identity::resource_name(&task.created_by) == *c)
    });
    Json(json!({"totalTasks": tasks.len(), "tasks": tasks}))
}

#[derive(Debug, Deserialize)]
pub struct After {
    after: Option<usize>,
}

#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/events", tag = "scaffolder", params(("id" = String, Path), ("after" = Option<usize>, Query)), responses((status = 200, description = "the task's events", body = Vec<Object>), (status = 404, body = ApiError)))]
pub async fn events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
    Query(after): Query<After>,
) -> Result<Json<Vec<TaskEvent>>, ApiError> {
    visible(&state, &principal, &id)?;
    let (events, _) = state.tasks.events(&id, after.after).ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    Ok(Json(events))
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

/// `GET /tasks/{id}/eventstream`: server-sent events (`log`, then `completion`).
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/eventstream", tag = "scaffolder", params(("id" = String, Path), ("after" = Option<usize>, Query)), responses((status = 200, content_type = "text/event-stream", description = "log events, then completion; ends when the credential does"), (status = 404, body = ApiError)))]
pub async fn eventstream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(credential): Extension<crate::authentication::Credential>,
    UrlPath(id): UrlPath<String>,
    Query(after): Query<After>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    visible(&state, &principal, &id)?;
    let events = crate::authentication::while_valid(state.clone(), credential, principal, follow(state.tasks.clone(), id, after.after));
    let stream = futures::StreamExt::map(events, |event| {
        Ok(Event::default().event(event.type_).id(event.id.to_string()).json_data(&event).unwrap_or_default())
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/actions", tag = "scaffolder", responses((status = 200, description = "[{id, description, schema}]", body = Vec<Object>)))]
pub async fn list_actions() -> Json<Value> {
    let builtin = BUILTIN_ACTIONS.iter().map(|id| (*id, "Built in: works on the task's workspace only."));
    let actions: Vec<Value> = builtin
        .chain(actions::HUB_ACTIONS.iter().copied())
        .map(|(id, description)| json!({"id": id, "description": description, "schema": {"input": {}, "output": {}}}))
        .collect();
    Json(Value::Array(actions))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema", tag = "scaffolder", params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)), responses((status = 200, description = "{title, description, steps}", body = Object), (status = 404, body = ApiError)))]
pub async fn parameter_schema(
    State(state): State<AppState>,
    UrlPath((namespace, kind, name)): UrlPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (entity, template) = template(&state, &format!("{kind}:{namespace}/{name}"))?;
    let steps: Vec<Value> = template
        .pages
        .iter()
        .map(|page| json!({"title": page.get("title").cloned().unwrap_or(json!("Parameters")), "description": page.get("description"), "schema": page}))
        .collect();
    Ok(Json(
        json!({"title": entity.metadata.title.clone().unwrap_or(template.name.clone()), "description": entity.metadata.description, "steps": steps}),
    ))
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

/// `POST /dry-run`: runs the workspace steps only and shows the files it would publish.
#[utoipa::path(post, path = "/api/scaffolder/v2/dry-run", tag = "scaffolder", request_body(content = Object, description = "{templateRef | template + directoryContents (platform admins), values}"), responses((status = 200, description = "{log, directoryContents, output, steps}", body = Object), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
pub async fn dry_run(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<DryRun>,
) -> Result<Json<Value>, ApiError> {
    let (template, sources) = match (&request.template_ref, &request.template) {
        (Some(reference), _) => {
            let (entity, template) = template(&state, reference)?;
            let sources = actions::sources_of(&entity, &template).map_err(|message| ApiError::invalid_field("templateRef", message))?;
            (template, sources)
        }
        (None, Some(value)) => {
            // A template sent whole is code the hub runs: its authors are the platform team.
            crate::auth::require(&principal, &crate::auth::Need::dry_run_any_template()).map_err(|mut e| {
                e.message.push_str("; dry-run a template of the catalog with templateRef");
                e
            })?;
            let template = template_of(value, "template")?;
            let mut contents = Workspace::new();
            for (i, file) in request.directory_contents.iter().enumerate() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&file.base64_content)
                    .map_err(|_| ApiError::invalid_field(&format!("directoryContents[{i}].base64Content"), "expected base64"))?;
                contents.insert(file.path.clone(), bytes);
            }
            let sources = actions::sources_from_contents(&template, &contents);
            (template, sources)
        }
        (None, None) => return Err(ApiError::invalid_field("templateRef", "expected templateRef, or template with directoryContents")),
    };
    let values = checked_values(&template, &request.values)?;
    let hub = HubActions::new(state.clone(), principal.clone());
    let mut log = Vec::new();
    let outcome = heimdall_scaffolder::run(&template, &values, user_of(&principal), &sources, &hub, true, |line| log.push(line))
        .await
        .map_err(|e| {
            let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "StepFailed", e.to_string());
            if let ScaffolderError::Step { step, .. } = &e {
                let index = template.steps.iter().position(|s| &s.id == step).unwrap_or_default();
                error.details.push(ErrorDetail { document: None, path: format!("spec.steps[{index}]"), message: e.to_string() });
            }
            error
        })?;
    let files: Vec<Value> = outcome
        .workspace
        .iter()
        .map(|(path, content)| {
            json!({"path": path, "base64Content": base64::engine::general_purpose::STANDARD.encode(content), "executable": false})
        })
        .collect();
    let log: Vec<Value> =
        log.into_iter().map(|line| json!({"body": {"message": line.message, "stepId": line.step, "status": "completed"}})).collect();
    let steps: Vec<Value> = template.steps.iter().map(|s| json!({"id": s.id, "name": s.name, "action": s.action})).collect();
    Ok(Json(json!({"log": log, "directoryContents": files, "output": outcome.output, "steps": steps, "skipped": outcome.skipped})))
}
