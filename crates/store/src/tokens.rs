//! API tokens. Only a SHA-256 hash of each token is stored: tokens are 256-bit
//! random strings, so a fast hash is enough and lookups stay cheap.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::StoreError;
use crate::store::{Store, now};

/// Prefix that makes Heimdall tokens recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "hdl_";

pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

fn token_info(row: &sqlx::any::AnyRow) -> Result<TokenInfo, sqlx::Error> {
    sqlx::FromRow::from_row(row)
}

impl Store {
    /// Makes `token` the one token called `name`, replacing any earlier one.
    pub async fn put_token(&self, name: &str, token: &str, role: &str, expires_at: Option<String>) -> Result<TokenInfo, StoreError> {
        self.observed("put_token", async {
            let id = uuid::Uuid::new_v4().to_string();
            let created_at = now();
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO api_tokens (id, name, hash, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(name)
                .bind(hash_token(token))
                .bind(role)
                .bind(&created_at)
                .bind(expires_at.clone())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(TokenInfo { id, name: name.to_string(), role: role.to_string(), created_at, expires_at, last_used_at: None })
        })
        .await
    }

    /// The token's record if `token` is known and not expired.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.observed("authenticate_token", async {
            let row = sqlx::query("SELECT id, name, role, created_at, expires_at, last_used_at FROM api_tokens WHERE hash = $1")
                .bind(hash_token(token))
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let info = token_info(&row)?;
            let current = now();
            // RFC 3339 UTC timestamps of one format compare correctly as strings.
            if info.expires_at.as_deref().is_some_and(|expiry| expiry <= current.as_str()) {
                return Ok(None);
            }
            // Record use at most once a minute, so authentication is not a write per request.
            let stale = info.last_used_at.as_deref().is_none_or(|last| last[..16.min(last.len())] != current[..16]);
            if stale {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(&current)
                    .bind(&info.id)
                    .execute(&self.pool)
                    .await?;
            }
            Ok(Some(info))
        })
        .await
    }
}

impl Store {
    /// Spends a one-time token: returns its record (if it is valid and its
    /// role starts with `role_prefix`) and deletes it in the same statement,
    /// so two redeemers can never both succeed.
    pub async fn redeem_token(&self, token: &str, role_prefix: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.observed("redeem_token", async {
            let row = sqlx::query(
                "DELETE FROM api_tokens WHERE hash = $1 AND role LIKE $2 RETURNING id, name, role, created_at, expires_at, last_used_at",
            )
            .bind(hash_token(token))
            .bind(format!("{role_prefix}%"))
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let info = token_info(&row)?;
            if info.expires_at.as_deref().is_some_and(|expiry| expiry <= now().as_str()) {
                return Ok(None);
            }
            Ok(Some(info))
        })
        .await
    }

    /// Deletes the tokens called `names`; returns how many there were.
    pub async fn delete_tokens(&self, names: &[String]) -> Result<u64, StoreError> {
        self.observed("delete_tokens", async {
            let mut deleted = 0;
            let mut tx = self.pool.begin().await?;
            for name in names {
                deleted += sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    /// The record of the token called `name`, without authenticating anything.
    pub async fn token_named(&self, name: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.observed("token_named", async {
            let row = sqlx::query("SELECT id, name, role, created_at, expires_at, last_used_at FROM api_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(token_info(&row)?))
        })
        .await
    }

    /// Records that `cluster`'s agent was heard from now. Not an event:
    /// heartbeats are frequent and say nothing the audit trail needs.
    pub async fn record_heartbeat(&self, cluster: &str) -> Result<String, StoreError> {
        self.observed("record_heartbeat", async {
            let at = now();
            sqlx::query(
                "INSERT INTO cluster_heartbeats (cluster, at) VALUES ($1, $2) ON CONFLICT (cluster) DO UPDATE SET at = excluded.at",
            )
            .bind(cluster)
            .bind(&at)
            .execute(&self.pool)
            .await?;
            Ok(at)
        })
        .await
    }

    /// The last heartbeat of every cluster that ever sent one.
    pub async fn heartbeats(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.observed("heartbeats", async {
            let rows = sqlx::query("SELECT cluster, at FROM cluster_heartbeats").fetch_all(&self.pool).await?;
            rows.iter().map(|row| Ok((row.try_get("cluster")?, row.try_get("at")?))).collect()
        })
        .await
    }
}

impl Store {
    /// Every API token's record (never the token), by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.observed("list_tokens", async {
            let rows = sqlx::query("SELECT id, name, role, created_at, expires_at, last_used_at FROM api_tokens ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
            Ok(rows.iter().map(token_info).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Keeps `data` under `key` (hashed: the key is a credential, such as a
    /// session cookie) until `expires_at`. `kind` separates uses.
    pub async fn put_auth_record(&self, kind: &str, key: &str, data: &str, expires_at: &str) -> Result<(), StoreError> {
        self.observed("put_auth_record", async {
            let mut tx = self.pool.begin().await?;
            // Expired records go whenever a new one comes: no sweeper needed.
            sqlx::query("DELETE FROM auth_records WHERE expires_at <= $1").bind(now()).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO auth_records (kind, key_hash, data, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(kind)
                .bind(hash_token(key))
                .bind(data)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The unexpired record under `key`.
    pub async fn auth_record(&self, kind: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.observed("auth_record", async {
            let row = sqlx::query("SELECT data FROM auth_records WHERE kind = $1 AND key_hash = $2 AND expires_at > $3")
                .bind(kind)
                .bind(hash_token(key))
                .bind(now())
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.map(|row| row.try_get("data")).transpose()?)
        })
        .await
    }

    /// Removes the record under `key` and returns it if it had not expired:
    /// in one statement, so a one-time record is used once.
    pub async fn take_auth_record(&self, kind: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.observed("take_auth_record", async {
            let row = sqlx::query("DELETE FROM auth_records WHERE kind = $1 AND key_hash = $2 RETURNING data, expires_at")
                .bind(kind)
                .bind(hash_token(key))
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let expires_at: String = row.try_get("expires_at")?;
            if expires_at <= now() {
                return Ok(None);
            }
            Ok(Some(row.try_get("data")?))
        })
        .await
    }
}
