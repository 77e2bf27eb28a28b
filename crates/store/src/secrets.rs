//! Secret values at rest. A secret is a `Secret` document (names, versions,
//! who changed each key when; never a value) plus one sealed value per key
//! in `secret_values`, written in the same transaction, so the document and
//! its values never disagree and every change is an audit event.
//!
//! The store never sees plaintext: callers pass an already sealed
//! [`StoredValue`] (envelope encryption lives in `heimdall-secrets`). Only
//! the current version of each key is kept; the audit trail keeps the
//! history of versions, which is all anyone may see of the past.

use heimdall_model::{Resource, ResourceKey};
use serde_json::{Value, json};
use sqlx::Row;

use crate::error::StoreError;
use crate::events::{self, Verb};
use crate::resources::{ApplyMode, content_diff, delete_row, fetch, write_one};
use crate::store::{Store, now};

pub const SECRET_KIND: &str = "Secret";
pub const SECRET_API_VERSION: &str = "secrets.heimdall.dev/v1alpha1";

/// A sealed value as stored: opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredValue {
    pub master_key_id: String,
    pub wrapped_key: String,
    pub ciphertext: String,
}

/// The current version of one key of one secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretValue {
    pub namespace: String,
    pub name: String,
    #[sqlx(rename = "secret_key")]
    pub key: String,
    pub version: i64,
    #[sqlx(flatten)]
    pub value: StoredValue,
}

impl SecretValue {
    /// What the value's encryption is bound to: moving it elsewhere breaks it.
    pub fn context(&self) -> String {
        value_context(&self.namespace, &self.name, &self.key, self.version)
    }
}

/// `namespace/name/key/version`: the associated data a value is sealed with.
pub fn value_context(namespace: &str, name: &str, key: &str, version: i64) -> String {
    format!("{namespace}/{name}/{key}/{version}")
}

fn row_to_value(row: &sqlx::any::AnyRow) -> Result<SecretValue, StoreError> {
    Ok(sqlx::FromRow::from_row(row)?)
}

const COLUMNS: &str = "namespace, name, secret_key, version, master_key_id, wrapped_key, ciphertext";

