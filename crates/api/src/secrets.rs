//! Secret values set one key at a time, and master-key rotation. Values never travel back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetSecretValue {
    /// The value, base64-encoded (any bytes; at most 64 KiB decoded).
    pub value: String,
}

/// What anyone may know of a key after a change: never its value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyChange {
    pub namespace: String,
    pub name: String,
    pub key: String,
    /// The new version; absent after a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Applications re-delivered because they read this secret.
    pub redelivered: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    pub key_id: String,
    pub rewrapped: usize,
    pub retired: Vec<String>,
}
