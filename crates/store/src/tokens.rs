//! API tokens. Only a SHA-256 hash of each token is stored: tokens are 256-bit
//! random strings, so a fast hash is enough and lookups stay cheap.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::StoreError;
use crate::store::{Store, now};

/// Prefix that makes Heimdall tokens recognisable to secret scanners.
const TOKEN_PREFIX: &str = "hdl_";

pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
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
            let info = TokenInfo {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used_at: row.try_get("last_used_at")?,
            };
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
