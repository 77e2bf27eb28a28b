//! Access control: every route × every role × own and other tenant, and
//! the isolation between tenants (lists, history, repositories, tokens).

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use common::{TestHub, web_app};
use serde_json::{Value, json};

const TENANTS: [&str; 2] = ["shop", "payments"];

/// Principals of the matrix: (label, stored token name, role).
const PRINCIPALS: &[(&str, &str, &str)] = &[
    ("admin", "token:matrix-admin", "platform-admin"),
    ("shop-owner", "token:shop-owner", "tenant:shop:owner"),
    ("shop-developer", "token:shop-developer", "tenant:shop:developer"),
    ("shop-viewer", "token:shop-viewer", "tenant:shop:viewer"),
    ("payments-developer", "token:payments-developer", "tenant:payments:developer"),
    ("agent", "agent:dev-eu-1", "cluster:dev-eu-1"),
];

#[derive(Clone, Copy, Debug)]
enum Min {
    Anyone,
    Admin,
    Viewer,
    Developer,
    Owner,
    Agent,
    /// The platform admin or the cluster's own credential.
    Repository,
}

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 1,
        "developer" => 2,
        "owner" => 3,
        _ => 0,
    }
}

/// Whether the principal with `role` (a stored role string) should get in.
fn expected(role: &str, min: Min, tenant: &str) -> bool {
    if role == "platform-admin" {
        return !matches!(min, Min::Agent);
    }
    let cluster = role.starts_with("cluster:");
    let held = role.strip_prefix(&format!("tenant:{tenant}:")).map_or(0, rank);
    match min {
        Min::Anyone => !cluster,
        Min::Admin => false,
        Min::Viewer => held >= 1,
        Min::Developer => held >= 2,
        Min::Owner => held >= 3,
        Min::Agent | Min::Repository => cluster,
    }
}

struct Row {
    method: &'static str,
    path: String,
    content_type: &'static str,
    body: String,
    min: Min,
}

fn app_of(tenant: &str) -> &'static str {
    if tenant == "shop" { "storefront" } else { "settlement" }
}

