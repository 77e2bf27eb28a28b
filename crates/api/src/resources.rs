//! Applying and listing resources: `POST /api/v1/apply`, `GET /api/v1/{plural}`.

use heimdall_model::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::ErrorDetail;

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams, ToSchema)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ApplyOptions {
    /// Namespace for namespaced documents that do not name one (default `default`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Validate and report outcomes without storing anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Store every valid document even if others fail.
    #[serde(default)]
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ApplyDocument {
    /// Where the document came from, for error messages: `apps/web.yaml, document 2`.
    pub source: String,
    #[schema(value_type = Object)]
    pub object: Value,
}

/// The JSON form of an apply request. A YAML body (`Content-Type: application/yaml`)
/// may be sent instead, with the options as query parameters.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ApplyRequest {
    pub documents: Vec<ApplyDocument>,
    #[serde(flatten)]
    pub options: ApplyOptions,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    pub document: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[schema(value_type = String)]
    pub outcome: ApplyOutcome,
    pub resource_version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    pub dry_run: bool,
    pub results: Vec<ApplyResult>,
    /// Only with `continueOnError`: the documents that were not stored and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
}

/// The page a list answers when the request names no `limit`: no answer
/// holds a whole fleet at once; clients follow `metadata.continue`.
pub const DEFAULT_LIST_LIMIT: usize = 500;
/// The largest page a list answers, whatever the `limit` asked.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The page size a list request gets: its `limit` within the maximum, or the default.
pub fn list_limit(asked: Option<usize>) -> usize {
    match asked {
        Some(limit) if limit > 0 => limit.min(MAX_LIST_LIMIT),
        _ => DEFAULT_LIST_LIMIT,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    pub resource_version: String,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceListBody {
    pub api_version: String,
    pub kind: String,
    pub metadata: ListMeta,
    pub items: Vec<Resource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    Created,
    Configured,
    Unchanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_paged_whatever_it_asks() {
        assert_eq!(list_limit(None), DEFAULT_LIST_LIMIT);
        assert_eq!(list_limit(Some(0)), DEFAULT_LIST_LIMIT, "0 is not everything");
        assert_eq!(list_limit(Some(7)), 7);
        assert_eq!(list_limit(Some(usize::MAX)), MAX_LIST_LIMIT);
    }
}
