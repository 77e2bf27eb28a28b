use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::migrations;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Receives the duration of every store operation, for metrics. The store
/// itself stays free of any metrics library.
pub trait StoreObserver: Send + Sync {
    fn observe(&self, operation: &'static str, seconds: f64, ok: bool);
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The newest committed revision this process knows of; watchers wait on it.
    pub(crate) latest: Arc<watch::Sender<i64>>,
    observer: Option<Arc<dyn StoreObserver>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

/// Now, as the store writes timestamps (RFC 3339, UTC, seconds): such strings compare as times.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// Connects to `sqlite://PATH` (created if missing) or `postgres://...`
    /// and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let url = if path.contains('?') { url.to_string() } else { format!("sqlite://{path}?mode=rwc") };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout
                        // makes a second writer wait for the lock instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let mut conn = pool.acquire().await?;
        migrations::run(&mut conn).await?;
        drop(conn);
        let store = Store { pool, backend, latest: Arc::new(watch::channel(0).0), observer: None };
        let revision = store.revision().await?;
        store.latest.send_replace(revision);
        Ok(store)
    }

    pub fn with_observer(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.observed("ping", async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// The newest committed revision.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM revision_counter WHERE id = 1").fetch_one(&self.pool).await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn observed<T, E>(&self, operation: &'static str, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = Instant::now();
        let result = work.await;
        if let Some(observer) = &self.observer {
            observer.observe(operation, started.elapsed().as_secs_f64(), result.is_ok());
        }
        result
    }

    /// Starts a write transaction holding the revision lock, and returns the
    /// revision it starts from. Locking first matters for SQLite: a deferred
    /// transaction that reads before it writes fails instead of waiting when
    /// another writer commits in between.
    pub(crate) async fn begin_write(&self) -> Result<(Transaction<'static, Any>, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE revision_counter SET value = value WHERE id = 1").execute(&mut *tx).await?;
        let revision: i64 = sqlx::query_scalar("SELECT value FROM revision_counter WHERE id = 1").fetch_one(&mut *tx).await?;
        Ok((tx, revision))
    }

    /// Records the last revision used and commits; watchers are woken.
    pub(crate) async fn commit_write(&self, mut tx: Transaction<'static, Any>, start: i64, revision: i64) -> Result<(), StoreError> {
        if revision == start {
            tx.rollback().await?;
            return Ok(());
        }
        sqlx::query("UPDATE revision_counter SET value = $1 WHERE id = 1").bind(revision).execute(&mut *tx).await?;
        tx.commit().await?;
        self.latest.send_if_modified(|latest| {
            let newer = revision > *latest;
            if newer {
                *latest = revision;
            }
            newer
        });
        Ok(())
    }
}
