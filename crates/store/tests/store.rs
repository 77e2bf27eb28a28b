//! The store's contract, run against SQLite and against a real PostgreSQL
//! server started for the test.

use std::collections::BTreeMap;

use futures::StreamExt;
use heimdall_model::{LabelSelector, ObjectMeta, Resource, ResourceKey};
use heimdall_store::{ApplyMode, ApplyOutcome, AuditQuery, ListQuery, Store, StoreError, WatchEventType, WatchFilter};
use heimdall_testsupport::Postgres;
use serde_json::json;

/// Keeps whatever backs a store alive for the length of a test.
#[allow(dead_code)]
enum Guard {
    Dir(tempfile::TempDir),
    Server(Postgres),
}

async fn sqlite() -> (Store, Guard) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("heimdall.db").display());
    (Store::connect(&url).await.expect("connect sqlite"), Guard::Dir(dir))
}

async fn postgres() -> (Store, Guard) {
    let server = Postgres::start();
    (Store::connect(&server.url()).await.expect("connect postgres"), Guard::Server(server))
}

fn app(namespace: &str, name: &str, image: &str, labels: &[(&str, &str)]) -> Resource {
    Resource {
        api_version: "core.oam.dev/v1beta1".into(),
        kind: "Application".into(),
        metadata: ObjectMeta {
            name: name.into(),
            namespace: Some(namespace.into()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            ..Default::default()
        },
        spec: json!({"components": [{"name": name, "type": "webservice", "properties": {"image": image}}]}),
        status: None,
    }
}

fn key(namespace: &str, name: &str) -> ResourceKey {
    ResourceKey::new("Application", namespace, name)
}

async fn audit_count(store: &Store) -> usize {
    store.audit(&AuditQuery { limit: 1000, ..Default::default() }).await.expect("audit").len()
}

async fn create_sets_server_fields(store: Store) {
    let written = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Create).await.expect("create");
    assert_eq!(written.outcome, ApplyOutcome::Created);
    let meta = &written.resource.metadata;
    assert_eq!(meta.resource_version.as_deref(), Some("1"));
    assert_eq!(meta.generation, Some(1));
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.as_deref().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(store.get(&key("shop", "web")).await.expect("get"), written.resource);
    let again = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Create).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })), "{again:?}");
    assert!(matches!(store.get(&key("shop", "nope")).await, Err(StoreError::NotFound { .. })));
}

async fn apply_is_idempotent(store: Store) {
    let first = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    let second = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    assert_eq!(second.outcome, ApplyOutcome::Unchanged);
    assert_eq!(second.resource, first.resource, "nothing bumped");
    assert_eq!(audit_count(&store).await, 1, "an unchanged apply writes no audit event");
    assert_eq!(store.revision().await.expect("revision"), 1);

    let relabelled = store.write("bob", app("shop", "web", "nginx:1", &[("tier", "web")]), ApplyMode::Apply).await.expect("apply");
    assert_eq!(relabelled.outcome, ApplyOutcome::Configured);
    assert_eq!(relabelled.resource.metadata.generation, Some(1), "metadata changes keep the generation");
    assert_eq!(relabelled.resource.metadata.resource_version.as_deref(), Some("2"));

    let changed = store.write("bob", app("shop", "web", "nginx:2", &[("tier", "web")]), ApplyMode::Apply).await.expect("apply");
    assert_eq!(changed.resource.metadata.generation, Some(2), "spec changes bump the generation");
    assert_eq!(changed.resource.metadata.uid, first.resource.metadata.uid);
    assert_eq!(changed.resource.metadata.creation_timestamp, first.resource.metadata.creation_timestamp);
}

