//! Authentication, impersonation and RBAC as the real API server does them,
//! for the rules Heimdall's tests use:
//!
//! - a bearer token names a user and its groups ([`super::FakeKube::add_token`]);
//!   [`super::TOKEN`] is a member of `system:masters`, which RBAC never refuses;
//! - `Impersonate-User` (and `-Group`, `-Uid`) needs the `impersonate` verb on
//!   `serviceaccounts` (for `system:serviceaccount:NS:NAME`, in `NS`), `users`,
//!   `groups` or `uids`; an impersonated service account gets the groups
//!   `system:serviceaccounts`, `system:serviceaccounts:NS` and
//!   `system:authenticated`, as the real impersonation filter gives them;
//! - every request is authorized against the stored Roles, ClusterRoles,
//!   RoleBindings and ClusterRoleBindings (verbs, API groups, resources,
//!   subresources, resource names, non-resource URLs, `*`);
//! - writing a Role or ClusterRole needs `escalate` or holding every
//!   permission it grants; writing a binding needs `bind` on its role or
//!   holding every permission of the role, in the binding's scope;
//! - refusals are `Status` 403s worded as the real server words them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ObjectKey, Stored};

pub(super) const MASTERS: &str = "system:masters";
const AUTHENTICATED: &str = "system:authenticated";
const RBAC: &str = "rbac.authorization.k8s.io";

/// Who a request is made by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: &str, groups: &[&str]) -> UserInfo {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        UserInfo { name: name.to_string(), groups }
    }

    /// A service account's user, with the groups the API server gives it.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo::new(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &["system:serviceaccounts", &format!("system:serviceaccounts:{namespace}")],
        )
    }
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct Attributes {
    pub(super) verb: String,
    pub(super) group: String,
    pub(super) resource: String,
    pub(super) subresource: String,
    pub(super) namespace: String,
    pub name: String,
    /// For a non-resource request (`/version`, `/apis`): its path.
    pub(super) path: Option<String>,
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value.get(field).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

fn stored<'a>(objects: &'a BTreeMap<ObjectKey, Stored>, plural: &str, namespace: &str, name: &str) -> Option<&'a Value> {
    objects.get(&(RBAC.to_string(), plural.to_string(), namespace.to_string(), name.to_string())).map(|s| &s.object)
}

fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let field = |f: &str| subject.get(f).and_then(Value::as_str).unwrap_or_default();
    match field("kind") {
        "User" => field("name") == user.name,
        "Group" => user.groups.iter().any(|g| g == field("name")),
        "ServiceAccount" => {
            let namespace = if field("namespace").is_empty() { binding_namespace } else { field("namespace") };
            user.name == format!("system:serviceaccount:{namespace}:{}", field("name"))
        }
        _ => false,
    }
}

/// The rules `user` holds in `namespace` (`""`: cluster-wide rules only).
pub(super) fn rules_of(objects: &BTreeMap<ObjectKey, Stored>, user: &UserInfo, namespace: &str) -> Vec<Value> {
    let mut rules = Vec::new();
    let mut add_role = |role: Option<&Value>| {
        if let Some(role) = role {
            rules.extend(role.get("rules").and_then(Value::as_array).cloned().unwrap_or_default());
        }
    };
    for ((group, plural, binding_namespace, _), binding) in objects {
        if group != RBAC
            || !(plural == "clusterrolebindings" || (plural == "rolebindings" && !namespace.is_empty() && binding_namespace == namespace))
        {
            continue;
        }
        let binding = &binding.object;
        let subjects = binding.get("subjects").and_then(Value::as_array).cloned().unwrap_or_default();
        if !subjects.iter().any(|s| subject_matches(s, user, binding_namespace)) {
            continue;
        }
        let role_ref = |f: &str| binding.pointer(&format!("/roleRef/{f}")).and_then(Value::as_str).unwrap_or_default();
        match role_ref("kind") {
            "ClusterRole" => add_role(stored(objects, "clusterroles", "", role_ref("name"))),
            "Role" => add_role(stored(objects, "roles", binding_namespace, role_ref("name"))),
            _ => {}
        }
    }
    rules
}

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// Whether one rule allows the request (Kubernetes' `RuleAllows`).
fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    if !contains(&strings(rule, "verbs"), &attributes.verb) {
        return false;
    }
    if let Some(path) = &attributes.path {
        return strings(rule, "nonResourceURLs")
            .iter()
            .any(|url| url == "*" || url == path || url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix)));
    }
    if !contains(&strings(rule, "apiGroups"), &attributes.group) {
        return false;
    }
    let combined = if attributes.subresource.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}/{}", attributes.resource, attributes.subresource)
    };
    let resources = strings(rule, "resources");
    let resource_ok = resources
        .iter()
        .any(|r| r == "*" || *r == combined || (!attributes.subresource.is_empty() && *r == format!("*/{}", attributes.subresource)));
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attributes.name)
}