fn rows(hub_tenant_yaml: &str, tenant: &str, app_yaml: &str) -> Vec<Row> {
    let app = app_of(tenant);
    let row = |method, path: String, content_type, body: &str, min| Row { method, path, content_type, body: body.to_string(), min };
    let garbage = "{not json";
    vec![
        row("GET", "/api/v1/kinds".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/auth/whoami".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/applications".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/tenants".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/clusters".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/environments/dev".into(), "", "", Min::Anyone),
        row("GET", "/api/v1/tokens".into(), "", "", Min::Anyone),
        row("GET", format!("/api/v1/tenants/{tenant}"), "", "", Min::Viewer),
        row("PUT", format!("/api/v1/tenants/{tenant}"), "application/yaml", hub_tenant_yaml, Min::Owner),
        row("DELETE", "/api/v1/tenants/ghost".into(), "", "", Min::Admin),
        row("PUT", "/api/v1/clusters/ghost".into(), "application/json", garbage, Min::Admin),
        row("POST", "/api/v1/environments".into(), "application/json", garbage, Min::Anyone),
        row("GET", format!("/api/v1/namespaces/{tenant}/applications"), "", "", Min::Viewer),
        row("GET", format!("/api/v1/namespaces/{tenant}/applications/{app}"), "", "", Min::Viewer),
        row("PUT", format!("/api/v1/namespaces/{tenant}/applications/{app}"), "application/yaml", app_yaml, Min::Developer),
        row("POST", format!("/api/v1/namespaces/{tenant}/applications"), "application/json", garbage, Min::Developer),
        row("DELETE", format!("/api/v1/namespaces/{tenant}/applications/ghost"), "", "", Min::Developer),
        row("GET", format!("/api/v1/namespaces/{tenant}/applications/{app}/history"), "", "", Min::Viewer),
        row("GET", format!("/api/v1/namespaces/{tenant}/applications/{app}/diff"), "", "", Min::Viewer),
        row("POST", format!("/api/v1/namespaces/{tenant}/applications/{app}/rollback"), "application/json", garbage, Min::Developer),
        row("POST", format!("/api/v1/namespaces/{tenant}/applications/{app}/approve"), "application/json", garbage, Min::Developer),
        row("POST", "/api/v1/apply".into(), "application/yaml", app_yaml, Min::Developer),
        row("GET", format!("/api/v1/namespaces/{tenant}/secrets"), "", "", Min::Viewer),
        row(
            "PUT",
            format!("/api/v1/namespaces/{tenant}/secrets/db/keys/password"),
            "application/json",
            r#"{"value": "czNjcjN0"}"#,
            Min::Developer,
        ),
        row("DELETE", format!("/api/v1/namespaces/{tenant}/secrets/ghost/keys/password"), "", "", Min::Developer),
        row("DELETE", format!("/api/v1/namespaces/{tenant}/secrets/ghost"), "", "", Min::Developer),
        row("POST", "/api/v1/secrets/rotate-master-key".into(), "application/json", "{}", Min::Admin),
        row("GET", format!("/api/v1/namespaces/{tenant}/claim-instances"), "", "", Min::Viewer),
        row("GET", "/api/catalog/entities/by-query?filter=kind=component".into(), "", "", Min::Anyone),
        row("GET", "/api/catalog/entities".into(), "", "", Min::Anyone),
        row("GET", format!("/api/catalog/entities/by-name/group/default/{tenant}"), "", "", Min::Anyone),
        row("POST", "/api/catalog/entities/by-refs".into(), "application/json", r#"{"entityRefs": []}"#, Min::Anyone),
        row("GET", "/api/catalog/entity-facets?facet=kind".into(), "", "", Min::Anyone),
        row("POST", "/api/catalog/validate-entity".into(), "application/json", r#"{"entity": {}}"#, Min::Anyone),
        row("GET", "/api/catalog/locations".into(), "", "", Min::Anyone),
        row("GET", "/api/catalog/entities/by-uid/ghost".into(), "", "", Min::Anyone),
        row("DELETE", "/api/catalog/entities/by-uid/ghost".into(), "", "", Min::Admin),
        row(
            "POST",
            "/api/catalog/locations?dryRun=true".into(),
            "application/json",
            r#"{"type": "file", "target": "/nonexistent/catalog-info.yaml"}"#,
            Min::Admin,
        ),
        row("DELETE", "/api/catalog/locations/ghost".into(), "", "", Min::Admin),
        row("POST", format!("/api/v1/namespaces/{tenant}/claims/ghost/plan"), "application/json", r#"{"composition": "x"}"#, Min::Viewer),
        row("GET", format!("/api/v1/namespaces/{tenant}/claimmigrations"), "", "", Min::Viewer),
        row(
            "POST",
            "/api/v1/apply?dryRun=true".into(),
            "application/yaml",
            "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Environment\nmetadata: {name: qa}\n",
            Min::Admin,
        ),
        row(
            "POST",
            "/api/v1/tokens".into(),
            "application/json",
            &json!({"name": format!("m-{tenant}"), "role": "viewer", "tenant": tenant, "ttlSeconds": 60}).to_string(),
            Min::Owner,
        ),
        row("GET", "/api/v1/audit".into(), "", "", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/tokens".into(), "", "", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/join-tokens".into(), "application/json", "{}", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/revoke".into(), "", "", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/install-manifest".into(), "application/json", "{}", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/rebuild".into(), "", "", Min::Admin),
        row("POST", "/api/v1/clusters/ghost/bootstrap".into(), "application/json", "{}", Min::Admin),
        row("GET", "/api/v1/agent/desired".into(), "", "", Min::Agent),
        row("GET", "/git/clusters/dev-eu-1.git/info/refs?service=git-upload-pack".into(), "", "", Min::Repository),
    ]
}

async fn matrix_hub() -> (TestHub, Vec<(String, String)>) {
    let hub = TestHub::with_example_organization().await;
    let mut tokens = Vec::new();
    for (label, name, role) in PRINCIPALS {
        let token = heimdall_store::generate_token();
        hub.store.put_token(name, &token, role, None).await.expect("token");
        tokens.push((label.to_string(), token));
    }
    (hub, tokens)
}

fn stored_yaml(resource: &Value) -> String {
    let mut resource = resource.clone();
    if let Some(metadata) = resource["metadata"].as_object_mut() {
        metadata.retain(|k, _| ["name", "namespace", "labels", "annotations"].contains(&k.as_str()));
    }
    if let Some(object) = resource.as_object_mut() {
        object.remove("status");
    }
    serde_saphyr::to_string(&resource).expect("yaml")
}

#[tokio::test]
async fn every_route_for_every_role_in_its_own_and_another_tenant() {
    let (hub, tokens) = matrix_hub().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for tenant in TENANTS {
        let tenant_yaml = stored_yaml(&hub.get(&format!("/api/v1/tenants/{tenant}")).await.1);
        let app_yaml = stored_yaml(&hub.application(tenant, app_of(tenant)).await);
        for row in rows(&tenant_yaml, tenant, &app_yaml) {
            for ((label, token), (_, _, role)) in tokens.iter().zip(PRINCIPALS) {
                let (status, body) = hub.call_with(row.method, &row.path, row.content_type, row.body.clone(), Some(token)).await;
                checked += 1;
                let allowed = status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED;
                let want = expected(role, row.min, tenant);
                if allowed != want {
                    failures.push(format!(
                        "{} {} as {label}: got {status}, expected {}",
                        row.method,
                        row.path,
                        if want { "allowed" } else { "denied" }
                    ));
                } else if !allowed && !row.path.starts_with("/git/") && body["permission"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("{} {} as {label}: the 403 does not name the missing permission", row.method, row.path));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_tenant_never_sees_or_changes_another_tenants_things() {
    let (hub, tokens) = matrix_hub().await;
    let token = |label: &str| tokens.iter().find(|(l, _)| l == label).map(|(_, t)| t.clone()).expect("token");
    let shop_dev = token("shop-developer");
    let get = |path: &str| {
        let (hub, token) = (&hub, shop_dev.clone());
        let path = path.to_string();
        async move { hub.call_with("GET", &path, "", Body::empty(), Some(&token)).await }
    };

    let (status, apps) = get("/api/v1/applications").await;
    assert_eq!(status, StatusCode::OK);
    let namespaces: Vec<&str> =
        apps["items"].as_array().expect("items").iter().filter_map(|a| a["metadata"]["namespace"].as_str()).collect();
    assert!(!namespaces.is_empty() && namespaces.iter().all(|ns| *ns == "shop"), "{namespaces:?}");
    let (_, workloads) = get("/api/v1/workloads").await;
    assert_eq!(workloads["items"], json!([]), "payments' Score workload is not shop's to see");
    let (_, tenants) = get("/api/v1/tenants").await;
    let names: Vec<&str> = tenants["items"].as_array().expect("items").iter().filter_map(|t| t["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["shop"]);

    let (status, denied) = get("/api/v1/namespaces/payments/applications/settlement/history").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(denied["permission"].as_str().expect("permission").contains("tenant payments"), "{denied}");
    let (status, _) = get("/git/clusters/dev-eu-1.git/info/refs?service=git-upload-pack").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "cluster repositories hold every tenant's manifests");

    // A batch that touches another tenant changes nothing at all.
    let before = hub.store.revision().await.expect("revision");
    let mixed = format!(
        "{}---\n{}",
        web_app("mixed", "registry.example.com/shop/web:1", None),
        web_app("mixed", "registry.example.com/payments/web:1", None).replace("namespace: shop", "namespace: payments")
    );
    let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", mixed, Some(&shop_dev)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().expect("message").contains("document 2"), "names the document: {body}");
    assert_eq!(hub.store.revision().await.expect("revision"), before, "nothing was stored");

    // Tokens: an owner makes and sees its tenant's only.
    let owner = token("shop-owner");
    let request = json!({"name": "ci", "role": "developer", "tenant": "shop", "ttlSeconds": 3600}).to_string();
    let (status, created) = hub.call_with("POST", "/api/v1/tokens", "application/json", request, Some(&owner)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let request = json!({"name": "ci2", "role": "developer", "tenant": "payments"}).to_string();
    let (status, _) = hub.call_with("POST", "/api/v1/tokens", "application/json", request, Some(&owner)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let request = json!({"name": "root", "role": "platform-admin"}).to_string();
    let (status, _) = hub.call_with("POST", "/api/v1/tokens", "application/json", request, Some(&owner)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an owner cannot mint an admin");
    let (_, listed) = hub.call_with("GET", "/api/v1/tokens", "", Body::empty(), Some(&owner)).await;
    let roles: Vec<&str> = listed.as_array().expect("list").iter().filter_map(|t| t["role"].as_str()).collect();
    assert!(!roles.is_empty() && roles.iter().all(|r| r.starts_with("tenant:shop:")), "{roles:?}");
    assert!(!listed.to_string().contains(created["token"].as_str().expect("token")), "tokens are shown once");
    let ci = created["token"].as_str().expect("token").to_string();
    let (status, _) = hub.call_with("GET", "/api/v1/namespaces/shop/applications", "", Body::empty(), Some(&ci)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.call_with("DELETE", "/api/v1/tokens/ci", "", Body::empty(), Some(&token("payments-developer"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant learns nothing about it");
    let (status, _) = hub.call_with("DELETE", "/api/v1/tokens/ci", "", Body::empty(), Some(&owner)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.call_with("GET", "/api/v1/namespaces/shop/applications", "", Body::empty(), Some(&ci)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked token is refused");
}

#[tokio::test]
async fn owners_change_members_only_and_changes_are_attributed() {
    let (hub, tokens) = matrix_hub().await;
    let owner = tokens.iter().find(|(l, _)| l == "shop-owner").map(|(_, t)| t.clone()).expect("token");
    let tenant = hub.get("/api/v1/tenants/shop").await.1;
    let mut with_member = tenant.clone();
    with_member["spec"]["members"].as_array_mut().expect("members").push(json!({"kind": "User", "name": "dana", "role": "viewer"}));
    let (status, body) = hub.call_with("PUT", "/api/v1/tenants/shop", "application/yaml", stored_yaml(&with_member), Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut more_room = with_member.clone();
    more_room["spec"]["environments"] = json!(["dev", "staging", "prod", "sandbox"]);
    let (status, body) = hub.call_with("PUT", "/api/v1/tenants/shop", "application/yaml", stored_yaml(&more_room), Some(&owner)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().expect("message").contains("members only"), "{body}");

    let (status, body) = hub.call("DELETE", "/api/v1/tenants/shop", "", Body::empty()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().expect("message").contains("Application storefront"), "{body}");

    let developer = tokens.iter().find(|(l, _)| l == "shop-developer").map(|(_, t)| t.clone()).expect("token");
    let app = web_app("attributed", "registry.example.com/shop/web:1", Some("{clusters: [dev-eu-1]}"));
    let (status, body) = hub.call_with("POST", "/api/v1/apply", "application/yaml", app, Some(&developer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit = hub.get("/api/v1/audit?kind=Application&name=attributed").await.1;
    let created = audit["items"].as_array().expect("items").iter().find(|e| e["verb"] == "create").expect("the create event");
    assert_eq!(created["actor"], "token:shop-developer", "{audit}");
    let commit = &hub.commits("dev-eu-1")[0];
    assert_eq!(commit.author.name, "token:shop-developer", "the person or token is the author of the commit");
}

#[tokio::test]
async fn tenant_manifests_reach_the_clusters_of_its_environments_only() {
    let hub = TestHub::with_example_platform().await;
    let tenant = "apiVersion: platform.heimdall.dev/v1alpha1\nkind: Tenant\nmetadata: {name: search}\nspec:\n  environments: [dev]\n  members: [{kind: Group, name: search-devs, role: developer}]\n  quotas: {dev: {cpu: \"4\", memory: 8Gi}}\n";
    let (status, body) = hub.apply_yaml(tenant, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let folder = "heimdall.tenants/search";
    assert!(hub.state.repos.folders("dev-eu-1").expect("folders").contains(folder));
    for other in ["staging-eu-1", "prod-eu-1"] {
        assert!(!hub.state.repos.folders(other).expect("folders").contains(folder), "{other}");
    }
    let head = hub.state.repos.head("dev-eu-1").expect("head").expect("a commit");
    let files = hub.state.repos.files_at("dev-eu-1", &head, folder).expect("files");
    for file in [
        "namespace-search.yaml",
        "rolebinding-heimdall-tenant-developer.yaml",
        "resourcequota-heimdall-tenant-quota.yaml",
        "networkpolicy-heimdall-deny-ingress.yaml",
    ] {
        assert!(files.contains_key(file), "{file} missing from {:?}", files.keys().collect::<Vec<_>>());
    }
    assert!(files["rolebinding-heimdall-tenant-developer.yaml"].contains("search-devs"));

    // Moving the tenant to prod moves its manifests; deleting it removes them.
    let (status, _) =
        hub.apply_yaml(&tenant.replace("environments: [dev]", "environments: [prod]").replace("{dev: {", "{prod: {"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!hub.state.repos.folders("dev-eu-1").expect("folders").contains(folder));
    assert!(hub.state.repos.folders("prod-eu-1").expect("folders").contains(folder));
    let (status, _) = hub.call("DELETE", "/api/v1/tenants/search", "", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!hub.state.repos.folders("prod-eu-1").expect("folders").contains(folder));
}
