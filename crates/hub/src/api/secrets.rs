//! The write-only secrets API: values go in, versions come out.

use axum::Json;
use axum::extract::{Extension, Path, State};
use base64::Engine;
use zeroize::Zeroizing;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::secret_values::{self, Rotation, SecretKeyChange, SecretValueError, SetSecretValue};
use crate::state::AppState;

#[utoipa::path(put, path = "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}", tag = "secrets",
    params(("namespace" = String, Path), ("name" = String, Path), ("key" = String, Path)), request_body = SetSecretValue,
    responses((status = 200, body = SecretKeyChange), (status = 403, body = ApiError), (status = 422, body = ApiError)))]
pub async fn set(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, name, key)): Path<(String, String, String)>,
    Json(request): Json<SetSecretValue>,
) -> Result<Json<SecretKeyChange>, ApiError> {
    secret_values::check_target(&state, &principal, &namespace, &name, &key)?;
    // The error names the field, never the content.
    let value = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(request.value.as_bytes())
            .map_err(|_| ApiError::invalid_field("value", "expected base64"))?,
    );
    drop(request);
    Ok(Json(secret_values::set_key(&state, &principal, &namespace, &name, &key, value).await?))
}

#[utoipa::path(delete, path = "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}", tag = "secrets",
    params(("namespace" = String, Path), ("name" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = SecretKeyChange), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, name, key)): Path<(String, String, String)>,
) -> Result<Json<SecretKeyChange>, ApiError> {
    Ok(Json(secret_values::delete_key(&state, &principal, &namespace, &name, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/secrets/rotate-master-key", tag = "secrets",
    responses((status = 200, body = Rotation), (status = 403, body = ApiError)))]
pub async fn rotate_master_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Rotation>, ApiError> {
    Ok(Json(secret_values::rotate_master_key(&state, &principal).await?))
}

/// What a refused secret write means to a client; store failures are logged by their own mapping.
impl From<SecretValueError> for ApiError {
    fn from(err: SecretValueError) -> Self {
        match err {
            SecretValueError::Invalid { field, message } => ApiError::invalid_field(field, message),
            SecretValueError::NoSuchKey(message) => ApiError::not_found(message),
            SecretValueError::Denied(denied) => denied.into(),
            SecretValueError::Keyring(crate::secrets::KeyringError::Store(e)) => e.into(),
            SecretValueError::Keyring(e) => {
                tracing::error!(error = %e, "master key rotation failed");
                ApiError::internal()
            }
            SecretValueError::Store(e) => e.into(),
        }
    }
}
