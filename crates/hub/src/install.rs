//! What `kubectl apply` installs on a spoke: the agent's Namespace,
//! ServiceAccount, RBAC, join-token Secret and Deployment. Pure.
//!
//! RBAC, and why each rule is there:
//! - **cluster mode** (default): a ClusterRole with every verb on every
//!   resource, because the agent applies whatever the platform renders
//!   (CRDs, Namespaces, cluster-scoped objects, any custom kind) and prunes
//!   it again. This is the same trust Argo CD's and Flux's controllers get.
//! - **namespaced mode**: the agent may only write inside the listed
//!   namespaces (a Role and RoleBinding in each); it cannot create
//!   Namespaces or CRDs, so the platform team creates those. Cluster-wide it
//!   can only read Nodes (for the facts it reports) and discovery.
//! - In both modes, in its own namespace: Secrets (its state Secret holds
//!   the hub credential, its key and its inventory) and Leases (leader
//!   election between replicas).
//! - In both modes, `impersonate` on the ServiceAccounts of
//!   `heimdall-tenants` and on no other identity: the agent applies each
//!   tenant's objects as that tenant's account there, which the tenancy
//!   renderer binds to the tenant's kinds in the tenant's namespaces only.
//!   It has no `impersonate`, `bind` or `escalate` in general; `bind` on
//!   the built-in `admin`, `edit` and `view` ClusterRoles lets it bind
//!   tenants' members to them. In cluster mode it can still write every
//!   resource, subresources such as `serviceaccounts/token` included, so it
//!   is as powerful as a cluster admin, as Argo CD's and Flux's controllers
//!   are: impersonation bounds what a tenant's objects can do, not the agent.

use serde_json::{Value, json};

pub const AGENT_NAME: &str = "heimdall-agent";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    pub cluster: String,
    pub hub_url: String,
    pub join_token: String,
    pub image: String,
    pub namespace: String,
    /// `None`: cluster-wide rights; `Some(namespaces)`: only there.
    pub namespaces: Option<Vec<String>>,
    /// PEM of the hub's CA, when its certificate is not publicly trusted.
    pub hub_ca: Option<String>,
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/part-of": "heimdall"})
}

fn everything() -> Value {
    json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]})
}

/// Binding members to the roles the tenancy renderer uses, without holding all they grant.
fn bind_member_roles() -> Value {
    json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["admin", "edit", "view"]})
}

fn discovery_and_nodes() -> Vec<Value> {
    vec![
        json!({"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/version"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}),
    ]
}

/// The manifests, in apply order.
pub fn manifests(options: &InstallOptions) -> Vec<Value> {
    let ns = &options.namespace;
    let metadata = |name: &str| json!({"name": name, "namespace": ns, "labels": labels()});
    let subject = json!([{"kind": "ServiceAccount", "name": AGENT_NAME, "namespace": ns}]);
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "app.kubernetes.io/part-of": "heimdall", "pod-security.kubernetes.io/enforce": "restricted"}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(AGENT_NAME)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(AGENT_NAME), "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch", "update"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(AGENT_NAME),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": AGENT_NAME}, "subjects": subject}),
    ];
    let identities = heimdall_api::labels::TENANT_IDENTITY_NAMESPACE;
    let impersonate = format!("{AGENT_NAME}-impersonate");
    let in_identities = json!({"name": impersonate, "namespace": identities, "labels": labels()});
    out.extend([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": identities, "labels": {
            "app.kubernetes.io/part-of": "heimdall", "pod-security.kubernetes.io/enforce": "restricted"}}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": in_identities, "rules": [
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": in_identities,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": impersonate}, "subjects": subject}),
    ]);
    let cluster_rules = match &options.namespaces {
        None => {
            let mut rules = vec![everything(), bind_member_roles()];
            rules.extend(discovery_and_nodes());
            rules
        }
        Some(_) => discovery_and_nodes(),
    };
    out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": AGENT_NAME, "labels": labels()}, "rules": cluster_rules}));
    out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": AGENT_NAME, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": AGENT_NAME}, "subjects": subject}));
    for namespace in options.namespaces.iter().flatten() {
        let name = format!("{AGENT_NAME}-apply");
        let metadata = json!({"name": name, "namespace": namespace, "labels": labels()});
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata, "rules": [everything(), bind_member_roles()]}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": subject}));
    }
    let mut secret_data = json!({"token": options.join_token});
    if let Some(ca) = &options.hub_ca {
        secret_data["hub-ca.crt"] = json!(ca);
    }
    out.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata("heimdall-agent-join"), "type": "Opaque", "stringData": secret_data}));
    let mut args = vec![
        "agent".to_string(),
        "--hub".into(),
        options.hub_url.clone(),
        "--cluster-name".into(),
        options.cluster.clone(),
        "--join-token-file".into(),
        "/etc/heimdall/join/token".into(),
    ];
    if options.hub_ca.is_some() {
        args.extend(["--hub-ca".into(), "/etc/heimdall/join/hub-ca.crt".into()]);
    }
    out.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(AGENT_NAME),
        "spec": {
            // More replicas are safe (a Lease elects the one that applies) but one is enough.
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": AGENT_NAME,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "agent",
                        "image": options.image,
                        "args": args,
                        "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "join", "mountPath": "/etc/heimdall/join", "readOnly": true}],
                    }],
                    "volumes": [{"name": "join", "secret": {"secretName": "heimdall-agent-join"}}],
                },
            },
        },
    }));
    out
}

