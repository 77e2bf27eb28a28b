//! Signing in and API tokens: what `heimdall login` and `heimdall token` exchange with the hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What `heimdall login` needs to sign in (no secrets).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthConfig {
    /// `None` when the hub has no identity provider: use API tokens.
    pub oidc: Option<PublicOidc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicOidc {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// Who the caller is and what they may do.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    pub name: String,
    pub platform_admin: bool,
    /// Tenant -> role.
    pub tenants: BTreeMap<String, String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    /// A DNS label: `ci-shop`.
    pub name: String,
    /// `platform-admin`, or a tenant role: `owner`, `developer`, `viewer`.
    pub role: String,
    /// The tenant, for a tenant role.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Lifetime; default 90 days, at most two years.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub name: String,
    /// Shown once; the hub keeps only its hash.
    pub token: String,
    pub role: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// What the provider says about its endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}
