//! Request bodies: JSON or YAML, size-limited, with failures in the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::Value;

use crate::error::ApiError;

/// The raw body, with axum's rejections (too large, unreadable) turned into [`ApiError`].
pub struct Body {
    pub bytes: Bytes,
    pub content_type: String,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type =
            request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            let status = rejection.status();
            let reason = if status.as_u16() == 413 { "PayloadTooLarge" } else { "BadRequest" };
            let message = if status.as_u16() == 413 {
                format!("request body is larger than the limit of {} bytes", crate::web::MAX_BODY_BYTES)
            } else {
                rejection.body_text()
            };
            ApiError::new(status, reason, message)
        })?;
        Ok(Body { bytes, content_type })
    }
}

impl Body {
    pub fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.bytes).map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))
    }

    pub fn is_yaml(&self) -> bool {
        self.content_type.contains("yaml")
    }

    /// A body that holds exactly one document (JSON or YAML).
    pub fn single_document(&self, origin: &str) -> Result<Value, ApiError> {
        let mut documents = heimdall_model::parse_documents(self.text()?, origin).map_err(|e| ApiError::invalid(&[e]))?;
        if documents.len() != 1 {
            return Err(ApiError::bad_request(format!(
                "expected exactly one document in the request body, got {}; use POST /api/v1/apply for several",
                documents.len()
            )));
        }
        Ok(documents.remove(0).value)
    }
}
