//! Claim instances of a namespace and the plan of a migration.

use axum::Json;
use axum::extract::{Path, State};

use crate::error::ApiError;
use crate::migrations::{self, MigrationError};
use crate::state::AppState;
use heimdall_api::claims::{ClaimView, MigrationPlan, PlanRequest};

#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/claim-instances", tag = "claims",
    params(("namespace" = String, Path)), responses((status = 200, body = [ClaimView]), (status = 403, body = ApiError)))]
pub async fn list(State(state): State<AppState>, Path(namespace): Path<String>) -> Result<Json<Vec<ClaimView>>, ApiError> {
    Ok(Json(migrations::instances(&state, &namespace).await?))
}

#[utoipa::path(post, path = "/api/v1/namespaces/{namespace}/claims/{name}/plan", tag = "claims",
    params(("namespace" = String, Path), ("name" = String, Path)), request_body = PlanRequest,
    responses((status = 200, body = MigrationPlan), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
pub async fn plan(
    State(state): State<AppState>,
    Path((namespace, claim)): Path<(String, String)>,
    Json(request): Json<PlanRequest>,
) -> Result<Json<MigrationPlan>, ApiError> {
    Ok(Json(migrations::plan(&state, &namespace, &claim, &request).await?))
}

/// What a planning failure means to a client; store failures are logged by their own mapping.
impl From<MigrationError> for ApiError {
    fn from(err: MigrationError) -> Self {
        match err {
            MigrationError::NoClaim { .. } => ApiError::not_found(err.to_string()),
            MigrationError::NothingToDo { .. } => ApiError::invalid_field("composition", err.to_string()),
            MigrationError::Render(e) => ApiError::invalid(&[e]),
            MigrationError::Store(e) => e.into(),
        }
    }
}
