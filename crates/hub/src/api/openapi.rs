//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{agents, apply, approve, audit, clusters, gitops, history, resources, system, tokens};
use crate::identity;

#[derive(OpenApi)]
#[openapi(
    info(title = "Heimdall hub API", description = "Resources, apply, audit and health of a Heimdall hub, and Backstage's catalog and scaffolder APIs."),
    paths(
        system::kinds, system::healthz, system::readyz, system::metrics, system::openapi,
        apply::apply, approve::approve, audit::audit, clusters::issue_token,
        history::history, history::diff, history::rollback, gitops::rebuild, gitops::bootstrap,
        agents::join, agents::rotate, agents::desired, agents::manifests, agents::report,
        agents::issue_join_token, agents::revoke, agents::install_manifest,
        tokens::create, tokens::list, tokens::revoke, identity::auth_config, identity::whoami,
        resources::list_all, resources::list_namespaced,
        resources::get_cluster_scoped, resources::get_namespaced,
        resources::create_cluster_scoped, resources::create_namespaced,
        resources::replace_cluster_scoped, resources::replace_namespaced,
        resources::delete_cluster_scoped, resources::delete_namespaced,
        crate::api::secrets::set, crate::api::secrets::delete_key, crate::api::secrets::rotate_master_key,
        crate::api::claims::list, crate::api::claims::plan,
        crate::catalog::by_query, crate::catalog::by_predicate, crate::catalog::entities, crate::catalog::by_name,
        crate::catalog::by_uid, crate::catalog::delete_by_uid, crate::catalog::by_refs, crate::catalog::facets,
        crate::catalog::validate_entity, crate::catalog::locations::list, crate::catalog::locations::get,
        crate::catalog::locations::create, crate::catalog::locations::delete, crate::catalog::locations::refresh,
        crate::scaffolder::create, crate::scaffolder::get, crate::scaffolder::list, crate::scaffolder::events,
        crate::scaffolder::eventstream, crate::scaffolder::list_actions, crate::scaffolder::parameter_schema,
        crate::scaffolder::dry_run,
    ),
    components(schemas(heimdall_store::WatchEvent)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}
