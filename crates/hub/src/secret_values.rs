//! Writing secret values: set a key, delete a key, rotate the master key.
//! A change re-renders and delivers the applications of its namespace, so
//! those reading the secret get the new version and the others commit
//! nothing. Values are write-only: nothing here returns or logs one.

use heimdall_model::ResourceKey;
use heimdall_store::{SECRET_KIND, StoreError};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::auth::{Need, Principal, require};
use crate::delivery::Delivering;
use crate::secrets::catalog;
use crate::state::AppState;
pub use heimdall_api::secrets::{Rotation, SecretKeyChange, SetSecretValue};

/// Why a secret value was not written. Messages name the field, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretValueError {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0}")]
    NoSuchKey(String),
    #[error(transparent)]
    Denied(#[from] crate::auth::Denied),
    #[error(transparent)]
    Keyring(#[from] crate::secrets::KeyringError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SecretValueError {
    SecretValueError::Invalid { field, message: message.into() }
}

fn check_names(namespace: &str, name: &str, key: &str) -> Result<(), SecretValueError> {
    heimdall_model::validation::check_dns_label(namespace).map_err(|e| invalid("namespace", format!("namespace {namespace:?}: {e}")))?;
    heimdall_model::validation::check_dns_subdomain(name).map_err(|e| invalid("name", format!("secret name {name:?}: {e}")))?;
    heimdall_model::validation::check_secret_key(key).map_err(|e| invalid("key", e))
}

/// Whether `key` of secret `namespace/name` may be written by `principal`:
/// checked names, and a namespace some Tenant has (or the platform team's).
/// [`set_key`] checks it too; the API asks first, before it decodes the value.
pub fn check_target(state: &AppState, principal: &Principal, namespace: &str, name: &str, key: &str) -> Result<(), SecretValueError> {
    check_names(namespace, name, key)?;
    if state.rendering.platform().tenant(namespace).is_none() && !crate::auth::may_use_namespace_without_tenant(principal) {
        return Err(invalid("namespace", format!("no Tenant named {namespace:?}")));
    }
    Ok(())
}

/// Sets `key` of secret `namespace/name` to `value`, a new version of it.
pub async fn set_key(
    state: &AppState,
    principal: &Principal,
    namespace: &str,
    name: &str,
    key: &str,
    value: Zeroizing<Vec<u8>>,
) -> Result<SecretKeyChange, SecretValueError> {
    check_target(state, principal, namespace, name, key)?;
    if value.len() > heimdall_secrets::MAX_VALUE_BYTES {
        return Err(invalid("value", format!("{} bytes; at most {} bytes", value.len(), heimdall_secrets::MAX_VALUE_BYTES)));
    }
    let known = state.rendering.secrets().get(namespace, name).map(|e| e.keys.len()).unwrap_or(0);
    if known >= heimdall_secrets::MAX_KEYS && state.rendering.secrets().get(namespace, name).is_none_or(|e| !e.keys.contains_key(key)) {
        return Err(invalid("key", format!("secret {namespace}/{name} has {known} keys; at most {}", heimdall_secrets::MAX_KEYS)));
    }
    let held = state.delivery.lock().await;
    let secrets = state.secrets.clone();
    let secret = state
        .store
        .set_secret_value(&principal.name, namespace, name, key, |version| {
            secrets
                .seal_value(&value, &heimdall_store::value_context(namespace, name, key, version))
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await?;
    drop(value);
    let version = secret.spec.pointer(&format!("/keys/{key}/version")).and_then(Value::as_i64);
    tracing::info!(%namespace, %name, %key, version, by = %principal.name, "secret value set");
    let redelivered = changed(state, &held, namespace, name, &principal.name, &format!("set secret {namespace}/{name} key {key}")).await?;
    Ok(SecretKeyChange { namespace: namespace.into(), name: name.into(), key: key.into(), version, redelivered })
}

/// Deletes `key` of secret `namespace/name`, every version of it.
pub async fn delete_key(
    state: &AppState,
    principal: &Principal,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretKeyChange, SecretValueError> {
    check_names(namespace, name, key)?;
    let held = state.delivery.lock().await;
    match state.store.delete_secret_key(&principal.name, namespace, name, key).await {
        Ok(_) => {}
        Err(StoreError::BadRequest(message)) => return Err(SecretValueError::NoSuchKey(message)),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(%namespace, %name, %key, by = %principal.name, "secret key deleted");
    let redelivered =
        changed(state, &held, namespace, name, &principal.name, &format!("delete secret {namespace}/{name} key {key}")).await?;
    Ok(SecretKeyChange { namespace: namespace.into(), name: name.into(), key: key.into(), version: None, redelivered })
}

/// Wraps every value's key with a new master key; the old one is retired.
pub async fn rotate_master_key(state: &AppState, principal: &Principal) -> Result<Rotation, SecretValueError> {
    require(principal, &Need::rotate_master_key())?;
    Ok(state.secrets.rotate_master_key(&state.store).await?)
}

/// After a secret changed: refresh the catalog and re-render and deliver
/// the applications of its namespace.
async fn changed(
    state: &AppState,
    held: &Delivering<'_>,
    namespace: &str,
    name: &str,
    actor: &str,
    summary: &str,
) -> Result<Vec<String>, StoreError> {
    state.rendering.set_secrets(catalog(&state.store).await?);
    let secret = state.store.get(&ResourceKey::new(SECRET_KIND, namespace, name)).await.ok();
    let note = crate::delivery::ChangeNote {
        actor: actor.to_string(),
        summary: summary.to_string(),
        revision: state.store.revision().await?,
        resources: secret.iter().map(|s| format!("Secret/{namespace}/{name}={}", s.resource_version().unwrap_or_default())).collect(),
    };
    crate::delivery::redeliver_namespace(state, held, namespace, Some(name), &note).await
}