/// Whether `user` may do what `attributes` say.
pub(super) fn authorize(objects: &BTreeMap<ObjectKey, Stored>, user: &UserInfo, attributes: &Attributes) -> bool {
    if user.groups.iter().any(|g| g == MASTERS) {
        return true;
    }
    rules_of(objects, user, &attributes.namespace).iter().any(|rule| rule_allows(rule, attributes))
}

/// The 403 message the real API server gives.
pub(super) fn forbidden_message(user: &UserInfo, attributes: &Attributes) -> String {
    if let Some(path) = &attributes.path {
        return format!("forbidden: User \"{}\" cannot {} path \"{path}\"", user.name, attributes.verb);
    }
    let resource =
        if attributes.group.is_empty() { attributes.resource.clone() } else { format!("{}.{}", attributes.resource, attributes.group) };
    let what = if attributes.name.is_empty() { resource } else { format!("{resource} \"{}\"", attributes.name) };
    let combined = if attributes.subresource.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}/{}", attributes.resource, attributes.subresource)
    };
    let scope = if attributes.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attributes.namespace)
    };
    format!(
        "{what} is forbidden: User \"{}\" cannot {} resource \"{combined}\" in API group \"{}\" {scope}",
        user.name, attributes.verb, attributes.group
    )
}

/// The user a request acts as: the authenticated one, or whom it impersonates
/// if it may. `Err` is the 403 message (or a 500 for groups without a user).
pub(super) fn impersonate(
    objects: &BTreeMap<ObjectKey, Stored>,
    user: UserInfo,
    headers: &axum::http::HeaderMap,
) -> Result<UserInfo, (u16, String)> {
    let values = |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(String::from).collect::<Vec<_>>();
    let target_user = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let extra = headers.keys().any(|k| k.as_str().starts_with("impersonate-extra-"));
    let Some(target) = target_user else {
        if !groups.is_empty() || uid.is_some() || extra {
            return Err((500, "requested impersonation of groups, uid or extra without impersonating a user".into()));
        }
        return Ok(user);
    };
    let check = |attributes: Attributes| {
        if authorize(objects, &user, &attributes) { Ok(()) } else { Err((403, forbidden_message(&user, &attributes))) }
    };
    let impersonated = match target.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':')) {
        Some((namespace, name)) => {
            check(Attributes {
                verb: "impersonate".into(),
                resource: "serviceaccounts".into(),
                namespace: namespace.into(),
                name: name.into(),
                ..Default::default()
            })?;
            if groups.is_empty() { UserInfo::service_account(namespace, name) } else { UserInfo::new(&target, &[]) }
        }
        None => {
            check(Attributes { verb: "impersonate".into(), resource: "users".into(), name: target.clone(), ..Default::default() })?;
            UserInfo::new(&target, &[])
        }
    };
    let mut impersonated = impersonated;
    for group in &groups {
        check(Attributes { verb: "impersonate".into(), resource: "groups".into(), name: group.clone(), ..Default::default() })?;
        if !impersonated.groups.contains(group) {
            impersonated.groups.push(group.clone());
        }
    }
    if let Some(uid) = uid {
        check(Attributes {
            verb: "impersonate".into(),
            group: "authentication.k8s.io".into(),
            resource: "uids".into(),
            name: uid,
            ..Default::default()
        })?;
    }
    Ok(impersonated)
}

/// Every atomic permission a rule grants: (verb, group, resource, name) or (verb, url).
fn atoms(rule: &Value) -> Vec<Attributes> {
    let verbs = strings(rule, "verbs");
    let urls = strings(rule, "nonResourceURLs");
    let mut out = Vec::new();
    for verb in &verbs {
        for url in &urls {
            out.push(Attributes { verb: verb.clone(), path: Some(url.clone()), ..Default::default() });
        }
        let names = strings(rule, "resourceNames");
        let names = if names.is_empty() { vec![String::new()] } else { names };
        for group in strings(rule, "apiGroups") {
            for resource in strings(rule, "resources") {
                let (resource, subresource) =
                    resource.split_once('/').map_or((resource.clone(), String::new()), |(r, s)| (r.into(), s.into()));
                for name in &names {
                    out.push(Attributes {
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        subresource: subresource.clone(),
                        name: name.clone(),
                        ..Default::default()
                    });
                }
            }
        }
    }
    out
}

