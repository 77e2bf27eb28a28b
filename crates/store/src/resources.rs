//! Create, update, apply, get, list and delete of resources.

use base64::Engine;
use heimdall_model::diff::{Change, ChangeOp, diff};
use heimdall_model::{LabelSelector, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::error::StoreError;
use crate::events::{self, Verb};
use crate::store::{Store, now};
pub use heimdall_api::resources::ApplyOutcome;

/// How a write treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Fails if the object exists.
    Create,
    /// Fails if the object does not exist.
    Update,
    /// Creates or updates; identical content changes nothing.
    Apply,
}

#[derive(Debug, Clone)]
pub struct WriteResult {
    pub outcome: ApplyOutcome,
    pub resource: Resource,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub kind: String,
    /// `None` lists every namespace.
    pub namespace: Option<String>,
    pub selector: LabelSelector,
    /// At most this many items; `None` for all.
    pub limit: Option<usize>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ResourceList {
    pub items: Vec<Resource>,
    /// Present when more items follow.
    pub continue_token: Option<String>,
    /// The store's revision when the list was read; watch from here.
    pub resource_version: i64,
}

/// Position after the last item of a page. Lists are ordered by (namespace, name).
#[derive(Serialize, Deserialize)]
struct Cursor {
    ns: String,
    name: String,
}

fn encode_cursor(resource: &Resource) -> String {
    let cursor = Cursor { ns: resource.metadata.namespace.clone().unwrap_or_default(), name: resource.metadata.name.clone() };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

fn decode_cursor(token: &str) -> Result<Cursor, StoreError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| StoreError::BadRequest(format!("invalid continue token {token:?}: pass the token of the previous page unchanged")))
}

pub(crate) fn parse_body(body: &str) -> Result<Resource, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::corrupt("resource body", e))
}

fn key_of(resource: &Resource) -> ResourceKey {
    resource.key()
}

pub(crate) async fn fetch(conn: &mut AnyConnection, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM resources WHERE kind = $1 AND namespace = $2 AND name = $3")
        .bind(&key.kind)
        .bind(&key.namespace)
        .bind(&key.name)
        .fetch_optional(&mut *conn)
        .await?;
    body.as_deref().map(parse_body).transpose()
}

