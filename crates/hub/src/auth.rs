//! Authentication and authorization, in one place for every API route.
//!
//! A request is made by a [`Principal`]: a Heimdall API token (`hdl_...`,
//! checked against its stored hash), a person signed in with the
//! organization's identity provider (an OIDC bearer token, or the portal's
//! session cookie), or the hub itself. Every principal ends up with the
//! same thing: a list of [`Role`]s.
//!
//! What a request needs is decided here and nowhere else: [`route_need`]
//! maps each route to a [`Need`] for the middleware, and
//! [`document_need`] maps each document of a write to one for admission
//! (a batch apply touches many tenants at once). [`require`] compares the
//! two and answers with a 403 that names the missing permission.

use std::collections::HashMap;

use axum::http::Method;
use heimdall_model::spec::tenant::TenantRole;
use heimdall_model::{Resource, ResourceKey};

use heimdall_store::StoreError;

use crate::state::AppState;

/// A refusal: the message names who was refused and what they hold;
/// `permission` names what was missing, when one permission was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub message: String,
    pub permission: Option<String>,
}

impl Denied {
    /// Names the document of a write that was refused.
    pub fn in_document(mut self, document: &str) -> Self {
        self.message = format!("{document}: {}", self.message);
        self
    }

    /// Adds what the refused person can do instead.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.message.push_str("; ");
        self.message.push_str(hint);
        self
    }
}

/// Why a principal was not authorized: refused, or its records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a principal may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// May do everything.
    PlatformAdmin,
    /// A role in one tenant.
    Tenant { tenant: String, role: TenantRole },
    /// May only read this cluster's repository (an agent's, Argo CD's or Flux's
    /// token); the agent's own credential may also use the agent API.
    Cluster(String),
}

impl Role {
    pub const PLATFORM_ADMIN: &'static str = "platform-admin";

    /// Parses a stored token role: `platform-admin`, `cluster:<c>`, `tenant:<t>:<role>`.
    pub fn parse(role: &str) -> Option<Role> {
        if role == Self::PLATFORM_ADMIN {
            return Some(Role::PlatformAdmin);
        }
        if let Some(cluster) = role.strip_prefix("cluster:") {
            return (!cluster.is_empty()).then(|| Role::Cluster(cluster.to_string()));
        }
        let (tenant, role) = role.strip_prefix("tenant:")?.split_once(':')?;
        Some(Role::Tenant { tenant: tenant.to_string(), role: TenantRole::parse(role)? })
    }

    pub fn cluster(name: &str) -> String {
        format!("cluster:{name}")
    }

    pub fn tenant(tenant: &str, role: TenantRole) -> String {
        format!("tenant:{tenant}:{}", role.as_str())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::PlatformAdmin => f.write_str("platform-admin"),
            Role::Tenant { tenant, role } => write!(f, "{} of tenant {tenant}", role.as_str()),
            Role::Cluster(cluster) => write!(f, "cluster {cluster}"),
        }
    }
}

/// Who is making a request. `name` is what the audit trail records and
/// what git commits are authored by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
    /// Identity-provider groups (people only).
    pub groups: Vec<String>,
}

impl Principal {
    /// The principal a write made on `self`'s behalf runs as, once `self`
    /// was checked for it (the scaffolder registering a person's catalog
    /// file): the platform's rights, `self`'s name in the audit trail.
    pub fn on_behalf_of(&self) -> Principal {
        Principal { name: self.name.clone(), roles: vec![Role::PlatformAdmin], groups: Vec::new() }
    }

    /// The hub acting for itself (loading examples at start, say).
    pub fn system(name: &str) -> Principal {
        Principal { name: name.to_string(), roles: vec![Role::PlatformAdmin], groups: Vec::new() }
    }

    pub fn is_platform_admin(&self) -> bool {
        self.roles.contains(&Role::PlatformAdmin)
    }

    /// The principal's strongest role in `tenant`.
    pub fn role_in(&self, tenant: &str) -> Option<TenantRole> {
        self.roles
            .iter()
            .filter_map(|r| match r {
                Role::Tenant { tenant: t, role } if t == tenant => Some(*role),
                _ => None,
            })
            .max()
    }

