use axum::Json;
use axum::extract::{Query, State};
use heimdall_model::kinds;
use heimdall_store::AuditQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::history::AuditList;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Kind, plural or short name: `Application`, `applications`, `app`.
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Only events with a revision below this one (page back with the last revision seen).
    pub before: Option<i64>,
    /// At most this many events (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditList), (status = 400, body = ApiError)))]
pub async fn audit(State(state): State<AppState>, Query(params): Query<AuditParams>) -> Result<Json<AuditList>, ApiError> {
    let kind = match params.kind.as_deref() {
        Some(name) => Some(
            kinds::by_name(name)
                .ok_or_else(|| ApiError::bad_request(format!("unknown kind {name:?}: expected one of {}", kinds::known_kinds())))?
                .kind
                .to_string(),
        ),
        None => None,
    };
    let query =
        AuditQuery { kind, namespace: params.namespace, name: params.name, before: params.before, limit: params.limit.unwrap_or(100) };
    Ok(Json(AuditList { items: state.store.audit(&query).await? }))
}
