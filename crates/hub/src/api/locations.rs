//! Backstage's locations API under `/api/catalog`: register, list, remove
//! and refresh catalog locations (`catalog::locations` does the work).

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, Query as UrlQuery, State};
use axum::http::StatusCode;
use heimdall_model::Resource;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::catalog::locations::{self, LocationsError};
use crate::error::ApiError;
use crate::state::AppState;

fn location_json(resource: &Resource) -> Value {
    json!({
        "id": resource.metadata.name,
        "type": resource.spec.get("type").cloned().unwrap_or(Value::Null),
        "target": resource.spec.get("target").cloned().unwrap_or(Value::Null),
    })
}

/// `GET /api/catalog/locations`: `[{data: {id, type, target}}]`.
#[utoipa::path(get, path = "/api/catalog/locations", tag = "catalog", responses((status = 200, description = "[{data: {id, type, target}}]", body = Vec<Object>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Value>>, ApiError> {
    let locations = locations::all(&state).await?;
    Ok(Json(locations.iter().map(|l| json!({"data": location_json(l)})).collect()))
}

/// `GET /api/catalog/locations/{id}`, with what the last read found.
#[utoipa::path(get, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)), responses((status = 200, description = "{id, type, target, status}", body = Object), (status = 404, body = ApiError)))]
pub async fn get(State(state): State<AppState>, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let resource = locations::location(&state, &id).await?;
    let mut answer = location_json(&resource);
    answer["status"] = resource.status.clone().unwrap_or(Value::Null);
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
pub struct NewLocation {
    #[serde(rename = "type", default = "url_type")]
    type_: String,
    target: String,
}

fn url_type() -> String {
    "url".into()
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/catalog/locations[?dryRun=true]`: registers a location (as a
/// `CatalogLocation`, so it is in the audit trail and the store), reads it
/// and answers `{location, entities, exists}` as Backstage does.
#[utoipa::path(post, path = "/api/catalog/locations", tag = "catalog", params(("dryRun" = Option<bool>, Query)), request_body(content = Object, description = "{type: url | file, target}"), responses((status = 201, description = "{location, entities, exists}", body = Object), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    UrlQuery(options): UrlQuery<DryRun>,
    Json(request): Json<NewLocation>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let registered = locations::register(&state, &principal, &request.type_, &request.target, options.dry_run).await?;
    let status = if options.dry_run { StatusCode::OK } else { StatusCode::CREATED };
    let body = json!({"location": location_json(&registered.location), "entities": registered.entities, "exists": registered.exists});
    Ok((status, Json(body)))
}

/// `DELETE /api/catalog/locations/{id}`: the location and the entities it provided go.
#[utoipa::path(delete, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)), responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    locations::unregister(&state, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    entity_ref: String,
}

/// `POST /api/catalog/refresh {entityRef}`: reads the entity's source again now.
#[utoipa::path(post, path = "/api/catalog/refresh", tag = "catalog", request_body(content = Object, description = "{entityRef}"), responses((status = 200), (status = 404, body = ApiError)))]
pub async fn refresh(State(state): State<AppState>, Json(request): Json<RefreshRequest>) -> Result<StatusCode, ApiError> {
    locations::refresh_entity(&state, &request.entity_ref).await?;
    Ok(StatusCode::OK)
}

/// What a refused location request means to a client.
impl From<LocationsError> for ApiError {
    fn from(err: LocationsError) -> Self {
        match err {
            LocationsError::NoLocation(_) | LocationsError::NoEntity(_) => ApiError::not_found(err.to_string()),
            LocationsError::AlreadyRegistered { .. } => ApiError::new(StatusCode::CONFLICT, "Conflict", err.to_string()),
            LocationsError::Invalid { field, message } => ApiError::invalid_field(field, message),
            LocationsError::Denied(denied) => denied.into(),
            LocationsError::Rejected(rejection) => rejection.into(),
            LocationsError::Store(e) => e.into(),
        }
    }
}
