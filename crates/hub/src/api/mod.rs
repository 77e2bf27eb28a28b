//! The REST API. Shape (documented in docs/api.md and served as OpenAPI at
//! `/api/openapi.json`):
//!
//! - `GET  /api/v1/kinds`: the kinds the hub stores
//! - `POST /api/v1/apply`: create-or-update many documents at once
//! - `GET  /api/v1/audit`: the audit trail
//! - cluster-scoped kinds: `/api/v1/{plural}` and `/api/v1/{plural}/{name}`
//! - namespaced kinds: `/api/v1/namespaces/{namespace}/{plural}[/{name}]`, and
//!   `GET /api/v1/{plural}` across all namespaces

pub mod agents;
pub mod apply;
pub mod approve;
pub mod audit;
pub mod body;
pub mod catalog;
pub mod claims;
pub mod clusters;
pub mod gitops;
pub mod history;
pub mod locations;
pub mod openapi;
pub mod resources;
pub mod scaffolder;
pub mod secrets;
pub mod sign_in;
pub mod system;
pub mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub use heimdall_api::url_encode;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/kinds", get(system::kinds))
        .route("/api/v1/auth/whoami", get(crate::api::sign_in::whoami))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{name}", axum::routing::delete(tokens::revoke))
        .route(
            "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}",
            axum::routing::put(crate::api::secrets::set).delete(crate::api::secrets::delete_key),
        )
        .route("/api/v1/secrets/rotate-master-key", post(crate::api::secrets::rotate_master_key))
        .route("/api/v1/namespaces/{namespace}/claim-instances", get(crate::api::claims::list))
        .route("/api/v1/namespaces/{namespace}/claims/{name}/plan", post(crate::api::claims::plan))
        .route("/api/catalog/entities/by-query", get(crate::api::catalog::by_query).post(crate::api::catalog::by_predicate))
        .route("/api/catalog/entities", get(crate::api::catalog::entities))
        .route("/api/catalog/entities/by-name/{kind}/{namespace}/{name}", get(crate::api::catalog::by_name))
        .route("/api/catalog/entities/by-refs", post(crate::api::catalog::by_refs))
        .route("/api/catalog/entities/by-uid/{uid}", get(crate::api::catalog::by_uid).delete(crate::api::catalog::delete_by_uid))
        .route("/api/catalog/entity-facets", get(crate::api::catalog::facets))
        .route("/api/catalog/validate-entity", post(crate::api::catalog::validate_entity))
        .route("/api/catalog/locations", get(crate::api::locations::list).post(crate::api::locations::create))
        .route("/api/catalog/locations/{id}", get(crate::api::locations::get).delete(crate::api::locations::delete))
        .route("/api/catalog/refresh", post(crate::api::locations::refresh))
        .route("/api/scaffolder/v2/actions", get(crate::api::scaffolder::list_actions))
        .route("/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema", get(crate::api::scaffolder::parameter_schema))
        .route("/api/scaffolder/v2/tasks", get(crate::api::scaffolder::list).post(crate::api::scaffolder::create))
        .route("/api/scaffolder/v2/tasks/{id}", get(crate::api::scaffolder::get))
        .route("/api/scaffolder/v2/tasks/{id}/events", get(crate::api::scaffolder::events))
        .route("/api/scaffolder/v2/tasks/{id}/eventstream", get(crate::api::scaffolder::eventstream))
        .route("/api/scaffolder/v2/dry-run", post(crate::api::scaffolder::dry_run))
        .route("/api/v1/apply", post(apply::apply))
        .route("/api/v1/audit", get(audit::audit))
        .route("/api/v1/{plural}", get(resources::list_all).post(resources::create_cluster_scoped))
        .route(
            "/api/v1/{plural}/{name}",
            get(resources::get_cluster_scoped).put(resources::replace_cluster_scoped).delete(resources::delete_cluster_scoped),
        )
        .route("/api/v1/namespaces/{namespace}/{plural}", get(resources::list_namespaced).post(resources::create_namespaced))
        .route(
            "/api/v1/namespaces/{namespace}/{plural}/{name}",
            get(resources::get_namespaced).put(resources::replace_namespaced).delete(resources::delete_namespaced),
        )
        .route("/api/v1/namespaces/{namespace}/applications/{name}/approve", post(approve::approve))
        .route("/api/v1/clusters/{name}/tokens", post(clusters::issue_token))
        .route("/api/v1/clusters/{name}/join-tokens", post(agents::issue_join_token))
        .route("/api/v1/clusters/{name}/revoke", post(agents::revoke))
        .route("/api/v1/clusters/{name}/install-manifest", post(agents::install_manifest))
        .route("/api/v1/agent/rotate", post(agents::rotate))
        .route("/api/v1/agent/desired", get(agents::desired))
        .route("/api/v1/agent/manifests", get(agents::manifests))
        .route("/api/v1/agent/report", post(agents::report))
        .route("/api/v1/clusters/{name}/rebuild", post(gitops::rebuild))
        .route("/api/v1/clusters/{name}/bootstrap", post(gitops::bootstrap))
        .route("/api/v1/namespaces/{namespace}/applications/{name}/history", get(history::history))
        .route("/api/v1/namespaces/{namespace}/applications/{name}/diff", get(history::diff))
        .route("/api/v1/namespaces/{namespace}/applications/{name}/rollback", post(history::rollback))
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::authentication::require_principal));

    // Joining authenticates with the join token in the body.
    let join = Router::new().route("/api/v1/agent/join", post(agents::join));
    // The git routes authenticate themselves: git needs a Basic challenge, not a bearer 401.
    let git = Router::new()
        .route("/git/clusters/{repo}/info/refs", get(crate::git::info_refs))
        .route("/git/clusters/{repo}/git-upload-pack", post(crate::git::upload_pack))
        .route("/git/clusters/{repo}/git-receive-pack", post(crate::git::receive_pack))
        .route("/git/services/{tenant}/{repo}/info/refs", get(crate::git::service_info_refs))
        .route("/git/services/{tenant}/{repo}/git-upload-pack", post(crate::git::service_upload_pack))
        .route("/git/services/{tenant}/{repo}/git-receive-pack", post(crate::git::receive_pack))
        .route("/git/services/{tenant}/{repo}/raw/{*file}", get(crate::git::service_raw));

    // Sign-in: the provider redirects browsers here without credentials.
    let sign_in = Router::new()
        .route("/api/v1/auth/config", get(crate::api::sign_in::auth_config))
        .route("/auth/login", get(crate::api::sign_in::login))
        .route("/auth/callback", get(crate::api::sign_in::callback))
        .route("/auth/logout", post(crate::api::sign_in::logout));

    let open = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/openapi.json", get(system::openapi));

    api.merge(open)
        .merge(crate::portal::router())
        .merge(join)
        .merge(git)
        .merge(sign_in)
        .fallback(system::not_found)
        .layer(middleware::from_fn(crate::web::client_address))
        .layer(middleware::from_fn(agents::announce_protocol))
        .layer(middleware::from_fn(crate::web::api_error_shape))
        .layer(middleware::from_fn_with_state(state.clone(), crate::web::security_headers))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track))
        .layer(DefaultBodyLimit::max(crate::web::MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_encoded() {
        assert_eq!(super::url_encode("/catalog?q=a b&c"), "/catalog%3Fq%3Da%20b%26c");
        assert_eq!(super::url_encode("app.kubernetes.io/name in (a,b)"), "app.kubernetes.io/name%20in%20%28a%2Cb%29");
    }
}
