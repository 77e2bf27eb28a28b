//! Well-known labels, annotations and names in cluster repositories.

/// Every object Heimdall renders carries this label; the agent lists and
/// prunes only objects that do.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "heimdall");

/// Which identity the agent applies an object with: [`APPLY_AS_TENANT`]
/// (the tenant that owns the object's folder, impersonated) or
/// [`APPLY_AS_PLATFORM`] (the agent's own rights: tenant scaffolding,
/// capability compositions, the platform team's applications). Written by
/// the renderer on every object, over anything the object said itself.
pub const APPLY_AS: &str = "heimdall.dev/apply-as";
pub const APPLY_AS_TENANT: &str = "tenant";
pub const APPLY_AS_PLATFORM: &str = "platform";

/// The folder of a cluster repository that holds the tenants' own
/// manifests (`heimdall.tenants/<tenant>`): platform content, applied with
/// the agent's rights. A dot never appears in a namespace, so no
/// application folder collides with it.
pub const TENANTS_FOLDER: &str = "heimdall.tenants";

/// The namespace of the ServiceAccounts the agent impersonates to apply a
/// tenant's objects: one per tenant, named as the tenant, bound only in the
/// tenant's namespaces. The install manifest lets the agent impersonate
/// ServiceAccounts of this namespace and no other identity.
pub const TENANT_IDENTITY_NAMESPACE: &str = "heimdall-tenants";

/// The Kubernetes username of a tenant's identity, as `Impersonate-User` sends it.
pub fn tenant_identity(tenant: &str) -> String {
    format!("system:serviceaccount:{TENANT_IDENTITY_NAMESPACE}:{tenant}")
}

/// The name of the Role (and RoleBinding) that grants a tenant's identity
/// its rights in each of the tenant's namespaces.
pub const TENANT_APPLY_ROLE: &str = "heimdall-tenant-apply";

// Labels the renderer writes on every object of an application, and the
// agent and the hub select by.

/// The application an object belongs to (its name).
pub const APP: &str = "heimdall.dev/app";
/// The tenant (hub namespace) an object belongs to; the agent cross-checks
/// it against the folder it came from.
pub const TENANT: &str = "heimdall.dev/tenant";
/// The environment an object was rendered for.
pub const ENVIRONMENT: &str = "heimdall.dev/environment";
/// KubeVela's labels, as `vela` writes them.
pub const OAM_NAME: &str = "app.oam.dev/name";
pub const OAM_NAMESPACE: &str = "app.oam.dev/namespace";
pub const OAM_COMPONENT: &str = "app.oam.dev/component";
pub const OAM_REVISION: &str = "app.oam.dev/revision";

// Annotations: the renderer's hints to the agent (set by traits and
// definitions, or by the object itself).

/// What rendered the object (`Tenant shop`), for people reading the repository.
pub const SOURCE: &str = "heimdall.dev/source";
/// Apply order: lower waves first, each healthy before the next.
pub const WAVE: &str = "heimdall.dev/wave";
/// `never`: the agent does not prune the object.
pub const GC: &str = "heimdall.dev/gc";
/// `true`, or field paths the agent sets once and then leaves alone.
pub const APPLY_ONCE: &str = "heimdall.dev/apply-once";
/// `true`: the agent may take over an existing object that is not Heimdall's.
pub const TAKE_OVER: &str = "heimdall.dev/take-over";
/// `true`: an object several applications declare (taken over like [`TAKE_OVER`]).
pub const SHARED: &str = "heimdall.dev/shared";
/// `true`: the agent only checks the object exists and reports its health.
pub const READ_ONLY: &str = "heimdall.dev/read-only";
/// Immutable field paths whose change makes the agent delete and re-create.
pub const RECREATE_FIELDS: &str = "heimdall.dev/recreate-fields";
/// Set by the agent on what it creates itself (namespaces it ensures).
pub const CREATED_BY: &str = "heimdall.dev/created-by";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_identity_is_a_service_account_username() {
        assert_eq!(tenant_identity("shop"), "system:serviceaccount:heimdall-tenants:shop");
    }
}