/// The manifests as one YAML stream, with a header saying what it is.
pub fn render(options: &InstallOptions) -> String {
    let mode = match &options.namespaces {
        None => "cluster-wide rights".to_string(),
        Some(namespaces) => format!("rights only in namespaces {}", namespaces.join(", ")),
    };
    let mut out = format!(
        "# Heimdall agent for cluster {} ({mode}).\n# Apply on the spoke: kubectl apply -f <this file>. The join token inside works once.\n",
        options.cluster
    );
    for manifest in manifests(options) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&manifest).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(namespaces: Option<Vec<String>>) -> InstallOptions {
        InstallOptions {
            cluster: "eu-1".into(),
            hub_url: "https://hub.example.com".into(),
            join_token: "hdl_join".into(),
            image: "heimdall:test".into(),
            namespace: "heimdall-system".into(),
            namespaces,
            hub_ca: None,
        }
    }

    #[test]
    fn cluster_mode_grants_everything_cluster_wide() {
        let all = manifests(&options(None));
        let kinds: Vec<&str> = all.iter().filter_map(|m| m["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "Namespace",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "Secret",
                "Deployment"
            ]
        );
        let cluster_role = all.iter().find(|m| m["kind"] == "ClusterRole").expect("cluster role");
        assert_eq!(cluster_role["rules"][0]["resources"], json!(["*"]));
        let verbs: Vec<&Value> = all
            .iter()
            .filter(|m| m["kind"] == "ClusterRole" || m["kind"] == "Role")
            .flat_map(|m| m["rules"].as_array().expect("rules"))
            .flat_map(|r| r["verbs"].as_array().expect("verbs"))
            .collect();
        assert!(!verbs.contains(&&json!("*")) && !verbs.contains(&&json!("escalate")), "no verb beyond what it needs");
        let impersonation: Vec<&Value> = all
            .iter()
            .filter(|m| {
                m["rules"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["verbs"].as_array().is_some_and(|v| v.contains(&json!("impersonate")))))
            })
            .collect();
        assert_eq!(impersonation.len(), 1, "impersonation is granted once");
        assert_eq!((&impersonation[0]["kind"], &impersonation[0]["metadata"]["namespace"]), (&json!("Role"), &json!("heimdall-tenants")));
        let secret = all.iter().find(|m| m["kind"] == "Secret").expect("join secret");
        assert_eq!(secret["stringData"]["token"], "hdl_join");
        let deployment = all.iter().find(|m| m["kind"] == "Deployment").expect("deployment");
        let args = deployment.pointer("/spec/template/spec/containers/0/args").expect("args");
        assert!(args.as_array().expect("list").iter().any(|a| a == "https://hub.example.com"));
    }

    #[test]
    fn namespaced_mode_writes_only_in_the_listed_namespaces() {
        let all = manifests(&options(Some(vec!["shop".into(), "payments".into()])));
        let cluster_role = all.iter().find(|m| m["kind"] == "ClusterRole").expect("cluster role");
        let writes_anything = cluster_role["rules"].as_array().expect("rules").iter().any(|r| r["resources"] == json!(["*"]));
        assert!(!writes_anything);
        let roles: Vec<&str> = all
            .iter()
            .filter(|m| m["kind"] == "Role" && m["rules"][0]["resources"] == json!(["*"]))
            .filter_map(|m| m["metadata"]["namespace"].as_str())
            .collect();
        assert_eq!(roles, ["shop", "payments"]);
        let only_shop = options(Some(vec!["shop".into()]));
        let yaml = render(&only_shop);
        assert!(yaml.contains("rights only in namespaces shop"));
        assert_eq!(yaml.matches("---\n").count(), manifests(&only_shop).len());
    }
}
