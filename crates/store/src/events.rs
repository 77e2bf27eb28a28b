//! The event log: one row per committed mutation, written in the mutation's
//! transaction. It is the audit trail (`heimdall audit`) and the source of
//! watch streams.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use heimdall_model::Resource;
use heimdall_model::diff::Change;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction, any::AnyRow};

use crate::error::StoreError;
use crate::resources::parse_body;
use crate::store::{Store, now};
pub use heimdall_api::history::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Create,
    Update,
    UpdateStatus,
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::UpdateStatus => "update-status",
            Verb::Delete => "delete",
        }
    }
}

pub(crate) async fn record(
    tx: &mut Transaction<'static, Any>,
    revision: i64,
    actor: &str,
    verb: Verb,
    object: &Resource,
    revision_before: Option<i64>,
    changes: &[Change],
) -> Result<(), StoreError> {
    let key = object.key();
    sqlx::query(
        "INSERT INTO events (revision, at, actor, verb, kind, namespace, name, uid, revision_before, diff, object) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(revision)
    .bind(now())
    .bind(actor)
    .bind(verb.as_str())
    .bind(&key.kind)
    .bind(&key.namespace)
    .bind(&key.name)
    .bind(object.metadata.uid.clone().unwrap_or_default())
    .bind(revision_before)
    .bind(serde_json::to_string(changes).map_err(|e| StoreError::corrupt("serialize diff", e))?)
    .bind(serde_json::to_string(object).map_err(|e| StoreError::corrupt("serialize object", e))?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Only events older than this revision (for paging back).
    pub before: Option<i64>,
    pub limit: usize,
}

/// An `events` row as stored: the diff is JSON text.
#[derive(sqlx::FromRow)]
struct EventRow {
    revision: i64,
    at: String,
    actor: String,
    verb: String,
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    revision_before: Option<i64>,
    diff: String,
}

fn audit_event(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let row: EventRow = sqlx::FromRow::from_row(row)?;
    Ok(AuditEvent {
        revision: row.revision,
        at: row.at,
        actor: row.actor,
        verb: row.verb,
        kind: row.kind,
        namespace: row.namespace,
        name: row.name,
        uid: row.uid,
        revision_before: row.revision_before,
        changes: serde_json::from_str(&row.diff).map_err(|e| StoreError::corrupt("event diff", e))?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

/// A change as a watcher sees it: the Kubernetes watch event shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub type_: WatchEventType,
    pub object: Resource,
}

#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    pub kind: Option<String>,
    pub namespace: Option<String>,
}

/// How often a watcher re-reads the log even without a local wake-up: other
/// hub replicas write to the same PostgreSQL database without telling us.
const WATCH_POLL: Duration = Duration::from_secs(1);
const WATCH_BATCH: i64 = 500;

impl Store {
    /// Audit events, newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.observed("audit", async {
            let rows = sqlx::query(
                "SELECT revision, at, actor, verb, kind, namespace, name, uid, revision_before, diff FROM events \
                 WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR namespace = $2) AND ($3 = '' OR name = $3) AND revision < $4 \
                 ORDER BY revision DESC LIMIT $5",
            )
            .bind(query.kind.clone().unwrap_or_default())
            .bind(query.namespace.clone().unwrap_or_default())
            .bind(query.name.clone().unwrap_or_default())
            .bind(query.before.unwrap_or(i64::MAX))
            .bind(query.limit.clamp(1, 1000) as i64)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(audit_event).collect()
        })
        .await
    }

    /// The object as the newest create or update at or before `revision` left it.
    pub async fn object_at(&self, key: &heimdall_model::ResourceKey, revision: i64) -> Result<Option<Resource>, StoreError> {
        self.observed("object_at", async {
            let object: Option<String> = sqlx::query_scalar(
                "SELECT object FROM events WHERE kind = $1 AND namespace = $2 AND name = $3 AND revision <= $4 \
                 AND verb IN ('create', 'update') ORDER BY revision DESC LIMIT 1",
            )
            .bind(&key.kind)
            .bind(&key.namespace)
            .bind(&key.name)
            .bind(revision)
            .fetch_optional(&self.pool)
            .await?;
            object.as_deref().map(parse_body).transpose()
        })
        .await
    }

    async fn events_after(&self, filter: &WatchFilter, after: i64) -> Result<Vec<(i64, WatchEvent)>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, verb, object FROM events WHERE revision > $1 AND ($2 = '' OR kind = $2) \
             AND ($3 = '' OR namespace = $3) ORDER BY revision LIMIT $4",
        )
        .bind(after)
        .bind(filter.kind.clone().unwrap_or_default())
        .bind(filter.namespace.clone().unwrap_or_default())
        .bind(WATCH_BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let verb: String = row.try_get("verb")?;
                let type_ = match verb.as_str() {
                    "create" => WatchEventType::Added,
                    "delete" => WatchEventType::Deleted,
                    _ => WatchEventType::Modified,
                };
                let object = parse_body(&row.try_get::<String, _>("object")?)?;
                Ok((row.try_get("revision")?, WatchEvent { type_, object }))
            })
            .collect()
    }

    /// Every change after resourceVersion `from` that matches `filter`, in
    /// order, then new changes as they are committed. The stream ends only on
    /// a database error.
    pub fn watch(&self, filter: WatchFilter, from: i64) -> impl Stream<Item = Result<WatchEvent, StoreError>> + Send + 'static {
        struct State {
            store: Store,
            filter: WatchFilter,
            after: i64,
            buffer: VecDeque<(i64, WatchEvent)>,
            wake: tokio::sync::watch::Receiver<i64>,
            failed: bool,
        }
        let state =
            State { store: self.clone(), filter, after: from, buffer: VecDeque::new(), wake: self.latest.subscribe(), failed: false };
        futures::stream::unfold(state, |mut state| async move {
            if state.failed {
                return None;
            }
            loop {
                if let Some((revision, event)) = state.buffer.pop_front() {
                    state.after = revision;
                    return Some((Ok(event), state));
                }
                // Mark what we are about to read as seen before reading, so a
                // commit that lands during the read still wakes us.
                state.wake.borrow_and_update();
                match state.store.events_after(&state.filter, state.after).await {
                    Ok(events) if !events.is_empty() => state.buffer.extend(events),
                    Ok(_) => {
                        let _ = tokio::time::timeout(WATCH_POLL, state.wake.changed()).await;
                    }
                    Err(e) => {
                        state.failed = true;
                        return Some((Err(e), state));
                    }
                }
            }
        })
    }
}
