//! `POST /api/v1/apply`: create or update many documents at once, the
//! endpoint behind `heimdall apply -f`. All-or-nothing unless
//! `continueOnError` is set; `dryRun` reports what would happen.

use axum::Json;
use axum::extract::{Extension, Query, State};
use heimdall_model::Document;

use super::body::Body;
use crate::admission::apply_documents;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::resources::{ApplyDocument, ApplyOptions, ApplyRequest, ApplyResponse, ApplyResult};

/// Create or update every document in the body.
#[utoipa::path(post, path = "/api/v1/apply", tag = "resources",
    params(ApplyOptions),
    request_body(content = ApplyRequest, description = "JSON ApplyRequest, or multi-document YAML with Content-Type application/yaml"),
    responses((status = 200, body = ApplyResponse), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn apply(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ApplyOptions>,
    body: Body,
) -> Result<Json<ApplyResponse>, ApiError> {
    let (documents, options) = if body.is_yaml() {
        let documents = heimdall_model::parse_documents(body.text()?, "request body").map_err(|e| ApiError::invalid(&[e]))?;
        (documents, query)
    } else {
        let invalid = |e: String| ApiError::bad_request(format!("invalid apply request: {e}"));
        let value = heimdall_model::document::parse_json_strict(&body.bytes).map_err(invalid)?;
        let request: ApplyRequest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let options = ApplyOptions {
            namespace: request.options.namespace.or(query.namespace),
            dry_run: request.options.dry_run || query.dry_run,
            continue_on_error: request.options.continue_on_error || query.continue_on_error,
        };
        let documents = request.documents.into_iter().map(|d| Document { source: d.source, value: d.object }).collect();
        (documents, options)
    };
    Ok(Json(apply_documents(&state, &principal, documents, &options).await?))
}
