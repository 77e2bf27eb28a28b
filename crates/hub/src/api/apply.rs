//! `POST /api/v1/apply`: create or update many documents at once, the
//! endpoint behind `heimdall apply -f`. All-or-nothing unless
//! `continueOnError` is set; `dryRun` reports what would happen.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Query, State};
use heimdall_model::{Document, DocumentError, Problem, Resource};
use heimdall_store::{ApplyMode, ApplyOutcome};

use super::body::Body;
use crate::admission;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorDetail};
use crate::state::AppState;
pub use heimdall_api::resources::{ApplyDocument, ApplyOptions, ApplyRequest, ApplyResponse, ApplyResult};

fn details(error: &DocumentError) -> impl Iterator<Item = ErrorDetail> + '_ {
    error.problems.iter().map(|p| ErrorDetail { document: Some(error.document.clone()), path: p.path.clone(), message: p.message.clone() })
}

fn result(document: &str, resource: &Resource, outcome: ApplyOutcome) -> ApplyResult {
    ApplyResult {
        document: document.to_string(),
        kind: resource.kind.clone(),
        namespace: resource.metadata.namespace.clone(),
        name: resource.metadata.name.clone(),
        outcome,
        resource_version: resource.metadata.resource_version.clone().unwrap_or_default(),
    }
}

/// Validates and stores `documents` as `principal`. Shared by the API and by
/// `heimdall up` when it loads the example organization.
pub async fn apply_documents(
    state: &AppState,
    actor: &Principal,
    documents: Vec<Document>,
    options: &ApplyOptions,
) -> Result<ApplyResponse, ApiError> {
    if documents.is_empty() {
        return Err(ApiError::bad_request("the request holds no documents"));
    }
    if documents.len() > heimdall_model::limits::MAX_DOCUMENTS {
        return Err(ApiError::invalid(&[heimdall_model::document::too_many_documents("request body", Some(documents.len()))]));
    }
    let namespace = options.namespace.as_deref().unwrap_or("default");
    let mut valid: Vec<(String, Resource)> = Vec::new();
    let mut invalid: Vec<DocumentError> = Vec::new();
    let mut seen: HashMap<heimdall_model::ResourceKey, String> = HashMap::new();
    for document in documents {
        match heimdall_model::decode(&document.value, &document.source, namespace) {
            Ok(decoded) => {
                let key = decoded.resource.key();
                if let Some(first) = seen.get(&key) {
                    invalid.push(DocumentError::new(
                        &document.source,
                        vec![Problem::new("metadata.name", format!("{key} is also defined in {first}; each object may appear once"))],
                    ));
                } else {
                    seen.insert(key, document.source.clone());
                    valid.push((document.source, decoded.resource));
                }
            }
            Err(error) => invalid.push(error),
        }
    }

    if !options.continue_on_error {
        if !invalid.is_empty() {
            return Err(ApiError::invalid(&invalid));
        }
        let sources: Vec<String> = valid.iter().map(|(source, _)| source.clone()).collect();
        let written = admission::write(state, actor, "apply", valid, ApplyMode::Apply, options.dry_run).await?;
        return Ok(ApplyResponse {
            dry_run: options.dry_run,
            results: sources.iter().zip(&written).map(|(source, w)| result(source, &w.resource, w.outcome)).collect(),
            errors: Vec::new(),
        });
    }

    let mut response = ApplyResponse { dry_run: options.dry_run, results: Vec::new(), errors: invalid.iter().flat_map(details).collect() };
    for (source, resource) in valid {
        match admission::write(state, actor, "apply", vec![(source.clone(), resource)], ApplyMode::Apply, options.dry_run).await {
            Ok(mut written) => {
                let w = written.remove(0);
                response.results.push(result(&source, &w.resource, w.outcome));
            }
            Err(e) if e.details.is_empty() => {
                response.errors.push(ErrorDetail { document: Some(source), path: String::new(), message: e.0.message })
            }
            Err(e) => response.errors.extend(e.0.details),
        }
    }
    Ok(response)
}

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