async fn stale_resource_version_conflicts(store: Store) {
    let v1 = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply").resource;
    store.write("alice", app("shop", "web", "nginx:2", &[]), ApplyMode::Apply).await.expect("apply");
    let mut stale = app("shop", "web", "nginx:3", &[]);
    stale.metadata.resource_version = v1.metadata.resource_version.clone();
    let result = store.write("bob", stale, ApplyMode::Update).await;
    match result {
        Err(StoreError::Conflict { expected: 1, actual: 2, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stored = store.get(&key("shop", "web")).await.expect("get");
    assert_eq!(stored.spec["components"][0]["properties"]["image"], "nginx:2", "nothing changed");
    assert_eq!(audit_count(&store).await, 2);
}

async fn two_writers_one_conflicts(store: Store) {
    let base = store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply").resource;
    let mut a = app("shop", "web", "nginx:a", &[]);
    let mut b = app("shop", "web", "nginx:b", &[]);
    a.metadata.resource_version = base.metadata.resource_version.clone();
    b.metadata.resource_version = base.metadata.resource_version.clone();
    let (sa, sb) = (store.clone(), store.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { sa.write("alice", a, ApplyMode::Update).await }),
        tokio::spawn(async move { sb.write("bob", b, ApplyMode::Update).await }),
    );
    let results = [ra.expect("join"), rb.expect("join")];
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count();
    assert_eq!((ok, conflicts), (1, 1), "{results:?}");
    let winner = results.iter().find_map(|r| r.as_ref().ok()).expect("one winner");
    assert_eq!(store.get(&key("shop", "web")).await.expect("get"), winner.resource);
}

async fn concurrent_writers_get_gap_free_revisions(store: Store) {
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.write("load", app("shop", &format!("app-{i}"), "nginx", &[]), ApplyMode::Apply).await })
        })
        .collect();
    let mut revisions: Vec<i64> = Vec::new();
    for task in tasks {
        let written = task.await.expect("join").expect("write");
        revisions.push(written.resource.resource_version().expect("rv"));
    }
    revisions.sort();
    assert_eq!(revisions, (1..=24).collect::<Vec<_>>());
    let events = store.audit(&AuditQuery { limit: 100, ..Default::default() }).await.expect("audit");
    let mut logged: Vec<i64> = events.iter().map(|e| e.revision).collect();
    logged.sort();
    assert_eq!(logged, revisions);
}

async fn batches_are_all_or_nothing(store: Store) {
    store.write("alice", app("shop", "existing", "nginx", &[]), ApplyMode::Create).await.expect("create");
    let batch = vec![app("shop", "new-one", "nginx", &[]), app("shop", "existing", "nginx", &[])];
    let err = store.write_all("alice", batch, ApplyMode::Create).await.expect_err("second fails");
    assert_eq!(err.0, 1, "the failing document is named by index");
    assert!(matches!(store.get(&key("shop", "new-one")).await, Err(StoreError::NotFound { .. })), "first was rolled back");
    assert_eq!(store.revision().await.expect("revision"), 1);
    assert_eq!(audit_count(&store).await, 1);
}

async fn list_filters_and_pages(store: Store) {
    for i in 0..7 {
        let tier = if i % 2 == 0 { "web" } else { "worker" };
        store.write("alice", app("shop", &format!("app-{i}"), "nginx", &[("tier", tier)]), ApplyMode::Apply).await.expect("apply");
    }
    store.write("alice", app("payments", "api", "nginx", &[("tier", "web")]), ApplyMode::Apply).await.expect("apply");

    let all = store.list(&ListQuery { kind: "Application".into(), ..Default::default() }).await.expect("list");
    let names: Vec<String> =
        all.items.iter().map(|r| format!("{}/{}", r.metadata.namespace.as_deref().unwrap_or(""), r.metadata.name)).collect();
    assert_eq!(names[0], "payments/api", "ordered by namespace, then name");
    assert_eq!(names.len(), 8);
    assert_eq!(all.resource_version, 8);

    let web = ListQuery {
        kind: "Application".into(),
        namespace: Some("shop".into()),
        selector: LabelSelector::parse("tier=web").expect("selector"),
        limit: Some(3),
        continue_token: None,
    };
    let page1 = store.list(&web).await.expect("page 1");
    assert_eq!(page1.items.iter().map(|r| r.metadata.name.as_str()).collect::<Vec<_>>(), ["app-0", "app-2", "app-4"]);
    let token = page1.continue_token.clone().expect("more pages");
    let page2 = store.list(&ListQuery { continue_token: Some(token), ..web.clone() }).await.expect("page 2");
    assert_eq!(page2.items.iter().map(|r| r.metadata.name.as_str()).collect::<Vec<_>>(), ["app-6"]);
    assert_eq!(page2.continue_token, None);

    let bad = store.list(&ListQuery { continue_token: Some("garbage!".into()), ..web }).await;
    assert!(matches!(bad, Err(StoreError::BadRequest(_))), "{bad:?}");
}

