//! Backstage's scaffolder API (`/api/scaffolder/v2`); `scaffolder` runs the templates.
//!
//! - `GET  /actions`: the actions a template may use
//! - `GET  /templates/{namespace}/{kind}/{name}/parameter-schema`: the form pages
//! - `POST /tasks {templateRef, values}` → `201 {id}` (values checked first: 422 names each field)
//! - `GET  /tasks`, `GET /tasks/{id}`, `GET /tasks/{id}/events?after=N`, `GET /tasks/{id}/eventstream`
//! - `POST /dry-run {templateRef | template + directoryContents, values}`: the files it would create

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use futures::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorDetail};
use crate::scaffolder::tasks::TaskEvent;
use crate::scaffolder::{self, DryRun, ScaffoldError};
use crate::state::AppState;

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
    let id = scaffolder::start(&state, &principal, &request.template_ref, &request.values)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}", tag = "scaffolder", params(("id" = String, Path)), responses((status = 200, description = "the task", body = Object), (status = 404, body = ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let task = scaffolder::visible(&state, &principal, &id)?;
    let mut value = serde_json::to_value(&task).map_err(|e| {
        tracing::error!(task = %id, error = %e, "cannot encode a task");
        ApiError::internal()
    })?;
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
    let tasks = scaffolder::tasks_of(&state, &principal, query.get("createdBy").map(String::as_str));
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
    Ok(Json(scaffolder::events(&state, &principal, &id, after.after)?))
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
    scaffolder::visible(&state, &principal, &id)?;
    let events =
        crate::authentication::while_valid(state.clone(), credential, principal, scaffolder::follow(state.tasks.clone(), id, after.after));
    let stream = futures::StreamExt::map(events, |event| {
        Ok(Event::default().event(event.type_).id(event.id.to_string()).json_data(&event).unwrap_or_default())
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/actions", tag = "scaffolder", responses((status = 200, description = "[{id, description, schema}]", body = Vec<Object>)))]
pub async fn list_actions() -> Json<Value> {
    let actions: Vec<Value> = scaffolder::actions()
        .map(|(id, description)| json!({"id": id, "description": description, "schema": {"input": {}, "output": {}}}))
        .collect();
    Json(Value::Array(actions))
}

#[utoipa::path(get, path = "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema", tag = "scaffolder", params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)), responses((status = 200, description = "{title, description, steps}", body = Object), (status = 404, body = ApiError)))]
pub async fn parameter_schema(
    State(state): State<AppState>,
    UrlPath((namespace, kind, name)): UrlPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (entity, template) = scaffolder::template(&state, &format!("{kind}:{namespace}/{name}"))?;
    let steps: Vec<Value> = template
        .pages
        .iter()
        .map(|page| json!({"title": page.get("title").cloned().unwrap_or(json!("Parameters")), "description": page.get("description"), "schema": page}))
        .collect();
    Ok(Json(
        json!({"title": entity.metadata.title.clone().unwrap_or(template.name.clone()), "description": entity.metadata.description, "steps": steps}),
    ))
}

/// `POST /dry-run`: runs the workspace steps only and shows the files it would publish.
#[utoipa::path(post, path = "/api/scaffolder/v2/dry-run", tag = "scaffolder", request_body(content = Object, description = "{templateRef | template + directoryContents (platform admins), values}"), responses((status = 200, description = "{log, directoryContents, output, steps}", body = Object), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
pub async fn dry_run(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<DryRun>,
) -> Result<Json<Value>, ApiError> {
    let ran = scaffolder::dry_run(&state, &principal, request).await?;
    let files: Vec<Value> = ran
        .outcome
        .workspace
        .iter()
        .map(|(path, content)| {
            json!({"path": path, "base64Content": base64::engine::general_purpose::STANDARD.encode(content), "executable": false})
        })
        .collect();
    let log: Vec<Value> =
        ran.log.into_iter().map(|line| json!({"body": {"message": line.message, "stepId": line.step, "status": "completed"}})).collect();
    let steps: Vec<Value> = ran.template.steps.iter().map(|s| json!({"id": s.id, "name": s.name, "action": s.action})).collect();
    Ok(Json(json!({"log": log, "directoryContents": files, "output": ran.outcome.output, "steps": steps, "skipped": ran.outcome.skipped})))
}

/// What a refused template run means to a client.
impl From<ScaffoldError> for ApiError {
    fn from(err: ScaffoldError) -> Self {
        match err {
            ScaffoldError::Invalid { path, message } => ApiError::invalid_field(&path, message),
            ScaffoldError::Values { ref problems, .. } => {
                let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", err.to_string());
                error.details = problems
                    .iter()
                    .map(|(field, message)| ErrorDetail { document: None, path: format!("values.{field}"), message: message.clone() })
                    .collect();
                error
            }
            ScaffoldError::NoTemplate(_) | ScaffoldError::NoTask(_) => ApiError::not_found(err.to_string()),
            ScaffoldError::Unreadable(message) => ApiError::bad_request(message),
            ScaffoldError::Internal(message) => {
                tracing::error!(error = %message, "scaffolder failure");
                ApiError::internal()
            }
            ScaffoldError::Denied(denied) => denied.into(),
            ScaffoldError::StepFailed { ref message, step } => {
                let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "StepFailed", message.clone());
                if let Some(index) = step {
                    error.details.push(ErrorDetail { document: None, path: format!("spec.steps[{index}]"), message: message.clone() });
                }
                error
            }
        }
    }
}
