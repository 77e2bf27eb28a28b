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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_identity_is_a_service_account_username() {
        assert_eq!(tenant_identity("shop"), "system:serviceaccount:heimdall-tenants:shop");
    }
}
