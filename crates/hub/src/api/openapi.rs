//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{agents, apply, approve, audit, clusters, gitops, history, resources, sign_in, system, tokens};

#[derive(OpenApi)]
#[openapi(
    info(title = "Heimdall hub API", description = "Resources, apply, audit and health of a Heimdall hub, and Backstage's catalog and scaffolder APIs."),
    paths(
        system::kinds, system::healthz, system::readyz, system::metrics, system::openapi,
        apply::apply, approve::approve, audit::audit, clusters::issue_token,
        history::history, history::diff, history::rollback, gitops::rebuild, gitops::bootstrap,
        agents::join, agents::rotate, agents::desired, agents::manifests, agents::report,
        agents::issue_join_token, agents::revoke, agents::install_manifest,
        tokens::create, tokens::list, tokens::revoke, sign_in::auth_config, sign_in::whoami,
        resources::list_all, resources::list_namespaced,
        resources::get_cluster_scoped, resources::get_namespaced,
        resources::create_cluster_scoped, resources::create_namespaced,
        resources::replace_cluster_scoped, resources::replace_namespaced,
        resources::delete_cluster_scoped, resources::delete_namespaced,
        crate::api::secrets::set, crate::api::secrets::delete_key, crate::api::secrets::rotate_master_key,
        crate::api::claims::list, crate::api::claims::plan,
        crate::api::catalog::by_query, crate::api::catalog::by_predicate, crate::api::catalog::entities, crate::api::catalog::by_name,
        crate::api::catalog::by_uid, crate::api::catalog::delete_by_uid, crate::api::catalog::by_refs, crate::api::catalog::facets,
        crate::api::catalog::validate_entity, crate::api::locations::list, crate::api::locations::get,
        crate::api::locations::create, crate::api::locations::delete, crate::api::locations::refresh,
        crate::api::scaffolder::create, crate::api::scaffolder::get, crate::api::scaffolder::list, crate::api::scaffolder::events,
        crate::api::scaffolder::eventstream, crate::api::scaffolder::list_actions, crate::api::scaffolder::parameter_schema,
        crate::api::scaffolder::dry_run,
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
