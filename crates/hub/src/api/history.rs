//! `GET .../history`, `GET .../diff`, `POST .../rollback` of an application:
//! decode, call [`crate::history`], encode.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::history::HistoryError;
use crate::state::AppState;
pub use heimdall_api::history::{ClusterCommit, ClusterDiff, Diff, DiffParams, History, Revision, RollbackRequest};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// At most this many revisions (default 50).
    pub limit: Option<usize>,
}

/// The revisions that changed an application or what it delivers, newest first.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/applications/{name}/history", tag = "history",
    params(("namespace" = String, Path), ("name" = String, Path), HistoryParams), responses((status = 200, body = History)))]
pub async fn history(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    Ok(Json(crate::history::history(&state, &namespace, &name, params.limit).await?))
}

/// The manifest diff of an application between two revisions, per cluster.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/applications/{name}/diff", tag = "history",
    params(("namespace" = String, Path), ("name" = String, Path), DiffParams), responses((status = 200, body = Diff), (status = 422, body = ApiError)))]
pub async fn diff(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<DiffParams>,
) -> Result<Json<Diff>, ApiError> {
    Ok(Json(crate::history::diff(&state, &namespace, &name, &params.from, params.to.as_deref())?))
}

/// Restore the application's spec, labels and annotations as of a revision,
/// as a new change: admitted, stored, audited and committed like any other.
#[utoipa::path(post, path = "/api/v1/namespaces/{namespace}/applications/{name}/rollback", tag = "history",
    params(("namespace" = String, Path), ("name" = String, Path)), request_body = RollbackRequest,
    responses((status = 200, body = heimdall_model::Resource), (status = 422, body = ApiError)))]
pub async fn rollback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, name)): Path<(String, String)>,
    Json(request): Json<RollbackRequest>,
) -> Result<Json<heimdall_model::Resource>, ApiError> {
    Ok(Json(crate::history::rollback(&state, &principal, &namespace, &name, &request.to).await?))
}

/// What each history failure means to a client; the internal ones are logged here.
impl From<HistoryError> for ApiError {
    fn from(err: HistoryError) -> Self {
        match err {
            HistoryError::UnknownRevision { field, message } => Self::invalid_field(field, message),
            HistoryError::NotYet { .. } => Self::not_found(err.to_string()),
            HistoryError::DidNotExist { .. } => Self::invalid_field("to", err.to_string()),
            HistoryError::Store(e) => e.into(),
            HistoryError::Repository { .. } => {
                tracing::error!(error = %err, "history failure");
                Self::internal()
            }
            HistoryError::Refused(e) => e.into(),
        }
    }
}
