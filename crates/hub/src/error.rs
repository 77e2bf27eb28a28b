//! The one error type of the HTTP API. Every failure, from a malformed body to
//! a stale resourceVersion, renders as the same JSON shape:
//!
//! ```json
//! {"status": 422, "reason": "Invalid", "message": "1 document is invalid",
//!  "details": [{"document": "app.yaml", "path": "spec.components[0].name", "message": "..."}]}
//! ```
//!
//! `reason` is a stable machine-readable word; `message` is for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use heimdall_model::{DocumentError, Problem};
use heimdall_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use heimdall_api::ErrorDetail;

/// The hub's side of [`heimdall_api::ApiError`]: the same body, with the
/// constructors, conversions from the hub's own errors, and the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct ApiError(pub heimdall_api::ApiError);

impl std::ops::Deref for ApiError {
    type Target = heimdall_api::ApiError;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<ApiError> for heimdall_api::ApiError {
    fn from(error: ApiError) -> Self {
        error.0
    }
}

impl utoipa::PartialSchema for ApiError {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <heimdall_api::ApiError as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for ApiError {
    fn name() -> std::borrow::Cow<'static, str> {
        <heimdall_api::ApiError as ToSchema>::name()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <heimdall_api::ApiError as ToSchema>::schemas(schemas)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        Self(heimdall_api::ApiError::new(status.as_u16(), reason, message))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal error; the hub's log has the details")
    }

    /// A 422 listing every problem of every invalid document.
    pub fn invalid(errors: &[DocumentError]) -> Self {
        let count = errors.len();
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{count} document{} invalid; nothing was changed", if count == 1 { " is" } else { "s are" }),
        );
        error.details = errors
            .iter()
            .flat_map(|e| {
                e.problems.iter().map(|p| ErrorDetail {
                    document: Some(e.document.clone()),
                    path: p.path.clone(),
                    message: p.message.clone(),
                })
            })
            .collect();
        error
    }

    pub fn invalid_field(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("{}", Problem::new(path, message.clone())));
        error.details.push(ErrorDetail { document: None, path: path.to_string(), message });
        error
    }

    /// Names the document a store error happened in.
    pub fn in_document(mut self, document: &str) -> Self {
        self.message = format!("{document}: {}", self.message);
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => Self::not_found(err.to_string()),
            StoreError::AlreadyExists { .. } => Self::new(StatusCode::CONFLICT, "AlreadyExists", err.to_string()),
            StoreError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "Conflict", err.to_string()),
            StoreError::BadRequest(message) => Self::bad_request(message.clone()),
            StoreError::Corrupt(_) | StoreError::Migration(_) | StoreError::UnsupportedUrl(_) | StoreError::Database(_) => {
                tracing::error!(error = %err, "store failure");
                Self::internal()
            }
        }
    }
}

impl From<heimdall_gitops::GitopsError> for ApiError {
    fn from(err: heimdall_gitops::GitopsError) -> Self {
        use heimdall_gitops::GitopsError;
        match &err {
            GitopsError::Missing { .. } | GitopsError::UnknownRevision { .. } => Self::not_found(err.to_string()),
            GitopsError::Exists { .. } => Self::new(StatusCode::CONFLICT, "AlreadyExists", err.to_string()),
            GitopsError::InvalidPath { .. } => Self::bad_request(err.to_string()),
            _ => {
                tracing::error!(error = %err, "repository failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status_code(), Json(self)).into_response()
    }
}