async fn delete_records_and_honours_preconditions(store: Store) {
    let v = store.write("alice", app("shop", "web", "nginx", &[]), ApplyMode::Apply).await.expect("apply").resource;
    let stale = store.delete("bob", &key("shop", "web"), Some(99)).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
    let deleted = store.delete("bob", &key("shop", "web"), v.resource_version()).await.expect("delete");
    assert_eq!(deleted.metadata.uid, v.metadata.uid);
    assert!(matches!(store.get(&key("shop", "web")).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.delete("bob", &key("shop", "web"), None).await, Err(StoreError::NotFound { .. })));
}

async fn audit_trail_says_who_did_what(store: Store) {
    store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    store.write("bob", app("shop", "web", "nginx:2", &[]), ApplyMode::Apply).await.expect("apply");
    store.write("carol", app("shop", "other", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    store.delete("dave", &key("shop", "web"), None).await.expect("delete");

    let events = store
        .audit(&AuditQuery {
            kind: Some("Application".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let summary: Vec<(i64, &str, &str, Option<i64>)> =
        events.iter().map(|e| (e.revision, e.actor.as_str(), e.verb.as_str(), e.revision_before)).collect();
    assert_eq!(summary, vec![(4, "dave", "delete", Some(2)), (2, "bob", "update", Some(1)), (1, "alice", "create", None)]);
    let update = &events[1];
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].path, "spec.components[0].properties.image");
    assert_eq!(update.changes[0].old, Some(json!("nginx:1")));
    assert_eq!(update.changes[0].new, Some(json!("nginx:2")));

    let older = store.audit(&AuditQuery { before: Some(2), limit: 10, ..Default::default() }).await.expect("audit");
    assert_eq!(older.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![1]);
}

async fn status_updates_keep_spec_and_generation(store: Store) {
    store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    let with_status = store.update_status("hub", &key("shop", "web"), json!({"phase": "rendered"}), None).await.expect("status");
    assert_eq!(with_status.metadata.generation, Some(1));
    assert_eq!(with_status.metadata.resource_version.as_deref(), Some("2"));
    let reapplied = store.write("alice", app("shop", "web", "nginx:2", &[]), ApplyMode::Apply).await.expect("apply").resource;
    assert_eq!(reapplied.status, Some(json!({"phase": "rendered"})), "apply never drops status");
}

async fn status_parts_written_concurrently_all_survive(store: Store) {
    type Status = serde_json::Map<String, serde_json::Value>;
    store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    let web = key("shop", "web");
    // Two writers read the same version (each waits until the other has read), then
    // write: the one that loses reads again and its write keeps the other's part.
    let both_read = std::sync::Arc::new(std::sync::Barrier::new(2));
    let racers: Vec<_> = ["agent", "renderer"]
        .into_iter()
        .map(|part| {
            let (store, web, both_read) = (store.clone(), web.clone(), both_read.clone());
            tokio::spawn(async move {
                let mut attempts = 0;
                store
                    .modify_status(part, &web, |_, status: &mut Status| {
                        attempts += 1;
                        if attempts == 1 {
                            // Off the worker, so what this worker holds (a task woken
                            // into its LIFO slot, say) still runs while it waits.
                            tokio::task::block_in_place(|| both_read.wait());
                        }
                        status.insert(part.into(), json!(attempts));
                    })
                    .await
                    .map(|_| attempts)
            })
        })
        .collect();
    let mut attempts = Vec::new();
    for racer in racers {
        attempts.push(racer.await.expect("join").expect("modify"));
    }
    attempts.sort();
    assert_eq!(attempts, vec![1, 2], "one wrote at once, the other read again");
    let status = store.get(&web).await.expect("get").status.expect("status");
    assert!(status.get("agent").is_some() && status.get("renderer").is_some(), "{status}");

    // Many writers, each of its own part, at once: every part is there.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            let web = web.clone();
            tokio::spawn(async move {
                store
                    .modify_status("load", &web, |_, status: &mut Status| {
                        status.insert(format!("part-{i}"), json!(i));
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("modify");
    }
    let status = store.get(&web).await.expect("get").status.expect("status");
    for i in 0..12 {
        assert_eq!(status[format!("part-{i}")], json!(i), "{status}");
    }
    assert!(status.get("agent").is_some(), "{status}");

    // Unchanged writes nothing; a status that does not read as the type is not replaced.
    let revision = store.revision().await.expect("revision");
    store
        .modify_status("agent", &web, |_, status: &mut Status| {
            status.insert("part-3".into(), json!(3));
        })
        .await
        .expect("modify");
    assert_eq!(store.revision().await.expect("revision"), revision, "no change, no write");
    store.update_status("hub", &web, json!(["not", "an", "object"]), None).await.expect("status");
    let refused = store.modify_status("agent", &web, |_, status: &mut Status| {
        status.clear();
    });
    assert!(matches!(refused.await, Err(StoreError::Corrupt(_))));
    assert_eq!(store.get(&web).await.expect("get").status, Some(json!(["not", "an", "object"])));
}

async fn watch_replays_then_follows(store: Store) {
    store.write("alice", app("shop", "before", "nginx", &[]), ApplyMode::Apply).await.expect("apply");
    let from = store.revision().await.expect("revision");
    store.write("alice", app("shop", "web", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    store.write("alice", app("other", "ignored", "nginx:1", &[]), ApplyMode::Apply).await.expect("apply");
    let filter = WatchFilter { kind: Some("Application".into()), namespace: Some("shop".into()) };
    let mut stream = Box::pin(store.watch(filter, from));
    let first = stream.next().await.expect("event").expect("ok");
    assert_eq!((first.type_, first.object.metadata.name.as_str()), (WatchEventType::Added, "web"));

    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        writer.write("bob", app("shop", "web", "nginx:2", &[]), ApplyMode::Apply).await.expect("apply");
        writer.delete("bob", &ResourceKey::new("Application", "shop", "web"), None).await.expect("delete");
    });
    let timeout = std::time::Duration::from_secs(10);
    let modified = tokio::time::timeout(timeout, stream.next()).await.expect("in time").expect("event").expect("ok");
    assert_eq!(modified.type_, WatchEventType::Modified);
    assert_eq!(modified.object.spec["components"][0]["properties"]["image"], "nginx:2");
    let deleted = tokio::time::timeout(timeout, stream.next()).await.expect("in time").expect("event").expect("ok");
    assert_eq!(deleted.type_, WatchEventType::Deleted);
}

async fn tokens_authenticate_by_hash(store: Store) {
    let token = heimdall_store::generate_token();
    let info = store.put_token("admin", &token, "platform-admin", None).await.expect("put");
    let found = store.authenticate_token(&token).await.expect("auth").expect("known");
    assert_eq!((found.id.as_str(), found.role.as_str()), (info.id.as_str(), "platform-admin"));
    assert!(found.last_used_at.is_none());
    assert!(store.authenticate_token(&token).await.expect("auth").expect("known").last_used_at.is_some());
    assert!(store.authenticate_token("hdl_wrong").await.expect("auth").is_none());

    let rotated = heimdall_store::generate_token();
    store.put_token("admin", &rotated, "platform-admin", None).await.expect("put");
    assert!(store.authenticate_token(&token).await.expect("auth").is_none(), "the replaced token no longer works");

    let expired = heimdall_store::generate_token();
    store.put_token("ci", &expired, "platform-admin", Some("2000-01-01T00:00:00Z".into())).await.expect("put");
    assert!(store.authenticate_token(&expired).await.expect("auth").is_none());
}

/// Secret values: versions bump per key, the document and the sealed value
/// move together, re-wraps are compare-and-swap, and deleting the last key
/// (or the document) takes the values with it.
async fn secret_values_travel_with_their_document(store: Store) {
    let sealed = |tag: &str| heimdall_store::StoredValue {
        master_key_id: "mk-a".into(),
        wrapped_key: format!("w-{tag}"),
        ciphertext: format!("c-{tag}"),
    };
    let first = store.set_secret_value("alice", "shop", "db", "password", |v| Ok(sealed(&format!("p{v}")))).await.expect("set");
    assert_eq!(first.spec["keys"]["password"]["version"], 1);
    let second = store.set_secret_value("bob", "shop", "db", "password", |v| Ok(sealed(&format!("p{v}")))).await.expect("set");
    assert_eq!(
        (second.spec["keys"]["password"]["version"].as_i64(), second.spec["keys"]["password"]["updatedBy"].as_str()),
        (Some(2), Some("bob"))
    );
    store.set_secret_value("bob", "shop", "db", "user", |_| Ok(sealed("u"))).await.expect("set");
    let values = store.secret_values("shop", "db").await.expect("values");
    let current: Vec<(&str, i64, &str)> = values.iter().map(|v| (v.key.as_str(), v.version, v.value.ciphertext.as_str())).collect();
    assert_eq!(current, vec![("password", 2, "c-p2"), ("user", 1, "c-u")], "only the current version is kept");
    assert_eq!(values[0].context(), "shop/db/password/2");

    // A failing seal changes nothing.
    let failed = store.set_secret_value("bob", "shop", "db", "password", |_| Err(StoreError::Corrupt("no key".into()))).await;
    assert!(failed.is_err());
    assert_eq!(store.secret_values("shop", "db").await.expect("values")[0].version, 2);

    // Re-wrapping is compare-and-swap on what was read.
    assert_eq!(store.master_key_usage().await.expect("usage"), vec![("mk-a".to_string(), 2)]);
    let rewrapped = heimdall_store::StoredValue {
        master_key_id: "mk-b".into(),
        wrapped_key: "w2".into(),
        ciphertext: values[0].value.ciphertext.clone(),
    };
    assert!(store.rewrap_secret_value(&values[0], &rewrapped).await.expect("rewrap"));
    assert!(!store.rewrap_secret_value(&values[0], &rewrapped).await.expect("stale rewrap"), "the row changed since it was read");
    assert_eq!(store.secret_values_wrapped_by("mk-b", 10).await.expect("page").len(), 1);

    // Keys go one by one; the last one takes the document; a whole delete takes the values.
    let after = store.delete_secret_key("carol", "shop", "db", "password").await.expect("delete key").expect("still there");
    assert!(after.spec["keys"].get("password").is_none());
    assert!(matches!(store.delete_secret_key("carol", "shop", "db", "password").await, Err(StoreError::BadRequest(_))));
    assert!(store.delete_secret_key("carol", "shop", "db", "user").await.expect("delete key").is_none());
    assert!(store.secret_values("shop", "db").await.expect("values").is_empty());
    store.set_secret_value("alice", "shop", "api", "token", |_| Ok(sealed("t"))).await.expect("set");
    store.delete("alice", &ResourceKey::new(heimdall_store::SECRET_KIND, "shop", "api"), None).await.expect("delete");
    assert!(store.secret_values("shop", "api").await.expect("values").is_empty());
    assert!(store.master_key_usage().await.expect("usage").is_empty());
    let audit =
        store.audit(&AuditQuery { kind: Some(heimdall_store::SECRET_KIND.into()), limit: 100, ..Default::default() }).await.expect("audit");
    assert_eq!(audit.len(), 7, "every change is an audit event");
    assert!(audit.iter().all(|e| !serde_json::to_string(e).expect("json").contains("c-p")), "events carry versions, never sealed values");
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (store, _guard) = super::sqlite().await;
                super::$test(store).await;
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (store, _guard) = super::postgres().await;
                super::$test(store).await;
            })*
        }
    };
}

on_both_backends!(
    create_sets_server_fields,
    apply_is_idempotent,
    stale_resource_version_conflicts,
    two_writers_one_conflicts,
    concurrent_writers_get_gap_free_revisions,
    batches_are_all_or_nothing,
    list_filters_and_pages,
    delete_records_and_honours_preconditions,
    audit_trail_says_who_did_what,
    status_updates_keep_spec_and_generation,
    status_parts_written_concurrently_all_survive,
    watch_replays_then_follows,
    tokens_authenticate_by_hash,
    secret_values_travel_with_their_document,
);

#[tokio::test]
async fn sqlite_state_survives_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("heimdall.db").display());
    {
        let store = Store::connect(&url).await.expect("connect");
        store.write("alice", app("shop", "web", "nginx", &[]), ApplyMode::Apply).await.expect("apply");
        store.close().await;
    }
    let store = Store::connect(&url).await.expect("reconnect");
    assert_eq!(store.get(&key("shop", "web")).await.expect("kept").metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(store.revision().await.expect("revision"), 1);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let err = Store::connect("mysql://localhost/x").await.expect_err("unsupported");
    assert!(err.to_string().contains("expected sqlite://PATH or postgres://"), "{err}");
}
