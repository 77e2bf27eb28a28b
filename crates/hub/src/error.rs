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
        crate::rejection::Rejection::Invalid(errors.to_vec()).into()
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

impl From<crate::auth::Denied> for ApiError {
    fn from(denied: crate::auth::Denied) -> Self {
        let mut error = Self::forbidden(denied.message);
        error.permission = denied.permission;
        error
    }
}

impl From<crate::auth::AuthorizeError> for ApiError {
    fn from(err: crate::auth::AuthorizeError) -> Self {
        match err {
            crate::auth::AuthorizeError::Denied(denied) => denied.into(),
            crate::auth::AuthorizeError::Store(e) => e.into(),
        }
    }
}

/// Every refusal of admission: the status says whose the failure is.
impl From<crate::rejection::Rejection> for ApiError {
    fn from(rejection: crate::rejection::Rejection) -> Self {
        use crate::rejection::Rejection;
        let details = rejection.details();
        let message = rejection.public_message();
        let mut error = match rejection {
            Rejection::NoDocuments => Self::bad_request(message),
            Rejection::Invalid(_) | Rejection::InvalidField { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message),
            Rejection::PolicyViolation(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "PolicyViolation", message),
            Rejection::BudgetExceeded { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "BudgetExceeded", message),
            Rejection::TenantHasApplications { .. } => Self::new(StatusCode::CONFLICT, "Conflict", message),
            Rejection::Denied(denied) => return denied.into(),
            Rejection::Write { document, source } => {
                let mut error = Self::from(source).in_document(&document);
                error.message.push_str("; nothing was changed");
                error
            }
            Rejection::Store(source) => return source.into(),
        };
        error.details = details;
        error
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => Self::not_found(err.to_string()),
            StoreError::AlreadyExists { .. } => Self::new(StatusCode::CONFLICT, "AlreadyExists", err.to_string()),
            StoreError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "Conflict", err.to_string()),
            StoreError::BadRequest(message) => Self::bad_request(message.clone()),
            _ => {
                debug_assert!(err.is_internal(), "a store error clients may see is answered above");
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