/// Whether `owner` holds an atomic permission: `*` is covered only by `*`,
/// and a permission for every name only by a rule without resource names.
fn covered(owner: &[Value], atom: &Attributes) -> bool {
    owner.iter().any(|rule| {
        if !contains(&strings(rule, "verbs"), &atom.verb) {
            return false;
        }
        if let Some(path) = &atom.path {
            return strings(rule, "nonResourceURLs").iter().any(|url| {
                url == "*" || url == path || url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix) && !path.ends_with('*'))
            });
        }
        let names = strings(rule, "resourceNames");
        let name_ok = names.is_empty() || (!atom.name.is_empty() && names.contains(&atom.name));
        let combined = if atom.subresource.is_empty() { atom.resource.clone() } else { format!("{}/{}", atom.resource, atom.subresource) };
        let resource_ok = strings(rule, "resources")
            .iter()
            .any(|r| r == "*" || *r == combined || (!atom.subresource.is_empty() && *r == format!("*/{}", atom.subresource)));
        name_ok && resource_ok && contains(&strings(rule, "apiGroups"), &atom.group)
    })
}

/// RBAC's escalation check for writing `object` (a Role, ClusterRole or
/// binding) as `user`. `Err` is the 403 message.
pub(super) fn check_escalation(objects: &BTreeMap<ObjectKey, Stored>, user: &UserInfo, plural: &str, object: &Value) -> Result<(), String> {
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let (granted, special) = match plural {
        "roles" | "clusterroles" => (object.get("rules").and_then(Value::as_array).cloned().unwrap_or_default(), None),
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = |f: &str| object.pointer(&format!("/roleRef/{f}")).and_then(Value::as_str).unwrap_or_default().to_string();
            let (kind, role_name) = (role_ref("kind"), role_ref("name"));
            let role = match kind.as_str() {
                "ClusterRole" => stored(objects, "clusterroles", "", &role_name),
                _ => stored(objects, "roles", namespace, &role_name),
            };
            let resource = if kind == "ClusterRole" { "clusterroles" } else { "roles" };
            let Some(role) = role else {
                // Without the role its rules cannot be held: only `bind` lets one bind it.
                let bind = Attributes {
                    verb: "bind".into(),
                    group: RBAC.into(),
                    resource: resource.into(),
                    namespace: if plural == "clusterrolebindings" { String::new() } else { namespace.into() },
                    name: role_name.clone(),
                    ..Default::default()
                };
                return if authorize(objects, user, &bind) {
                    Ok(())
                } else {
                    Err(format!("{plural}.{RBAC} \"{name}\" is forbidden: {kind} {role_name:?} not found"))
                };
            };
            let rules = role.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
            let bind = Attributes {
                verb: "bind".into(),
                group: RBAC.into(),
                resource: resource.into(),
                namespace: if kind == "ClusterRole" && plural == "clusterrolebindings" { String::new() } else { namespace.into() },
                name: role_name,
                ..Default::default()
            };
            (rules, Some(bind))
        }
        _ => return Ok(()),
    };
    let special = special.unwrap_or(Attributes {
        verb: "escalate".into(),
        group: RBAC.into(),
        resource: plural.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    });
    if authorize(objects, user, &special) {
        return Ok(());
    }
    let owner = rules_of(objects, user, namespace);
    let missing: Vec<String> = granted
        .iter()
        .flat_map(atoms)
        .filter(|atom| !covered(&owner, atom))
        .map(|a| match &a.path {
            Some(path) => format!("{{NonResourceURLs:[{path:?}], Verbs:[{:?}]}}", a.verb),
            None => format!("{{APIGroups:[{:?}], Resources:[{:?}], Verbs:[{:?}]}}", a.group, a.resource, a.verb),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = format!("{plural}.{RBAC} \"{name}\"");
    Err(format!(
        "{what} is forbidden: user \"{}\" (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        user.groups,
        missing.join("\n")
    ))
}

/// The bootstrap policy a new cluster has, of what the tests touch:
/// cluster-admin for `system:masters`, discovery for everyone signed in,
/// and the user-facing roles tenants bind (their main rules).
pub(super) fn bootstrap() -> Vec<Value> {
    let all_verbs = json!(["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]);
    let read = json!(["get", "list", "watch"]);
    let workloads = json!({"apiGroups": ["", "apps", "batch", "autoscaling", "policy", "networking.k8s.io"],
        "resources": ["pods", "services", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims", "deployments",
            "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs", "horizontalpodautoscalers", "poddisruptionbudgets",
            "ingresses", "networkpolicies", "pods/log", "pods/exec", "pods/portforward", "deployments/scale"]});
    let with_verbs = |rule: &Value, verbs: &Value| {
        let mut rule = rule.clone();
        rule["verbs"] = verbs.clone();
        rule
    };
    let cluster_role = |name: &str, rules: Vec<Value>| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules});
    vec![
        cluster_role(
            "cluster-admin",
            vec![json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}), json!({"nonResourceURLs": ["*"], "verbs": ["*"]})],
        ),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": MASTERS}]}),
        cluster_role(
            "system:discovery",
            vec![
                json!({"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/openapi", "/openapi/*", "/version", "/version/"], "verbs": ["get"]}),
            ],
        ),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:discovery"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:discovery"},
            "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": AUTHENTICATED}]}),
        cluster_role("view", vec![with_verbs(&workloads, &read)]),
        cluster_role(
            "edit",
            vec![
                with_verbs(&workloads, &all_verbs),
                json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}),
            ],
        ),
        cluster_role(
            "admin",
            vec![
                with_verbs(&workloads, &all_verbs),
                json!({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}),
                json!({"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": all_verbs}),
                json!({"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": read}),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(items: Vec<Value>) -> BTreeMap<ObjectKey, Stored> {
        items
            .into_iter()
            .map(|object| {
                let plural = match object["kind"].as_str().unwrap_or_default() {
                    "ClusterRole" => "clusterroles",
                    "ClusterRoleBinding" => "clusterrolebindings",
                    "Role" => "roles",
                    _ => "rolebindings",
                };
                let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
                ((RBAC.to_string(), plural.to_string(), namespace, name), Stored { object, applied: BTreeMap::new() })
            })
            .collect()
    }

    fn shop_editor() -> BTreeMap<ObjectKey, Stored> {
        let mut items = bootstrap();
        items
            .push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "apply", "namespace": "shop"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch", "create"]}]}));
        items.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "apply", "namespace": "shop"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "apply"},
            "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": "heimdall-tenants"}]}),
        );
        objects(items)
    }

    fn patch(group: &str, resource: &str, namespace: &str) -> Attributes {
        Attributes {
            verb: "patch".into(),
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: "web".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_role_binding_grants_only_its_namespace_and_its_rules() {
        let objects = shop_editor();
        let shop = UserInfo::service_account("heimdall-tenants", "shop");
        assert!(authorize(&objects, &shop, &patch("apps", "deployments", "shop")));
        assert!(!authorize(&objects, &shop, &patch("apps", "deployments", "payments")));
        assert!(!authorize(&objects, &shop, &patch("", "configmaps", "shop")));
        assert!(!authorize(&objects, &shop, &patch(RBAC, "clusterrolebindings", "")));
        assert_eq!(
            forbidden_message(&shop, &patch("apps", "deployments", "payments")),
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:heimdall-tenants:shop\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"payments\""
        );
        let discovery = Attributes { verb: "get".into(), path: Some("/apis/apps/v1".into()), ..Default::default() };
        assert!(authorize(&objects, &shop, &discovery), "everyone signed in reads discovery");
        assert!(authorize(&objects, &UserInfo::new("admin", &[MASTERS]), &patch(RBAC, "clusterrolebindings", "")));
    }

    #[test]
    fn impersonation_needs_the_impersonate_verb_on_that_identity() {
        let mut items = bootstrap();
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "imp", "namespace": "heimdall-tenants"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]}));
        items.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "imp", "namespace": "heimdall-tenants"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "imp"},
            "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "heimdall-system"}]}));
        let objects = objects(items);
        let agent = UserInfo::service_account("heimdall-system", "agent");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("impersonate-user", "system:serviceaccount:heimdall-tenants:shop".parse().expect("header"));
        let shop = impersonate(&objects, agent.clone(), &headers).expect("may impersonate tenants' accounts");
        assert_eq!(shop.name, "system:serviceaccount:heimdall-tenants:shop");
        assert!(shop.groups.contains(&"system:serviceaccounts:heimdall-tenants".to_string()));
        headers.insert("impersonate-user", "system:serviceaccount:kube-system:admin".parse().expect("header"));
        let (code, message) = impersonate(&objects, agent.clone(), &headers).expect_err("no other account");
        assert_eq!(code, 403);
        assert!(
            message.contains("cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"kube-system\""),
            "{message}"
        );
        headers.insert("impersonate-user", "alice".parse().expect("header"));
        assert!(impersonate(&objects, agent, &headers).is_err(), "nor people");
    }

    #[test]
    fn granting_what_one_does_not_hold_is_an_escalation() {
        let objects = shop_editor();
        let shop = UserInfo::service_account("heimdall-tenants", "shop");
        let own = json!({"metadata": {"name": "r", "namespace": "shop"}, "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]});
        assert!(check_escalation(&objects, &shop, "roles", &own).is_ok());
        let wider =
            json!({"metadata": {"name": "r", "namespace": "shop"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let refused = check_escalation(&objects, &shop, "roles", &wider).expect_err("escalation");
        assert!(refused.contains("is attempting to grant RBAC permissions not currently held"), "{refused}");
        let admin = json!({"metadata": {"name": "b", "namespace": "shop"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": []});
        assert!(check_escalation(&objects, &shop, "rolebindings", &admin).is_err());
    }
}
