//! The software catalog through Backstage's REST API on the router: the
//! example organization's tenants and applications as entities with their
//! relations, by-query with filters, order, projection and cursors, facets,
//! by-refs, validation, and the follower that keeps the catalog current.

mod common;

use std::time::Duration;

use common::TestHub;
use serde_json::{Value, json};

async fn example_hub() -> TestHub {
    let hub = TestHub::with_example_organization().await;
    heimdall_hub::catalog::sync_all(&hub.state).await.expect("catalog");
    hub
}

fn relations(entity: &Value) -> Vec<(String, String)> {
    entity["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["type"].as_str().unwrap_or_default().to_string(), r["targetRef"].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[tokio::test]
async fn applications_and_tenants_are_components_and_groups_with_relations() {
    let hub = example_hub().await;
    let (status, storefront) = hub.get("/api/catalog/entities/by-name/component/shop/storefront").await;
    assert_eq!(status, 200, "{storefront}");
    assert_eq!(storefront["metadata"]["annotations"]["heimdall.dev/application"], "Application/shop/storefront");
    assert_eq!(storefront["spec"]["system"], "shop", "app.kubernetes.io/part-of names the system");
    assert!(relations(&storefront).contains(&("ownedBy".into(), "group:default/shop".into())), "{storefront}");

    let (status, shop) = hub.get("/api/catalog/entities/by-name/Group/default/shop").await;
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["metadata"]["title"], "Shop team");
    let shop_relations = relations(&shop);
    assert!(shop_relations.contains(&("ownerOf".into(), "component:shop/storefront".into())), "{shop_relations:?}");
    assert!(!shop_relations.contains(&("ownerOf".into(), "component:payments/settlement".into())));
    assert!(shop_relations.contains(&("hasMember".into(), "user:default/alice-example.com".into())), "{shop_relations:?}");
    assert!(shop_relations.contains(&("parentOf".into(), "group:default/shop-engineers".into())), "{shop_relations:?}");

    let (status, missing) = hub.get("/api/catalog/entities/by-name/component/shop/ghost").await;
    assert_eq!(status, 404, "{missing}");

    let uid = storefront["metadata"]["uid"].as_str().expect("a uid").to_string();
    assert!(storefront["metadata"]["etag"].is_string());
    let (status, same) = hub.get(&format!("/api/catalog/entities/by-uid/{uid}")).await;
    assert_eq!((status, &same["metadata"]["name"]), (axum::http::StatusCode::OK, &json!("storefront")));
    let (status, _) = hub.call("DELETE", &format!("/api/catalog/entities/by-uid/{uid}"), "", "").await;
    assert_eq!(status, 204);
    assert_eq!(hub.get("/api/catalog/entities/by-name/component/shop/storefront").await.0, 404);
    heimdall_hub::catalog::sync_all(&hub.state).await.expect("sync");
    assert_eq!(hub.get("/api/catalog/entities/by-name/component/shop/storefront").await.0, 200, "its source brings it back");
}

#[tokio::test]
async fn by_query_filters_orders_projects_and_pages_with_cursors() {
    let hub = example_hub().await;
    let (status, first) = hub
        .get("/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=2&fields=metadata.name,kind")
        .await;
    assert_eq!(status, 200, "{first}");
    let total = first["totalItems"].as_u64().expect("total");
    assert!(total >= 5, "{first}");
    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().into_iter().flatten().map(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(first["items"][0], json!({"metadata": {"name": names(&first)[0]}, "kind": "Component"}), "projected to the fields asked");
    let cursor = first["pageInfo"]["nextCursor"].as_str().expect("a next page");
    let (_, second) = hub.get(&format!("/api/catalog/entities/by-query?cursor={cursor}&limit=2")).await;
    let mut all = names(&first);
    all.extend(names(&second));
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "ordered across pages: {all:?}");
    assert!(second["pageInfo"]["prevCursor"].is_string());

    let (_, owned) = hub.get("/api/catalog/entities/by-query?filter=kind=component,relations.ownedBy=group:default/payments").await;
    let owned_names = names(&owned);
    assert!(!owned_names.is_empty() && owned_names.iter().all(|n| ["payments-api", "settlement"].contains(&n.as_str())), "{owned_names:?}");

    let (_, searched) = hub.get("/api/catalog/entities/by-query?filter=kind=component&fullTextFilterTerm=STOREFRONT").await;
    assert_eq!(names(&searched), ["storefront"]);

    let (status, bad) = hub.get("/api/catalog/entities/by-query?cursor=garbage").await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = hub.get("/api/catalog/entities/by-query?orderField=metadata.name,sideways").await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test]
async fn facets_by_refs_list_and_validation() {
    let hub = example_hub().await;
    let (status, facets) = hub.get("/api/catalog/entity-facets?facet=kind&facet=spec.type&filter=kind=group").await;
    assert_eq!(status, 200, "{facets}");
    let kinds = facets["facets"]["kind"].as_array().expect("kind facet");
    assert_eq!(kinds.len(), 1, "{facets}");
    assert_eq!(kinds[0]["value"], "Group");

    let (status, refs) = hub
        .call(
            "POST",
            "/api/catalog/entities/by-refs",
            "application/json",
            r#"{"entityRefs": ["component:shop/cart", "component:shop/ghost"]}"#,
        )
        .await;
    assert_eq!(status, 200, "{refs}");
    assert_eq!(refs["items"][0]["metadata"]["name"], "cart");
    assert_eq!(refs["items"][1], Value::Null);

    let (status, list) = hub.get("/api/catalog/entities?filter=kind=group&order=desc:metadata.name&limit=1").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let invalid = json!({"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "bad name"}, "spec": {"type": "service", "lifecycle": "x", "owner": "team"}}, "location": "url:https://git.example.com/catalog-info.yaml"});
    let (status, error) = hub.call("POST", "/api/catalog/validate-entity", "application/json", invalid.to_string()).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["details"][0]["path"], "metadata.name");
    assert_eq!(error["details"][0]["document"], "url:https://git.example.com/catalog-info.yaml");
    let mut valid = invalid.clone();
    valid["entity"]["metadata"]["name"] = json!("good-name");
    let (status, _) = hub.call("POST", "/api/catalog/validate-entity", "application/json", valid.to_string()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_catalog_follows_changes_to_applications() {
    let hub = example_hub().await;
    let follower = tokio::spawn(heimdall_hub::catalog::follow(hub.state.clone()));
    let (status, body) = hub.apply_yaml(&common::web_app("checkout", "registry.example.com/shop/checkout:1", None), "").await;
    assert_eq!(status, 200, "{body}");
    assert!(answers(&hub, "/api/catalog/entities/by-name/component/shop/checkout", 200).await, "the new application appears");
    let (status, _) = hub.call("DELETE", "/api/v1/namespaces/shop/applications/checkout", "", "").await;
    assert_eq!(status, 200);
    assert!(answers(&hub, "/api/catalog/entities/by-name/component/shop/checkout", 404).await, "a deleted application leaves");
    follower.abort();
}

/// Whether `path` answers `status` within ten seconds.
async fn answers(hub: &TestHub, path: &str, status: u16) -> bool {
    for _ in 0..100 {
        if hub.get(path).await.0 == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn registered_locations_are_read_followed_refreshed_and_removed() {
    let hub = example_hub().await;
    let corpus = heimdall_testsupport::conformance_dir().join("backstage/catalog/examples/all-systems.yaml");
    let body = json!({"type": "file", "target": corpus.display().to_string()}).to_string();
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    let kinds: Vec<&str> = created["entities"].as_array().expect("entities").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "System").count(), 3, "the Location's targets are followed: {kinds:?}");
    let id = created["location"]["id"].as_str().expect("id").to_string();
    assert_eq!(hub.get("/api/catalog/entities/by-name/system/default/podcast").await.0, 200);
    let (_, listed) = hub.get("/api/catalog/locations").await;
    assert!(listed.as_array().expect("list").iter().any(|l| l["data"]["id"] == id.as_str()), "{listed}");
    let (status, again) = hub.call("POST", "/api/catalog/locations", "application/json", body).await;
    assert_eq!(status, 409, "{again}");

    // A file with a bad document and a target that does not exist: the rest is read, the problems recorded.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog-info.yaml");
    let good = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: ledger}\nspec: {type: service, lifecycle: production, owner: payments}\n";
    let bad = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: not ok}\nspec: {type: service, lifecycle: production, owner: payments}\n";
    let more = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: more}\nspec: {targets: [./missing.yaml]}\n";
    std::fs::write(&file, format!("{good}---\n{bad}---\n{more}")).expect("write");
    let dry = json!({"type": "file", "target": file.display().to_string()}).to_string();
    let (status, preview) = hub.call("POST", "/api/catalog/locations?dryRun=true", "application/json", dry.clone()).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(hub.get("/api/catalog/entities/by-name/component/default/ledger").await.0, 404, "a dry run stores nothing");
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", dry).await;
    assert_eq!(status, 201, "{created}");
    let ledger_id = created["location"]["id"].as_str().expect("id").to_string();
    let (_, location) = hub.get(&format!("/api/catalog/locations/{ledger_id}")).await;
    let errors = location["status"]["errors"].as_array().expect("errors").clone();
    assert_eq!(errors.len(), 2, "{location}");
    assert!(
        errors.iter().any(|e| e["path"] == "metadata.name" && e["document"].as_str().is_some_and(|d| d.ends_with("document 2"))),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e["message"].as_str().is_some_and(|m| m.contains("missing.yaml"))), "{errors:?}");
    assert_eq!(location["status"]["entities"], 2);

    // The file drops the component; a refresh orphans it.
    std::fs::write(&file, more).expect("rewrite");
    let (status, _) = hub.call("POST", "/api/catalog/refresh", "application/json", r#"{"entityRef": "component:default/ledger"}"#).await;
    assert_eq!(status, 200);
    let (_, ledger) = hub.get("/api/catalog/entities/by-name/component/default/ledger").await;
    assert_eq!(ledger["metadata"]["annotations"]["backstage.io/orphan"], "true", "{ledger}");

    // Deleting the location takes what it provided with it.
    let (status, _) = hub.call("DELETE", &format!("/api/catalog/locations/{id}"), "", "").await;
    assert_eq!(status, 204);
    assert_eq!(hub.get("/api/catalog/entities/by-name/system/default/podcast").await.0, 404);
}

#[tokio::test]
async fn url_locations_are_fetched() {
    // The test server is on loopback, which the hub fetches only when allowed.
    let hub = example_hub().await.with_state(|state| {
        state.fetch =
            std::sync::Arc::new(heimdall_hub::fetch::FetchPolicy { allowed_hosts: vec!["127.0.0.1".into()], ..Default::default() })
    });
    let entity = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: rates}\nspec: {type: openapi, lifecycle: production, owner: payments, definition: 'openapi: 3.0.0'}\n";
    let app = axum::Router::new().route("/repo/catalog-info.yaml", axum::routing::get(move || async move { entity }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let body = json!({"type": "url", "target": format!("http://{address}/repo/catalog-info.yaml")}).to_string();
    let (status, created) = hub.call("POST", "/api/catalog/locations", "application/json", body).await;
    assert_eq!(status, 201, "{created}");
    let (status, rates) = hub.get("/api/catalog/entities/by-name/api/default/rates").await;
    assert_eq!(status, 200, "{rates}");
    assert!(relations(&rates).contains(&("ownedBy".into(), "group:default/payments".into())));
    server.abort();
}

#[tokio::test]
async fn predicate_queries_page_by_post_and_refuse_what_they_cannot_answer() {
    let hub = example_hub().await;
    let body = json!({"query": {"kind": "component", "metadata.namespace": {"$in": ["payments"]}}, "orderBy": [{"field": "metadata.name", "order": "desc"}], "limit": 1});
    let (status, first) = hub.call("POST", "/api/catalog/entities/by-query", "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["totalItems"], 2);
    assert_eq!(first["items"][0]["metadata"]["name"], "settlement");
    let cursor = first["pageInfo"]["nextCursor"].as_str().expect("cursor");
    let (_, second) =
        hub.call("POST", "/api/catalog/entities/by-query", "application/json", json!({"cursor": cursor, "limit": 1}).to_string()).await;
    assert_eq!(second["items"][0]["metadata"]["name"], "payments-api", "the cursor carries the predicate and the order");
    let (status, refused) = hub
        .call("POST", "/api/catalog/entities/by-query", "application/json", json!({"query": {"$not": {"kind": "api"}}}).to_string())
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["details"][0]["path"], "query.$not");
}
