//! Approving a workflow's suspend step, so the steps it holds deliver.

use axum::Json;
use axum::extract::{Extension, Path, State};
use heimdall_model::{Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::delivery::{self, ChangeNote, Desired};
use crate::error::ApiError;
use crate::rendering::{approvals, status_of};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApproveRequest {
    /// The name of the suspend step (or `auto: false` deploy step) to approve.
    pub step: String,
}

/// Approve a suspended workflow step of an application's current generation.
#[utoipa::path(post, path = "/api/v1/namespaces/{namespace}/applications/{name}/approve", tag = "resources",
    params(("namespace" = String, Path), ("name" = String, Path)), request_body = ApproveRequest,
    responses((status = 200, body = Resource), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
    Json(request): Json<ApproveRequest>,
) -> Result<Json<Resource>, ApiError> {
    let key = ResourceKey::new("Application", namespace, name);
    let _delivery = state.delivery.lock().await;
    let app = state.store.get(&key).await?;
    let current = state.rendering.status(&app);
    let waiting: Vec<&str> = current
        .get("workflow")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("phase").and_then(Value::as_str) == Some("suspended"))
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    if !waiting.contains(&request.step.as_str()) {
        let waiting = if waiting.is_empty() { "no step is waiting".to_string() } else { format!("waiting: {}", waiting.join(", ")) };
        return Err(ApiError::invalid_field("step", format!("step {:?} is not waiting for approval ({waiting})", request.step)));
    }
    let mut steps = approvals(&app);
    steps.insert(request.step.clone());
    let mut approved = app.clone();
    let mut status = app.status.clone().unwrap_or_else(|| json!({}));
    status["approvals"] = json!({"generation": app.metadata.generation, "steps": steps});
    approved.status = Some(status);
    let result = state.rendering.render_app(&approved);
    let status = status_of(&approved, &result);
    let updated = state.store.update_status(&principal.name, &key, status, app.resource_version()).await?;
    tracing::info!(app = %key, step = %request.step, by = %principal.name, "workflow step approved");
    let mut desired = Desired::default();
    desired.add(&state, &updated, &result);
    let note = ChangeNote {
        actor: principal.name.clone(),
        summary: format!("approve step {} of application {}/{}", request.step, key.namespace, key.name),
        revision: updated.resource_version().unwrap_or_default(),
        resources: vec![format!("Application/{}/{}={}", key.namespace, key.name, updated.resource_version().unwrap_or_default())],
    };
    let commits = delivery::deliver(&state, desired, &[(key.namespace.clone(), key.name.clone())], &note).await;
    delivery::publish(&state, &commits).await;
    Ok(Json(updated))
}