/// Removes the stored value of one key (its row), inside the caller's transaction.
async fn delete_value(tx: &mut sqlx::Transaction<'static, sqlx::Any>, namespace: &str, name: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM secret_values WHERE namespace = $1 AND name = $2 AND secret_key = $3")
        .bind(namespace)
        .bind(name)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn current_version(secret: Option<&Resource>, key: &str) -> i64 {
    secret.and_then(|s| s.spec.pointer(&format!("/keys/{key}/version"))).and_then(Value::as_i64).unwrap_or(0)
}

impl Store {
    /// Sets `key` of secret `namespace/name` to a new version, creating the
    /// secret if needed. `seal` gets the new version number (values are
    /// bound to it) and returns the sealed value. Returns the Secret document.
    pub async fn set_secret_value(
        &self,
        actor: &str,
        namespace: &str,
        name: &str,
        key: &str,
        seal: impl FnOnce(i64) -> Result<StoredValue, StoreError> + Send,
    ) -> Result<Resource, StoreError> {
        self.observed("set_secret_value", async {
            let (mut tx, start) = self.begin_write().await?;
            let secret_key = ResourceKey::new(SECRET_KIND, namespace, name);
            let existing = fetch(&mut tx, &secret_key).await?;
            let version = current_version(existing.as_ref(), key) + 1;
            let value = seal(version)?;
            let mut secret = existing.unwrap_or_else(|| {
                let metadata = heimdall_model::ObjectMeta { name: name.into(), namespace: Some(namespace.into()), ..Default::default() };
                Resource {
                    api_version: SECRET_API_VERSION.into(),
                    kind: SECRET_KIND.into(),
                    metadata,
                    spec: json!({"type": "Opaque", "keys": {}}),
                    status: None,
                }
            });
            secret.metadata.resource_version = None;
            secret.spec["keys"][key] = json!({"version": version, "updatedBy": actor, "updatedAt": now()});
            let mut revision = start;
            let written = write_one(&mut tx, &mut revision, actor, secret, ApplyMode::Apply).await?;
            delete_value(&mut tx, namespace, name, key).await?;
            sqlx::query(&format!("INSERT INTO secret_values ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(namespace)
                .bind(name)
                .bind(key)
                .bind(version)
                .bind(&value.master_key_id)
                .bind(&value.wrapped_key)
                .bind(&value.ciphertext)
                .execute(&mut *tx)
                .await?;
            self.commit_write(tx, start, revision).await?;
            Ok(written.resource)
        })
        .await
    }

    /// Removes one key of a secret, and the secret with its last key.
    /// Returns the document as it is after (`None` once it is gone).
    pub async fn delete_secret_key(&self, actor: &str, namespace: &str, name: &str, key: &str) -> Result<Option<Resource>, StoreError> {
        self.observed("delete_secret_key", async {
            let (mut tx, start) = self.begin_write().await?;
            let secret_key = ResourceKey::new(SECRET_KIND, namespace, name);
            let current = fetch(&mut tx, &secret_key).await?.ok_or_else(|| StoreError::NotFound { key: secret_key.clone() })?;
            let mut secret = current.clone();
            let Some(keys) = secret.spec.get_mut("keys").and_then(Value::as_object_mut).filter(|keys| keys.contains_key(key)) else {
                return Err(StoreError::BadRequest(format!("secret {namespace}/{name} has no key {key}")));
            };
            keys.remove(key);
            let now_empty = keys.is_empty();
            let mut revision = start;
            let result = if now_empty {
                delete_row(&mut tx, &secret_key).await?;
                revision += 1;
                let changes = content_diff(Some(&current), None);
                events::record(&mut tx, revision, actor, Verb::Delete, &current, current.resource_version(), &changes).await?;
                None
            } else {
                secret.metadata.resource_version = None;
                let written = write_one(&mut tx, &mut revision, actor, secret, ApplyMode::Update).await?;
                delete_value(&mut tx, namespace, name, key).await?;
                Some(written.resource)
            };
            self.commit_write(tx, start, revision).await?;
            Ok(result)
        })
        .await
    }

    /// The current sealed value of every key of a secret, by key.
    pub async fn secret_values(&self, namespace: &str, name: &str) -> Result<Vec<SecretValue>, StoreError> {
        self.observed("secret_values", async {
            let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM secret_values WHERE namespace = $1 AND name = $2 ORDER BY secret_key"))
                .bind(namespace)
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(row_to_value).collect()
        })
        .await
    }

    /// A page of sealed values wrapped by `master_key_id`, for re-wrapping.
    pub async fn secret_values_wrapped_by(&self, master_key_id: &str, limit: i64) -> Result<Vec<SecretValue>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM secret_values WHERE master_key_id = $1 ORDER BY namespace, name, secret_key LIMIT $2"
        ))
        .bind(master_key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_value).collect()
    }

    /// How many values each master key wraps.
    pub async fn master_key_usage(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT master_key_id, COUNT(*) AS n FROM secret_values GROUP BY master_key_id ORDER BY master_key_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("master_key_id")?, row.try_get("n")?))).collect()
    }

    /// Replaces the wrapping of one value's data key, if the value is still
    /// the one that was read (same version, same master key): a concurrent
    /// `set` wins and its new value needs no re-wrap. Not a content change,
    /// so no revision and no audit event.
    pub async fn rewrap_secret_value(&self, current: &SecretValue, rewrapped: &StoredValue) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE secret_values SET master_key_id = $1, wrapped_key = $2 \
             WHERE namespace = $3 AND name = $4 AND secret_key = $5 AND version = $6 AND master_key_id = $7 AND ciphertext = $8",
        )
        .bind(&rewrapped.master_key_id)
        .bind(&rewrapped.wrapped_key)
        .bind(&current.namespace)
        .bind(&current.name)
        .bind(&current.key)
        .bind(current.version)
        .bind(&current.value.master_key_id)
        .bind(&current.value.ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
