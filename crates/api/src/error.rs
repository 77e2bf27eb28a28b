//! The one error shape of the HTTP API. Every failure, from a malformed body
//! to a stale resourceVersion, reads the same:
//!
//! ```json
//! {"status": 422, "reason": "Invalid", "message": "1 document is invalid",
//!  "details": [{"document": "app.yaml", "path": "spec.components[0].name", "message": "..."}]}
//! ```
//!
//! `reason` is a stable machine-readable word; `message` is for people.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The document the problem is in, for requests that carry documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Field path inside the document; empty for the document as a whole.
    #[serde(default)]
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// The HTTP status code, repeated in the body for clients that lost it.
    pub status: u16,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// For a 403: the permission that was missing (`applications:write in tenant shop ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, reason: &str, message: impl Into<String>) -> Self {
        Self { status, reason: reason.to_string(), message: message.into(), details: Vec::new(), permission: None }
    }

    /// The message and every detail in one line.
    pub fn describe(&self) -> String {
        one_line(&self.message, &self.details)
    }
}

/// A message and its details in one line, as pages and logs people read show
/// an error: `message; document: path: detail; ...`.
pub fn one_line(message: &str, details: &[ErrorDetail]) -> String {
    let mut line = message.to_string();
    for detail in details {
        let document = detail.document.as_deref().map(|d| format!("{d}: ")).unwrap_or_default();
        line.push_str(&format!("; {document}{}: {}", detail.path, detail.message));
    }
    line
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_round_trips_and_omits_what_is_empty() {
        let mut error = ApiError::new(422, "Invalid", "1 document is invalid");
        assert_eq!(
            serde_json::to_value(&error).expect("json"),
            serde_json::json!({"status": 422, "reason": "Invalid", "message": "1 document is invalid"})
        );
        error.details.push(ErrorDetail { document: Some("app.yaml".into()), path: "spec".into(), message: "bad".into() });
        let text = serde_json::to_string(&error).expect("json");
        assert_eq!(serde_json::from_str::<ApiError>(&text).expect("json"), error);
        // A newer hub may add fields; an older client still reads the error.
        let newer: ApiError = serde_json::from_str(r#"{"status":409,"reason":"Conflict","message":"m","hint":"x"}"#).expect("json");
        assert_eq!(newer.reason, "Conflict");
    }
}
