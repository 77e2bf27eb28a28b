//! Approving a workflow's suspend step, so the steps it holds deliver.

use axum::Json;
use axum::extract::{Extension, Path, State};
use heimdall_model::Resource;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiError;
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
    Ok(Json(crate::admission::approve(&state, &principal, &namespace, &name, &request.step).await?))
}
