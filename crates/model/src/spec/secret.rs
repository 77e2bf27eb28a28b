//! `Secret` (group `secrets.heimdall.dev`): what anyone may see of a secret.
//! Names, versions and who changed each key when; the values live sealed
//! in the store and are set through the secrets API only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::Problem;

pub const API_VERSION: &str = "secrets.heimdall.dev/v1alpha1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    /// The Kubernetes Secret type it is delivered as.
    #[serde(default = "opaque", rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub keys: BTreeMap<String, SecretKeyInfo>,
}

fn opaque() -> String {
    "Opaque".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyInfo {
    pub version: i64,
    pub updated_by: String,
    pub updated_at: String,
}

pub(crate) fn validate(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<SecretSpec>(spec, "spec") {
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}
