//! Discovery, health, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use heimdall_model::kinds::KINDS;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindDescription {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KindList {
    pub kinds: Vec<KindDescription>,
}

/// The kinds this hub stores.
#[utoipa::path(get, path = "/api/v1/kinds", tag = "discovery", responses((status = 200, body = KindList)))]
pub async fn kinds() -> Json<KindList> {
    Json(KindList {
        kinds: KINDS
            .iter()
            .map(|k| KindDescription {
                api_version: k.api_version.into(),
                kind: k.kind.into(),
                plural: k.plural.into(),
                singular: k.singular.into(),
                short_names: k.short_names.iter().map(|s| s.to_string()).collect(),
                namespaced: k.is_namespaced(),
            })
            .collect(),
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Health), (status = 503, body = ApiError)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", "database unreachable")
    })?;
    let broken: Vec<crate::api::gitops::RepositoryHealth> =
        crate::api::gitops::health(&state).await?.into_iter().filter(|h| h.state != "Healthy").collect();
    if !broken.is_empty() {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            format!("{} cluster repositor{} unusable", broken.len(), if broken.len() == 1 { "y is" } else { "ies are" }),
        );
        error.details = broken
            .into_iter()
            .map(|h| crate::error::ErrorDetail {
                document: Some(format!("Cluster {}", h.cluster)),
                path: "status.repository".into(),
                message: format!("{}: {}", h.state, h.message.unwrap_or_default()),
            })
            .collect();
        return Err(error);
    }
    Ok(Json(Health { status: "ok".into() }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::api::openapi::ApiDoc::openapi())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route; GET /api/openapi.json lists them")
}