    /// The cluster whose token this is, if it is one.
    pub fn cluster(&self) -> Option<&str> {
        self.roles.iter().find_map(|r| match r {
            Role::Cluster(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Whether the principal may see `resource` (lists show only these).
    pub fn may_read(&self, resource: &Resource) -> bool {
        self.is_platform_admin()
            || match (resource.kind.as_str(), resource.metadata.namespace.as_deref()) {
                (_, Some(namespace)) if !namespace.is_empty() => self.role_in(namespace).is_some(),
                ("Tenant", _) => self.role_in(&resource.metadata.name).is_some(),
                _ => self.cluster().is_none(),
            }
    }

    fn describe_roles(&self) -> String {
        if self.roles.is_empty() {
            return "no role".to_string();
        }
        self.roles.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// What a request (or one document of it) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any person or API token (not a cluster's token). Handlers show such a
    /// principal only what [`Principal::may_read`] allows.
    Anyone,
    /// The platform-admin role; the string names the permission.
    PlatformAdmin(String),
    /// At least `role` in `tenant`.
    Tenant { tenant: String, role: TenantRole, permission: String },
    /// A cluster's agent credential (the agent API checks which cluster).
    Agent,
    /// A route without a rule: refused to everyone, so a new route cannot
    /// be reachable by accident.
    Nothing(String),
}

impl Need {
    fn tenant(tenant: &str, role: TenantRole, permission: impl Into<String>) -> Need {
        Need::Tenant { tenant: tenant.to_string(), role, permission: permission.into() }
    }

    // What operations need that are not one route: a scaffolder action runs
    // inside a task, a token's rights depend on the role it carries.

    /// Creating a service repository of `tenant` (the scaffolder's `publish:heimdall`).
    pub fn publish_repository(tenant: &str) -> Need {
        Need::tenant(tenant, TenantRole::Developer, "repositories:create")
    }

    /// Registering, as a catalog location, a file of one of `tenant`'s service repositories.
    pub fn register_tenant_location(tenant: &str) -> Need {
        Need::tenant(tenant, TenantRole::Developer, "catalog:register")
    }

    /// Registering a catalog location anywhere else (the hub will fetch it).
    pub fn register_external_location() -> Need {
        Need::PlatformAdmin("catalog:register-external".into())
    }

    /// Dry-running a template sent whole: it is code the hub runs, so its authors are the platform team.
    pub fn dry_run_any_template() -> Need {
        Need::PlatformAdmin("scaffolder:dry-run-any-template".into())
    }

    /// Rotating the master key of secrets at rest.
    pub fn rotate_master_key() -> Need {
        Need::PlatformAdmin("secrets:rotate-master-key".into())
    }

    /// Deleting a Tenant: its owners manage its members, only the platform team removes it.
    pub fn delete_tenant() -> Need {
        Need::PlatformAdmin("tenants:delete".into())
    }

    /// Creating, listing or revoking a token that carries the stored `role`:
    /// a tenant's owners manage its tokens, the platform team every other.
    pub fn manage_token(role: &str, permission: &str) -> Need {
        match Role::parse(role) {
            Some(Role::Tenant { tenant, .. }) => Need::tenant(&tenant, TenantRole::Owner, permission),
            _ => Need::PlatformAdmin(permission.into()),
        }
    }
}

/// Decides; a denial names the permission that was missing.
pub fn require(principal: &Principal, need: &Need) -> Result<(), Denied> {
    let (allowed, permission) = match need {
        Need::Anyone => (principal.cluster().is_none() || principal.is_platform_admin(), "api:use".to_string()),
        Need::PlatformAdmin(permission) => (principal.is_platform_admin(), permission.clone()),
        Need::Tenant { tenant, role, permission } => (
            principal.is_platform_admin() || principal.role_in(tenant).is_some_and(|held| held >= *role),
            format!("{permission} in tenant {tenant} (needs {} or more)", role.as_str()),
        ),
        Need::Agent => (principal.cluster().is_some(), "agent:use".to_string()),
        Need::Nothing(route) => (false, format!("{route} (no rule grants it)")),
    };
    if allowed { Ok(()) } else { Err(denied(principal, permission)) }
}

/// The refusal for a missing permission.
fn denied(principal: &Principal, permission: String) -> Denied {
    Denied {
        message: format!(
            "{} may not do this: missing permission {permission}; {} has: {}",
            principal.name,
            principal.name,
            principal.describe_roles()
        ),
        permission: Some(permission),
    }
}

fn plural_kind(plural: &str) -> Option<&'static heimdall_model::kinds::KindInfo> {
    heimdall_model::kinds::KINDS.iter().find(|k| k.plural == plural)
}

/// The need of each route. `params` are the route's path parameters.
pub fn route_need(method: &Method, route: &str, params: &HashMap<String, String>) -> Need {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let read = method == Method::GET;
    if route.starts_with("/api/v1/agent/") {
        return Need::Agent;
    }
    match route {
        "/api/v1/kinds" | "/api/v1/auth/whoami" => Need::Anyone,
        // The software catalog is the organization's directory: every signed-in person reads it.
        "/api/catalog/entities/by-query"
        | "/api/catalog/entities"
        | "/api/catalog/entities/by-name/{kind}/{namespace}/{name}"
        | "/api/catalog/entities/by-refs"
        | "/api/catalog/entity-facets"
        | "/api/catalog/validate-entity"
        | "/api/catalog/refresh" => Need::Anyone,
        "/api/catalog/locations" | "/api/catalog/locations/{id}" if read => Need::Anyone,
        "/api/catalog/entities/by-uid/{uid}" if read => Need::Anyone,
        "/api/catalog/entities/by-uid/{uid}" => Need::PlatformAdmin("catalog:delete-entity".into()),
        // Templates are for everyone; what a task's actions do is checked as the person's own request.
        "/api/scaffolder/v2/actions"
        | "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema"
        | "/api/scaffolder/v2/tasks"
        | "/api/scaffolder/v2/tasks/{id}"
        | "/api/scaffolder/v2/tasks/{id}/events"
        | "/api/scaffolder/v2/tasks/{id}/eventstream"
        | "/api/scaffolder/v2/dry-run" => Need::Anyone,
        // Registering is a document write (a CatalogLocation): admission decides.
        "/api/catalog/locations" | "/api/catalog/locations/{id}" => Need::Anyone,
        // Each document, token or list item is checked on its own.
        "/api/v1/apply" | "/api/v1/tokens" | "/api/v1/tokens/{name}" => Need::Anyone,
        "/api/v1/audit" => Need::PlatformAdmin("audit:read".into()),
        "/api/v1/{plural}" if read => Need::Anyone,
        // Creating through the collection URL: the document decides (admission).
        "/api/v1/{plural}" => Need::Anyone,
        "/api/v1/{plural}/{name}" => match (plural_kind(param("plural")).map(|k| k.kind), read) {
            (Some("Tenant"), true) => Need::tenant(param("name"), TenantRole::Viewer, "tenants:read"),
            // An owner may change the members only; admission checks the rest.
            (Some("Tenant"), false) if method == Method::PUT => Need::tenant(param("name"), TenantRole::Owner, "tenants:update-members"),
            (_, true) => Need::Anyone,
            (_, false) => Need::PlatformAdmin(format!("{}:write", param("plural"))),
        },
        "/api/v1/namespaces/{namespace}/{plural}" | "/api/v1/namespaces/{namespace}/{plural}/{name}" => {
            let permission = format!("{}:{}", param("plural"), if read { "read" } else { "write" });
            Need::tenant(param("namespace"), if read { TenantRole::Viewer } else { TenantRole::Developer }, permission)
        }
        "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}" => {
            let permission = if method == Method::DELETE { "secrets:delete" } else { "secrets:set" };
            Need::tenant(param("namespace"), TenantRole::Developer, permission)
        }
        "/api/v1/secrets/rotate-master-key" => Need::PlatformAdmin("secrets:rotate-master-key".into()),
        "/api/v1/namespaces/{namespace}/claim-instances" => Need::tenant(param("namespace"), TenantRole::Viewer, "claims:read"),
        // A plan changes nothing; it shows what a ClaimMigration (a document write) would do.
        "/api/v1/namespaces/{namespace}/claims/{name}/plan" => Need::tenant(param("namespace"), TenantRole::Viewer, "claims:plan"),
        "/api/v1/namespaces/{namespace}/applications/{name}/history" | "/api/v1/namespaces/{namespace}/applications/{name}/diff" => {
            Need::tenant(param("namespace"), TenantRole::Viewer, "applications:history")
        }
        "/api/v1/namespaces/{namespace}/applications/{name}/rollback" => {
            Need::tenant(param("namespace"), TenantRole::Developer, "applications:rollback")
        }
        "/api/v1/namespaces/{namespace}/applications/{name}/approve" => {
            Need::tenant(param("namespace"), TenantRole::Developer, "applications:approve")
        }
        "/api/v1/clusters/{name}/tokens"
        | "/api/v1/clusters/{name}/join-tokens"
        | "/api/v1/clusters/{name}/revoke"
        | "/api/v1/clusters/{name}/install-manifest"
        | "/api/v1/clusters/{name}/rebuild"
        | "/api/v1/clusters/{name}/bootstrap" => Need::PlatformAdmin(format!("clusters:{}", route.rsplit('/').next().unwrap_or_default())),
        other => Need::Nothing(format!("{method} {other}")),
    }
}

/// The need of writing (or deleting) one document.
pub fn document_need(key: &ResourceKey) -> Need {
    let plural = heimdall_model::kinds::by_kind(&key.kind).map_or_else(|| key.kind.to_ascii_lowercase(), |k| k.plural.to_string());
    match key.kind.as_str() {
        _ if !key.namespace.is_empty() => Need::tenant(&key.namespace, TenantRole::Developer, format!("{plural}:write")),
        "Tenant" => Need::tenant(&key.name, TenantRole::Owner, "tenants:update-members"),
        _ => Need::PlatformAdmin(format!("{plural}:write")),
    }
}

/// Checks every document of a write. A tenant owner (not a platform admin)
/// may change only the members of an existing tenant.
pub async fn authorize_documents(state: &AppState, principal: &Principal, batch: &[(String, Resource)]) -> Result<(), AuthorizeError> {
    for (source, resource) in batch {
        let key = resource.key();
        require(principal, &document_need(&key)).map_err(|e| e.in_document(source))?;
        if resource.kind == "Tenant" && !principal.is_platform_admin() {
            let stored = match state.store.get(&key).await {
                Ok(stored) => stored,
                Err(heimdall_store::StoreError::NotFound { .. }) => {
                    return Err(denied(principal, "tenants:create".into()).in_document(source).into());
                }
                Err(e) => return Err(e.into()),
            };
            let without_members = |spec: &serde_json::Value| {
                let mut spec = spec.clone();
                if let Some(object) = spec.as_object_mut() {
                    object.remove("members");
                }
                spec
            };
            if without_members(&stored.spec) != without_members(&resource.spec)
                || stored.metadata.labels != resource.metadata.labels
                || stored.metadata.annotations != resource.metadata.annotations
            {
                let error = denied(principal, "tenants:write".into()).in_document(source);
                return Err(error.with_hint("a tenant's owners may change its members only").into());
            }
        }
    }
    Ok(())
}

/// Whether `principal` may read (clone, fetch, raw files) `tenant`'s service repositories.
pub fn may_read_service_repository(principal: &Principal, tenant: &str) -> bool {
    principal.is_platform_admin() || principal.role_in(tenant).is_some()
}

/// Whether `principal` may see a scaffolder task that `created_by` started:
/// a task is its creator's (and the platform team's) to see.
pub fn may_see_task(principal: &Principal, created_by: &str) -> bool {
    principal.is_platform_admin() || created_by == principal.name
}

/// Whether `principal` may name a namespace that no Tenant has: such a
/// namespace belongs to the platform team.
pub fn may_use_namespace_without_tenant(principal: &Principal) -> bool {
    principal.is_platform_admin()
}

/// The tenant role a write's objects are confined to when `writer` wrote
/// them into `namespace`: none for the platform team, whose objects are not
/// a tenant's.
pub fn confinement_of(writer: &Principal, namespace: &str) -> Option<TenantRole> {
    if writer.is_platform_admin() { None } else { writer.role_in(namespace) }
}

/// Whether `principal` may read cluster `cluster`'s repository. Tenants
/// share clusters, so tenant roles never read whole repositories.
pub fn may_read_repository(principal: &Principal, cluster: &str) -> bool {
    principal.is_platform_admin() || principal.cluster() == Some(cluster)
}

/// The principal of a stored token's record. A role in a tenant that does
/// not exist (any more) grants nothing: a token outliving its tenant must
/// not write into the namespace, which would then be the platform team's.
pub fn principal_of_token(state: &AppState, info: heimdall_store::TokenInfo) -> Result<Principal, Denied> {
    let role = Role::parse(&info.role).ok_or_else(|| Denied {
        message: format!("token {:?} has role {:?}, which grants nothing", info.name, info.role),
        permission: None,
    })?;
    let roles = match &role {
        Role::Tenant { tenant, .. } if state.rendering.platform().tenant(tenant).is_none() => Vec::new(),
        _ => vec![role],
    };
    Ok(Principal { name: info.name, roles, groups: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(roles: Vec<Role>) -> Principal {
        Principal { name: "alice".into(), roles, groups: Vec::new() }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn stored_roles_parse() {
        assert_eq!(Role::parse("platform-admin"), Some(Role::PlatformAdmin));
        assert_eq!(Role::parse("cluster:eu-1"), Some(Role::Cluster("eu-1".into())));
        assert_eq!(Role::parse("tenant:shop:developer"), Some(Role::Tenant { tenant: "shop".into(), role: TenantRole::Developer }));
        assert_eq!(
            Role::parse(&Role::tenant("shop", TenantRole::Owner)),
            Some(Role::Tenant { tenant: "shop".into(), role: TenantRole::Owner })
        );
        for nothing in ["", "cluster:", "tenant:shop", "tenant:shop:god", "admin"] {
            assert_eq!(Role::parse(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn tenant_roles_are_ordered_and_scoped() {
        let developer = person(vec![Role::Tenant { tenant: "shop".into(), role: TenantRole::Developer }]);
        let write = route_need(
            &Method::PUT,
            "/api/v1/namespaces/{namespace}/{plural}/{name}",
            &params(&[("namespace", "shop"), ("plural", "applications")]),
        );
        assert!(require(&developer, &write).is_ok());
        let elsewhere = route_need(
            &Method::GET,
            "/api/v1/namespaces/{namespace}/{plural}",
            &params(&[("namespace", "payments"), ("plural", "applications")]),
        );
        let denied = require(&developer, &elsewhere).expect_err("payments is not alice's");
        assert_eq!(crate::error::ApiError::from(denied.clone()).status, 403, "a denial is a 403");
        assert_eq!(denied.permission.as_deref(), Some("applications:read in tenant payments (needs viewer or more)"));
        let viewer = person(vec![Role::Tenant { tenant: "shop".into(), role: TenantRole::Viewer }]);
        assert!(require(&viewer, &write).is_err(), "a viewer reads only");
        let admin = person(vec![Role::PlatformAdmin]);
        assert!(require(&admin, &elsewhere).is_ok());
    }

    #[test]
    fn routes_without_a_rule_are_refused_even_to_admins() {
        let admin = person(vec![Role::PlatformAdmin]);
        let need = route_need(&Method::GET, "/api/v1/something-new", &HashMap::new());
        assert!(require(&admin, &need).is_err());
    }

    #[test]
    fn cluster_tokens_use_the_agent_api_only() {
        let cluster = person(vec![Role::Cluster("eu-1".into())]);
        assert!(require(&cluster, &route_need(&Method::GET, "/api/v1/agent/desired", &HashMap::new())).is_ok());
        assert!(require(&cluster, &route_need(&Method::GET, "/api/v1/kinds", &HashMap::new())).is_err());
        assert!(may_read_repository(&cluster, "eu-1") && !may_read_repository(&cluster, "eu-2"));
        let owner = person(vec![Role::Tenant { tenant: "shop".into(), role: TenantRole::Owner }]);
        assert!(!may_read_repository(&owner, "eu-1"), "repositories hold every tenant's manifests");
    }
}