async fn upsert(conn: &mut AnyConnection, resource: &Resource, exists: bool) -> Result<(), StoreError> {
    let key = key_of(resource);
    let body = serde_json::to_string(resource).map_err(|e| StoreError::corrupt("serialize resource", e))?;
    let meta = &resource.metadata;
    let sql = if exists {
        "UPDATE resources SET uid = $4, resource_version = $5, generation = $6, created_at = $7, body = $8 WHERE kind = $1 AND namespace = $2 AND name = $3"
    } else {
        "INSERT INTO resources (kind, namespace, name, uid, resource_version, generation, created_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
    sqlx::query(sql)
        .bind(&key.kind)
        .bind(&key.namespace)
        .bind(&key.name)
        .bind(meta.uid.clone().unwrap_or_default())
        .bind(resource.resource_version().unwrap_or_default())
        .bind(meta.generation.unwrap_or_default())
        .bind(meta.creation_timestamp.clone().unwrap_or_default())
        .bind(body)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What an audit entry shows of a change: labels, annotations and spec.
pub(crate) fn content_diff(old: Option<&Resource>, new: Option<&Resource>) -> Vec<Change> {
    let view = |r: Option<&Resource>| -> Value {
        r.map(|r| {
            serde_json::json!({
                "metadata": {"labels": r.metadata.labels, "annotations": r.metadata.annotations},
                "spec": r.spec,
            })
        })
        .unwrap_or(Value::Null)
    };
    match (old, new) {
        (None, Some(r)) => vec![Change { op: ChangeOp::Add, path: "spec".into(), old: None, new: Some(r.spec.clone()) }],
        (Some(r), None) => vec![Change { op: ChangeOp::Remove, path: "spec".into(), old: Some(r.spec.clone()), new: None }],
        _ => diff(&view(old), &view(new), ""),
    }
}

fn same_content(a: &Resource, b: &Resource) -> bool {
    a.spec == b.spec
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
        && a.metadata.extra == b.metadata.extra
}

fn check_precondition(key: &ResourceKey, wanted: Option<i64>, existing: Option<&Resource>) -> Result<(), StoreError> {
    match (wanted, existing) {
        (Some(expected), Some(current)) if Some(expected) != current.resource_version() => {
            Err(StoreError::Conflict { key: key.clone(), expected, actual: current.resource_version().unwrap_or_default() })
        }
        (Some(expected), None) => Err(StoreError::Conflict { key: key.clone(), expected, actual: 0 }),
        _ => Ok(()),
    }
}

/// One write inside a held write transaction; advances `revision` if it changes anything.
pub(crate) async fn write_one(
    tx: &mut Transaction<'static, Any>,
    revision: &mut i64,
    actor: &str,
    mut resource: Resource,
    mode: ApplyMode,
) -> Result<WriteResult, StoreError> {
    let key = key_of(&resource);
    let existing = fetch(tx, &key).await?;
    match (mode, &existing) {
        (ApplyMode::Create, Some(_)) => return Err(StoreError::AlreadyExists { key }),
        (ApplyMode::Update, None) => return Err(StoreError::NotFound { key }),
        _ => {}
    }
    check_precondition(&key, resource.resource_version(), existing.as_ref())?;
    if let Some(current) = &existing
        && same_content(current, &resource)
    {
        return Ok(WriteResult { outcome: ApplyOutcome::Unchanged, resource: current.clone() });
    }
    *revision += 1;
    let meta = &mut resource.metadata;
    meta.resource_version = Some(revision.to_string());
    match &existing {
        Some(current) => {
            let spec_changed = current.spec != resource.spec;
            let meta = &mut resource.metadata;
            meta.uid = current.metadata.uid.clone();
            meta.creation_timestamp = current.metadata.creation_timestamp.clone();
            meta.generation = Some(current.metadata.generation.unwrap_or(1) + i64::from(spec_changed));
            resource.status = current.status.clone();
        }
        None => {
            meta.uid = Some(uuid::Uuid::new_v4().to_string());
            meta.creation_timestamp = Some(now());
            meta.generation = Some(1);
            resource.status = None;
        }
    }
    upsert(tx, &resource, existing.is_some()).await?;
    let (verb, outcome) = if existing.is_some() { (Verb::Update, ApplyOutcome::Configured) } else { (Verb::Create, ApplyOutcome::Created) };
    let changes = content_diff(existing.as_ref(), Some(&resource));
    events::record(tx, *revision, actor, verb, &resource, existing.as_ref().and_then(Resource::resource_version), &changes).await?;
    Ok(WriteResult { outcome, resource })
}

/// Deletes a resource's row, and with a Secret its sealed values: they go together.
pub(crate) async fn delete_row(conn: &mut AnyConnection, key: &ResourceKey) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM resources WHERE kind = $1 AND namespace = $2 AND name = $3")
        .bind(&key.kind)
        .bind(&key.namespace)
        .bind(&key.name)
        .execute(&mut *conn)
        .await?;
    if key.kind == crate::secrets::SECRET_KIND {
        sqlx::query("DELETE FROM secret_values WHERE namespace = $1 AND name = $2")
            .bind(&key.namespace)
            .bind(&key.name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Writes one resource. A `metadata.resourceVersion` on `resource` is a
    /// precondition: if the stored object has another, nothing changes and the
    /// result is [`StoreError::Conflict`].
    pub async fn write(&self, actor: &str, resource: Resource, mode: ApplyMode) -> Result<WriteResult, StoreError> {
        self.write_all(actor, vec![resource], mode).await.map(|mut results| results.remove(0)).map_err(|(_, e)| e)
    }

    /// Writes several resources in one transaction: all of them or none. On
    /// failure, returns the index of the resource that failed.
    pub async fn write_all(&self, actor: &str, resources: Vec<Resource>, mode: ApplyMode) -> Result<Vec<WriteResult>, (usize, StoreError)> {
        self.observed("write", self.write_batch(actor, resources, mode, true)).await
    }

    /// What [`Store::write_all`] would do, without changing anything: the same
    /// checks and outcomes, then a rollback.
    pub async fn preview_all(
        &self,
        actor: &str,
        resources: Vec<Resource>,
        mode: ApplyMode,
    ) -> Result<Vec<WriteResult>, (usize, StoreError)> {
        self.observed("preview", self.write_batch(actor, resources, mode, false)).await
    }

    async fn write_batch(
        &self,
        actor: &str,
        resources: Vec<Resource>,
        mode: ApplyMode,
        commit: bool,
    ) -> Result<Vec<WriteResult>, (usize, StoreError)> {
        let (mut tx, start) = self.begin_write().await.map_err(|e| (0, e))?;
        let mut revision = start;
        let mut results = Vec::with_capacity(resources.len());
        for (index, resource) in resources.into_iter().enumerate() {
            results.push(write_one(&mut tx, &mut revision, actor, resource, mode).await.map_err(|e| (index, e))?);
        }
        if commit {
            self.commit_write(tx, start, revision).await.map_err(|e| (0, e))?;
        } else {
            tx.rollback().await.map_err(|e| (0, e.into()))?;
        }
        Ok(results)
    }

    /// Replaces the status of a resource, leaving spec and generation alone.
    pub async fn update_status(
        &self,
        actor: &str,
        key: &ResourceKey,
        status: Value,
        expected: Option<i64>,
    ) -> Result<Resource, StoreError> {
        self.observed("update_status", async {
            let (mut tx, start) = self.begin_write().await?;
            let mut current = fetch(&mut tx, key).await?.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
            check_precondition(key, expected, Some(&current))?;
            if current.status.as_ref() == Some(&status) {
                tx.rollback().await?;
                return Ok(current);
            }
            let before = current.resource_version();
            let changes = diff(current.status.as_ref().unwrap_or(&Value::Null), &status, "status");
            let revision = start + 1;
            current.status = Some(status);
            current.metadata.resource_version = Some(revision.to_string());
            upsert(&mut tx, &current, true).await?;
            events::record(&mut tx, revision, actor, Verb::UpdateStatus, &current, before, &changes).await?;
            self.commit_write(tx, start, revision).await?;
            Ok(current)
        })
        .await
    }

    /// Changes part of a resource's status without undoing what other writers
    /// put there meanwhile: reads the status as `T`, lets `change` edit it, and
    /// writes it only if the resource is still the version read; otherwise reads
    /// and changes again. Agents, the renderer, mirrors and the repository check
    /// each own a part of one status, and agents report only what changed, so a
    /// part overwritten by a stale copy would never be written again.
    ///
    /// `change` sees the resource as read and may run several times. Nothing is
    /// written when the status comes out unchanged. A stored status that does not
    /// read as `T` is refused rather than replaced.
    pub async fn modify_status<T>(
        &self,
        actor: &str,
        key: &ResourceKey,
        change: impl FnMut(&Resource, &mut T),
    ) -> Result<Resource, StoreError>
    where
        T: Serialize + serde::de::DeserializeOwned + Default,
    {
        self.modify_status_from(actor, self.get(key).await?, change).await
    }

    /// [`Store::modify_status`] starting from a copy the caller has just read,
    /// saving a read when nobody wrote meanwhile (the renderer settles every
    /// application it lists).
    pub async fn modify_status_from<T>(
        &self,
        actor: &str,
        read: Resource,
        mut change: impl FnMut(&Resource, &mut T),
    ) -> Result<Resource, StoreError>
    where
        T: Serialize + serde::de::DeserializeOwned + Default,
    {
        const ATTEMPTS: usize = 20;
        let key = &read.key();
        let mut read = Some(read);
        let mut lost = None;
        for _ in 0..ATTEMPTS {
            let current = match read.take() {
                Some(current) => current,
                None => self.get(key).await?,
            };
            let mut status: T = match &current.status {
                None | Some(Value::Null) => T::default(),
                Some(stored) => serde_json::from_value(stored.clone()).map_err(|e| StoreError::corrupt(&format!("status of {key}"), e))?,
            };
            let as_value = |status: &T| serde_json::to_value(status).map_err(|e| StoreError::corrupt(&format!("status of {key}"), e));
            // Compared as `T` says them, so a missing status and its default are one.
            let before = as_value(&status)?;
            change(&current, &mut status);
            let status = as_value(&status)?;
            if status == before {
                return Ok(current);
            }
            match self.update_status(actor, key, status, current.resource_version()).await {
                Err(conflict @ StoreError::Conflict { .. }) => lost = Some(conflict),
                written => return written,
            }
        }
        Err(lost.unwrap_or_else(|| StoreError::BadRequest(format!("{key}: status not written"))))
    }

    pub async fn get(&self, key: &ResourceKey) -> Result<Resource, StoreError> {
        self.observed("get", async {
            let mut conn = self.pool.acquire().await?;
            fetch(&mut conn, key).await?.ok_or_else(|| StoreError::NotFound { key: key.clone() })
        })
        .await
    }

    /// Deletes a resource, optionally only if it still has resourceVersion `expected`.
    pub async fn delete(&self, actor: &str, key: &ResourceKey, expected: Option<i64>) -> Result<Resource, StoreError> {
        self.observed("delete", async {
            let (mut tx, start) = self.begin_write().await?;
            let current = fetch(&mut tx, key).await?.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
            check_precondition(key, expected, Some(&current))?;
            delete_row(&mut tx, key).await?;
            let revision = start + 1;
            let changes = content_diff(Some(&current), None);
            events::record(&mut tx, revision, actor, Verb::Delete, &current, current.resource_version(), &changes).await?;
            self.commit_write(tx, start, revision).await?;
            Ok(current)
        })
        .await
    }

    /// Lists resources of one kind in (namespace, name) order, filtered by
    /// namespace and label selector, a page at a time.
    pub async fn list(&self, query: &ListQuery) -> Result<ResourceList, StoreError> {
        self.observed("list", async {
            const BATCH: i64 = 500;
            let mut cursor = query.continue_token.as_deref().map(decode_cursor).transpose()?;
            let limit = query.limit.unwrap_or(usize::MAX);
            let mut conn = self.pool.acquire().await?;
            let resource_version: i64 = sqlx::query_scalar("SELECT value FROM revision_counter WHERE id = 1").fetch_one(&mut *conn).await?;
            let mut items = Vec::new();
            // Label selectors are evaluated here rather than in SQL, so a page may
            // take several batches; the keyset cursor keeps each batch cheap.
            loop {
                let (ns, name) = cursor.as_ref().map(|c| (c.ns.as_str(), c.name.as_str())).unwrap_or(("", ""));
                let rows = sqlx::query(
                    "SELECT body FROM resources WHERE kind = $1 AND ($2 = '' OR namespace = $2) \
                     AND (namespace > $3 OR (namespace = $3 AND name > $4)) ORDER BY namespace, name LIMIT $5",
                )
                .bind(&query.kind)
                .bind(query.namespace.clone().unwrap_or_default())
                .bind(ns)
                .bind(name)
                .bind(BATCH)
                .fetch_all(&mut *conn)
                .await?;
                let fetched = rows.len();
                for row in rows {
                    let resource = parse_body(&row.try_get::<String, _>("body")?)?;
                    cursor =
                        Some(Cursor { ns: resource.metadata.namespace.clone().unwrap_or_default(), name: resource.metadata.name.clone() });
                    if query.selector.matches(&resource.metadata.labels) {
                        items.push(resource);
                        if items.len() > limit {
                            break;
                        }
                    }
                }
                if items.len() > limit || (fetched as i64) < BATCH {
                    break;
                }
            }
            let continue_token = if items.len() > limit {
                items.truncate(limit);
                items.last().map(encode_cursor)
            } else {
                None
            };
            Ok(ResourceList { items, continue_token, resource_version })
        })
        .await
    }
}
