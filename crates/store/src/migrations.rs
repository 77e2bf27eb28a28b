//! Schema migrations, embedded in the binary. The SQL is the common subset of
//! SQLite and PostgreSQL, so both backends share one list.

use sqlx::{AnyConnection, Connection};

use crate::error::StoreError;

/// (version, statements). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE revision_counter (
    id INTEGER PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO revision_counter (id, value) VALUES (1, 0);
CREATE TABLE resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    resource_version BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE events (
    revision BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    verb TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    revision_before BIGINT,
    diff TEXT NOT NULL,
    object TEXT NOT NULL
);
CREATE INDEX events_by_object ON events (kind, namespace, name, revision);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT
)
"#,
    ),
    (
        2,
        r#"
CREATE TABLE cluster_heartbeats (
    cluster TEXT PRIMARY KEY,
    at TEXT NOT NULL
)
"#,
    ),
    (
        3,
        r#"
CREATE TABLE auth_records (
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (kind, key_hash)
);
"#,
    ),
    (
        4,
        r#"
CREATE TABLE secret_values (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    PRIMARY KEY (namespace, name, secret_key)
);
CREATE INDEX secret_values_by_master_key ON secret_values (master_key_id);
"#,
    ),
];

pub(crate) async fn run(conn: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = conn.begin().await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1").bind(*version).fetch_optional(&mut *tx).await?;
        if applied.is_some() {
            continue;
        }
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await.map_err(|e| StoreError::Migration(format!("version {version}: {e}")))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::store::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
