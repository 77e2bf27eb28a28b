//! A **test-only fake Kubernetes API server**. It speaks the slice of the
//! real HTTP API that Heimdall's agent relies on, the way the real server
//! does, so the agent's code cannot tell it from a cluster:
//!
//! - discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}/{version}`;
//!   applying a CustomResourceDefinition serves its kind (and marks it Established);
//! - server-side apply: `PATCH` with `application/apply-patch+yaml`,
//!   `fieldManager` (required) and `force`; fields a manager applied before
//!   and no longer applies are removed; a field another manager applied with
//!   a different value is a 409 conflict unless forced; `status` is ignored
//!   for kinds with a status subresource; `metadata.resourceVersion` in the
//!   body is a precondition; `dryRun=All` stores nothing;
//! - `GET`, `LIST` (all namespaces or one, `labelSelector` with `=`, `!=`,
//!   `in`, `notin`, exists and `!`), `DELETE` (a Namespace takes its objects);
//! - `resourceVersion` that moves only when an object changes, `generation`
//!   that moves only when its spec does, `uid`, `creationTimestamp`;
//! - failures as `Status` objects with the real codes and reasons (401, 403,
//!   404, 409, 415, 422);
//! - authentication by bearer token, impersonation and RBAC ([`rbac`]):
//!   [`TOKEN`] is a cluster admin (`system:masters`), other tokens name the
//!   users tests give them ([`FakeKube::add_token`]).
//!
//! Tests change the cluster underneath the agent through [`FakeKube`]:
//! [`FakeKube::mutate`] (drift), [`FakeKube::set_status`] (health),
//! [`FakeKube::forbid`] (RBAC refusals), [`FakeKube::add_node`] (facts).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use heimdall_model::selector::LabelSelector;
use serde_json::{Map, Value, json};

mod rbac;

pub use rbac::UserInfo;

/// The token of a cluster admin (`Authorization: Bearer ...`), a member of `system:masters`.
pub const TOKEN: &str = "fake-kube-token";

#[derive(Debug, Clone)]
struct ResourceType {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    status_subresource: bool,
}

impl ResourceType {
    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

const BUILT_IN: &[(&str, &str, &str, &str, bool, bool)] = &[
    ("", "v1", "Namespace", "namespaces", false, true),
    ("", "v1", "Node", "nodes", false, true),
    ("", "v1", "Pod", "pods", true, true),
    ("", "v1", "Service", "services", true, true),
    ("", "v1", "ConfigMap", "configmaps", true, false),
    ("", "v1", "Secret", "secrets", true, false),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, false),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true),
    ("", "v1", "Endpoints", "endpoints", true, false),
    ("", "v1", "ResourceQuota", "resourcequotas", true, true),
    ("", "v1", "LimitRange", "limitranges", true, false),
    ("apps", "v1", "Deployment", "deployments", true, true),
    ("apps", "v1", "StatefulSet", "statefulsets", true, true),
    ("apps", "v1", "DaemonSet", "daemonsets", true, true),
    ("apps", "v1", "ReplicaSet", "replicasets", true, true),
    ("batch", "v1", "Job", "jobs", true, true),
    ("batch", "v1", "CronJob", "cronjobs", true, true),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true, true),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, true),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false),
    ("coordination.k8s.io", "v1", "Lease", "leases", true, false),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true),
];

/// (group, plural, namespace, name)
type ObjectKey = (String, String, String, String);

#[derive(Debug, Clone)]
struct Stored {
    object: Value,
    /// What each field manager last applied: its set of fields.
    applied: BTreeMap<String, Value>,
}

#[derive(Debug, Default)]
struct Cluster {
    types: Vec<ResourceType>,
    objects: BTreeMap<ObjectKey, Stored>,
    resource_version: u64,
    uid: u64,
    /// (group, plural) whose writes are refused with 403.
    forbidden: Vec<(String, String)>,
    /// Requests served, by verb: for tests that count API calls.
    requests: BTreeMap<String, u64>,
    /// Bearer token -> who it authenticates.
    tokens: BTreeMap<String, UserInfo>,
    /// Every request refused by RBAC or impersonation: (user, message).
    refusals: Vec<(String, String)>,
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeKube {
    cluster: Arc<Mutex<Cluster>>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeKube {
    /// Starts a server on a free loopback port with the `default` and
    /// `kube-system` namespaces and one node. Needs a Tokio runtime.
    pub async fn start() -> FakeKube {
        Self::start_on("127.0.0.1:0".parse().expect("loopback address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> FakeKube {
        let mut cluster = Cluster::default();
        for (group, version, kind, plural, namespaced, status) in BUILT_IN {
            cluster.types.push(ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                namespaced: *namespaced,
                status_subresource: *status,
            });
        }
        cluster.tokens.insert(TOKEN.to_string(), UserInfo::new("kubernetes-admin", &[rbac::MASTERS]));
        let cluster = Arc::new(Mutex::new(cluster));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the fake API server");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().fallback(handle).with_state(cluster.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let fake = FakeKube { cluster, addr, server };
        for namespace in ["default", "kube-system"] {
            fake.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
        }
        for object in rbac::bootstrap() {
            fake.create(object);
        }
        fake.add_node("node-1", "4", "16Gi");
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig that points at this server with [`TOKEN`].
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_with(TOKEN)
    }

    /// A kubeconfig that points at this server with `token`.
    pub fn kubeconfig_with(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: fake\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: heimdall-system\ncurrent-context: fake\n",
            url = self.url()
        )
    }

    /// Makes `token` authenticate as `user` (a ServiceAccount's token, say:
    /// [`UserInfo::service_account`]). What it may do is RBAC's to say.
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.lock().tokens.insert(token.to_string(), user);
    }

    /// Every request RBAC or impersonation refused so far: (user, message).
    pub fn refusals(&self) -> Vec<(String, String)> {
        self.lock().refusals.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or replaces an object as another controller would (no field manager).
    /// A CustomResourceDefinition serves its kind at once, as when applied.
    pub fn create(&self, object: Value) {
        let mut cluster = self.lock();
        let ty = cluster.type_of(&object).expect("a served kind");
        let key = key_of(&ty, &object);
        let mut object = object;
        if ty.kind == "CustomResourceDefinition" {
            register_crd(&mut cluster, &mut object);
        }
        cluster.stamp_new(&mut object);
        cluster.objects.insert(key, Stored { object, applied: BTreeMap::new() });
    }

    pub fn add_node(&self, name: &str, cpu: &str, memory: &str) {
        self.create(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}, "capacity": {"cpu": cpu, "memory": memory}},
        }));
    }

    /// The object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let cluster = self.lock();
        let ty = cluster.type_by_kind(api_version, kind)?;
        cluster.objects.get(&(ty.group.clone(), ty.plural.clone(), namespace.to_string(), name.to_string())).map(|s| s.object.clone())
    }

    /// Every object of a kind, in all namespaces.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let cluster = self.lock();
        let Some(ty) = cluster.type_by_kind(api_version, kind) else { return Vec::new() };
        cluster.objects.iter().filter(|(k, _)| k.0 == ty.group && k.1 == ty.plural).map(|(_, s)| s.object.clone()).collect()
    }

    /// Changes an object underneath its managers, as `kubectl edit` would.
    /// Returns false if there is no such object.
    pub fn mutate(&self, api_version: &str, kind: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut cluster = self.lock();
        let Some(ty) = cluster.type_by_kind(api_version, kind) else { return false };
        let key = (ty.group.clone(), ty.plural.clone(), namespace.to_string(), name.to_string());
        let Some(mut stored) = cluster.objects.get(&key).cloned() else { return false };
        let before = stored.object.clone();
        change(&mut stored.object);
        cluster.commit_change(&before, &mut stored.object);
        cluster.objects.insert(key, stored);
        true
    }

    /// Replaces an object's status, as its controller would.
    pub fn set_status(&self, api_version: &str, kind: &str, namespace: &str, name: &str, status: Value) -> bool {
        self.mutate(api_version, kind, namespace, name, |object| object["status"] = status)
    }

    /// Marks a Deployment rolled out, as its controller would once every
    /// replica of its current generation is available.
    pub fn roll_out(&self, namespace: &str, name: &str) -> bool {
        self.mutate("apps/v1", "Deployment", namespace, name, |deployment| {
            let replicas = deployment.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
            let generation = deployment.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            deployment["status"] = json!({"observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
        })
    }

    /// Removes an object as someone else would.
    pub fn remove(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let mut cluster = self.lock();
        let Some(ty) = cluster.type_by_kind(api_version, kind) else { return false };
        cluster.objects.remove(&(ty.group.clone(), ty.plural.clone(), namespace.to_string(), name.to_string())).is_some()
    }

    /// Refuses every write to `plural` of `group` with 403, as RBAC would.
    pub fn forbid(&self, group: &str, plural: &str) {
        self.lock().forbidden.push((group.to_string(), plural.to_string()));
    }

    /// How many requests of `verb` (`get`, `list`, `apply`, `delete`, `discovery`) were served.
    pub fn requests(&self, verb: &str) -> u64 {
        self.lock().requests.get(verb).copied().unwrap_or(0)
    }

    /// How many objects the server holds (nodes and namespaces included).
    pub fn object_count(&self) -> usize {
        self.lock().objects.len()
    }
}

fn key_of(ty: &ResourceType, object: &Value) -> ObjectKey {
    let namespace = if ty.namespaced { str_at(object, "/metadata/namespace").unwrap_or("default") } else { "" };
    (ty.group.clone(), ty.plural.clone(), namespace.to_string(), str_at(object, "/metadata/name").unwrap_or_default().to_string())
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

impl Cluster {
    fn type_by_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.types.iter().find(|t| t.api_version() == api_version && t.kind == kind).cloned()
    }

    fn type_of(&self, object: &Value) -> Option<ResourceType> {
        self.type_by_kind(str_at(object, "/apiVersion")?, str_at(object, "/kind")?)
    }

    fn type_by_plural(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn stamp_new(&mut self, object: &mut Value) {
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012}", self.uid);
        let version = self.next_version();
        let metadata = object_at(object, "metadata");
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("resourceVersion".into(), json!(version));
        metadata.insert("generation".into(), json!(1));
        metadata.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
    }

    /// Moves resourceVersion (and generation, for a spec change) if `object` differs from `before`.
    fn commit_change(&mut self, before: &Value, object: &mut Value) {
        if before == object {
            return;
        }
        let without = |v: &Value, fields: &[&str]| {
            let mut v = v.clone();
            if let Some(map) = v.as_object_mut() {
                for f in fields {
                    map.remove(*f);
                }
            }
            v
        };
        let generation = before.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let spec_changed = without(before, &["metadata", "status"]) != without(object, &["metadata", "status"]);
        let version = self.next_version();
        let metadata = object_at(object, "metadata");
        metadata.insert("resourceVersion".into(), json!(version));
        metadata.insert("generation".into(), json!(if spec_changed { generation + 1 } else { generation }));
    }
}

fn object_at<'a>(value: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    if !value.get(field).is_some_and(Value::is_object) {
        value[field] = json!({});
    }
    value[field].as_object_mut().expect("just made an object")
}

// ---- HTTP ----

fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason, "code": code.as_u16(),
    });
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn not_found(ty: &ResourceType, name: &str) -> Response {
    let resource = if ty.group.is_empty() { ty.plural.clone() } else { format!("{}.{}", ty.plural, ty.group) };
    status(StatusCode::NOT_FOUND, "NotFound", format!("{resource} \"{name}\" not found"))
}

/// What a request path names.
struct Target {
    ty: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

async fn handle(
    State(cluster): State<Arc<Mutex<Cluster>>>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let mut cluster = cluster.lock().unwrap_or_else(|e| e.into_inner());
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(user) = token.and_then(|t| cluster.tokens.get(t)).cloned() else {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    };
    let user = match rbac::impersonate(&cluster.objects, user, &headers) {
        Ok(user) => user,
        Err((code, message)) => {
            cluster.refusals.push(("impersonation".into(), message.clone()));
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
            let reason = if code == StatusCode::FORBIDDEN { "Forbidden" } else { "InternalError" };
            return status(code, reason, message);
        }
    };
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    if matches!(segments.first(), Some(&"version" | &"api" | &"apis")) && segments.len() <= 3 && parse_target(&cluster, &segments).is_none()
    {
        let attributes = rbac::Attributes { verb: "get".into(), path: Some(uri.path().to_string()), ..Default::default() };
        if !rbac::authorize(&cluster.objects, &user, &attributes) {
            let message = rbac::forbidden_message(&user, &attributes);
            cluster.refusals.push((user.name.clone(), message.clone()));
            return status(StatusCode::FORBIDDEN, "Forbidden", message);
        }
    }
    if let Some(response) = discovery(&mut cluster, &segments) {
        return response;
    }
    let Some(target) = parse_target(&cluster, &segments) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    };
    let verb = match (&method, &target.name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        (&Method::GET, None) => "list",
        (&Method::PATCH, Some(_)) => "apply",
        (&Method::DELETE, Some(_)) => "delete",
        _ => {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            );
        }
    };
    *cluster.requests.entry(verb.to_string()).or_default() += 1;
    let attributes = |verb: &str| rbac::Attributes {
        verb: verb.to_string(),
        group: target.ty.group.clone(),
        resource: target.ty.plural.clone(),
        subresource: target.subresource.clone().unwrap_or_default(),
        namespace: target.namespace.clone().unwrap_or_default(),
        name: target.name.clone().unwrap_or_default(),
        path: None,
    };
    // A server-side apply is a patch, and a create as well when the object is new.
    let mut verbs = vec![if verb == "apply" { "patch" } else { verb }];
    if verb == "apply" && !cluster.objects.contains_key(&object_key(&target)) {
        verbs.push("create");
    }
    for verb in verbs {
        let attributes = attributes(verb);
        if !rbac::authorize(&cluster.objects, &user, &attributes) {
            let message = rbac::forbidden_message(&user, &attributes);
            cluster.refusals.push((user.name.clone(), message.clone()));
            return status(StatusCode::FORBIDDEN, "Forbidden", message);
        }
    }
    if verb == "apply" && target.ty.group == "rbac.authorization.k8s.io" {
        let body: Value = serde_json::from_slice(&body).or_else(|_| serde_saphyr::from_slice(&body)).unwrap_or(Value::Null);
        let mut object = body;
        if let (Some(namespace), Some(metadata)) = (&target.namespace, object.get_mut("metadata").and_then(Value::as_object_mut)) {
            metadata.insert("namespace".into(), json!(namespace));
        }
        if let Err(message) = rbac::check_escalation(&cluster.objects, &user, &target.ty.plural, &object) {
            cluster.refusals.push((user.name.clone(), message.clone()));
            return status(StatusCode::FORBIDDEN, "Forbidden", message);
        }
    }
    if matches!(verb, "apply" | "delete") && cluster.forbidden.contains(&(target.ty.group.clone(), target.ty.plural.clone())) {
        let group = if target.ty.group.is_empty() { "\"\"".to_string() } else { target.ty.group.clone() };
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: User \"system:serviceaccount:heimdall-system:heimdall-agent\" cannot {verb} resource \"{}\" in API group {group}",
                target.ty.plural,
                target.name.as_deref().unwrap_or_default(),
                target.ty.plural
            ),
        );
    }
    match verb {
        "get" => get(&cluster, &target),
        "list" => list(&cluster, &target, query.get("labelSelector").map(String::as_str)),
        "delete" => delete(&mut cluster, &target),
        _ => apply(&mut cluster, &target, &query, &headers, &body),
    }
}

fn resource_list(cluster: &Cluster, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = cluster
        .types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| {
            let main = json!({
                "name": t.plural, "singularName": t.kind.to_ascii_lowercase(), "namespaced": t.namespaced, "kind": t.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            });
            let status = t.status_subresource.then(|| {
                json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]})
            });
            std::iter::once(main).chain(status)
        })
        .collect();
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn discovery(cluster: &mut Cluster, segments: &[&str]) -> Option<Response> {
    let response = match segments {
        ["version"] => ok(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "gitCommit": "0000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
        })),
        ["api"] => ok(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})),
        ["api", "v1"] => ok(resource_list(cluster, "", "v1")),
        ["apis"] => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for t in cluster.types.iter().filter(|t| !t.group.is_empty()) {
                let versions = groups.entry(t.group.clone()).or_default();
                if !versions.contains(&t.version) {
                    versions.push(t.version.clone());
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(group, versions)| {
                    let versions: Vec<Value> =
                        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
                    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["apis", group, version] => {
            if !cluster.types.iter().any(|t| t.group == *group && t.version == *version) {
                return Some(status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource"));
            }
            ok(resource_list(cluster, group, version))
        }
        _ => return None,
    };
    *cluster.requests.entry("discovery".into()).or_default() += 1;
    Some(response)
}

fn parse_target(cluster: &Cluster, segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, rest @ ..] => (Some(namespace.to_string()), [&[*plural], rest].concat()),
        rest => (None, rest.to_vec()),
    };
    // `/api/v1/namespaces/NAME` is the Namespace itself.
    let (ty, name, subresource) = match (namespace.as_deref(), rest.as_slice()) {
        (Some(ns), []) => {
            return Some(Target {
                ty: cluster.type_by_plural("", "v1", "namespaces")?,
                namespace: None,
                name: Some(ns.to_string()),
                subresource: None,
            });
        }
        (_, [plural]) => (cluster.type_by_plural(group, version, plural)?, None, None),
        (_, [plural, name]) => (cluster.type_by_plural(group, version, plural)?, Some(name.to_string()), None),
        (_, [plural, name, sub]) => (cluster.type_by_plural(group, version, plural)?, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    if ty.namespaced != namespace.is_some() && name.is_some() {
        return None;
    }
    Some(Target { ty, namespace, name, subresource })
}

fn object_key(target: &Target) -> ObjectKey {
    (
        target.ty.group.clone(),
        target.ty.plural.clone(),
        target.namespace.clone().unwrap_or_default(),
        target.name.clone().unwrap_or_default(),
    )
}

fn get(cluster: &Cluster, target: &Target) -> Response {
    match cluster.objects.get(&object_key(target)) {
        Some(stored) => ok(stored.object.clone()),
        None => not_found(&target.ty, target.name.as_deref().unwrap_or_default()),
    }
}

fn list(cluster: &Cluster, target: &Target, selector: Option<&str>) -> Response {
    let selector = match selector.map(LabelSelector::parse).transpose() {
        Ok(selector) => selector,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", format!("unable to parse requirement: {e}")),
    };
    let items: Vec<Value> = cluster
        .objects
        .iter()
        .filter(|(k, _)| k.0 == target.ty.group && k.1 == target.ty.plural)
        .filter(|(k, _)| target.namespace.as_ref().is_none_or(|ns| &k.2 == ns))
        .filter(|(_, s)| selector.as_ref().is_none_or(|sel| sel.matches(&labels_of(&s.object))))
        .map(|(_, s)| {
            // The real server leaves kind and apiVersion off list items.
            let mut item = s.object.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    ok(json!({
        "kind": format!("{}List", target.ty.kind), "apiVersion": target.ty.api_version(),
        "metadata": {"resourceVersion": cluster.resource_version.to_string()}, "items": items,
    }))
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| labels.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn delete(cluster: &mut Cluster, target: &Target) -> Response {
    let key = object_key(target);
    let Some(stored) = cluster.objects.remove(&key) else {
        return not_found(&target.ty, target.name.as_deref().unwrap_or_default());
    };
    if target.ty.kind == "Namespace" {
        let namespace = key.3.clone();
        cluster.objects.retain(|k, _| k.2 != namespace);
    }
    if target.ty.kind == "CustomResourceDefinition" {
        let group = str_at(&stored.object, "/spec/group").unwrap_or_default().to_string();
        let plural = str_at(&stored.object, "/spec/names/plural").unwrap_or_default().to_string();
        cluster.types.retain(|t| !(t.group == group && t.plural == plural));
        cluster.objects.retain(|k, _| !(k.0 == group && k.1 == plural));
    }
    cluster.next_version();
    ok(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": key.3, "group": key.0, "kind": target.ty.plural, "uid": str_at(&stored.object, "/metadata/uid")},
    }))
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn apply(cluster: &mut Cluster, target: &Target, query: &BTreeMap<String, String>, headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/apply-patch+yaml") {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (got {content_type:?})"
            ),
        );
    }
    if target.subresource.is_some() {
        return status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "subresources are not served by the fake API server");
    }
    let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "PATCH, fieldManager: Required value: is required for apply patch");
    };
    let force = query.get("force").is_some_and(|f| f == "true");
    let dry_run = query.get("dryRun").is_some_and(|d| d == "All");
    let text = String::from_utf8_lossy(body);
    let config: Value = match serde_json::from_str(&text).or_else(|_| serde_saphyr::from_str(&text)) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not an object"),
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", format!("error decoding YAML: {e}")),
    };
    let name = target.name.clone().unwrap_or_default();
    let kind = &target.ty.kind;
    if str_at(&config, "/apiVersion") != Some(target.ty.api_version().as_str()) || str_at(&config, "/kind") != Some(kind.as_str()) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("the API version and kind in the body do not match the URL: expected {} {kind}", target.ty.api_version()),
        );
    }
    if str_at(&config, "/metadata/name") != Some(name.as_str()) {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the name of the object does not match the name on the URL");
    }
    if target.ty.namespaced && str_at(&config, "/metadata/namespace").is_some_and(|ns| Some(ns) != target.namespace.as_deref()) {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "the namespace of the object does not match the namespace on the request");
    }
    if !is_dns_subdomain(&name) {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!(
                "{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            ),
        );
    }
    if let Some(namespace) = &target.namespace
        && !cluster.objects.contains_key(&(String::new(), "namespaces".into(), String::new(), namespace.clone()))
    {
        return status(StatusCode::NOT_FOUND, "NotFound", format!("namespaces \"{namespace}\" not found"));
    }
    if kind == "Deployment" && config.pointer("/spec/template/spec/containers").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("Deployment.apps \"{name}\" is invalid: spec.template.spec.containers: Required value"),
        );
    }
    let mut config = config;
    let precondition = config.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from);
    if let Some(metadata) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        for server_owned in ["resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"] {
            metadata.remove(server_owned);
        }
    }
    if target.ty.status_subresource
        && let Some(map) = config.as_object_mut()
    {
        map.remove("status");
    }
    if target.ty.namespaced {
        config["metadata"]["namespace"] = json!(target.namespace);
    }
    let key = object_key(target);
    let existing = cluster.objects.get(&key).cloned();
    if let Some(expected) = precondition {
        let current = existing.as_ref().and_then(|s| str_at(&s.object, "/metadata/resourceVersion").map(String::from));
        if current.as_deref() != Some(expected.as_str()) {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    target.ty.plural
                ),
            );
        }
    }
    if let Some(current) = &existing
        && matches!(target.ty.plural.as_str(), "rolebindings" | "clusterrolebindings")
        && current.object.get("roleRef") != config.get("roleRef")
    {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} \"{name}\" is invalid: roleRef: Invalid value: cannot change roleRef", kind),
        );
    }
    let stored = match existing {
        None => {
            let mut object = config.clone();
            cluster.stamp_new(&mut object);
            Stored { object, applied: BTreeMap::from([(manager.clone(), config)]) }
        }
        Some(mut stored) => {
            if !force {
                let conflicts: Vec<String> = stored
                    .applied
                    .iter()
                    .filter(|(other, _)| *other != manager)
                    .flat_map(|(other, theirs)| {
                        conflicting_fields(theirs, &config, "").into_iter().map(move |f| format!("conflict with \"{other}\": {f}"))
                    })
                    .collect();
                if !conflicts.is_empty() {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!("Apply failed with {} conflicts: {}", conflicts.len(), conflicts.join("; ")),
                    );
                }
            }
            let before = stored.object.clone();
            if let Some(previous) = stored.applied.get(manager) {
                let others: Vec<&Value> = stored.applied.iter().filter(|(m, _)| *m != manager).map(|(_, v)| v).collect();
                remove_released(&mut stored.object, previous, &config, &others);
            }
            merge(&mut stored.object, &config);
            if force {
                for theirs in stored.applied.iter_mut().filter(|(m, _)| *m != manager).map(|(_, v)| v) {
                    release(theirs, &config);
                }
            }
            stored.applied.insert(manager.clone(), config);
            cluster.commit_change(&before, &mut stored.object);
            stored
        }
    };
    let mut object = stored.object.clone();
    object["metadata"]["managedFields"] = json!(
        stored
            .applied
            .keys()
            .map(|m| json!({"manager": m, "operation": "Apply", "apiVersion": target.ty.api_version(), "fieldsType": "FieldsV1"}))
            .collect::<Vec<_>>()
    );
    if !dry_run {
        if kind == "CustomResourceDefinition" {
            register_crd(cluster, &mut object);
        }
        cluster.objects.insert(key, Stored { object: object.clone(), applied: stored.applied });
    }
    ok(object)
}

/// Serves the kind a CRD defines and marks the CRD Established, as the real
/// apiextensions controller does moments after the CRD is created.
fn register_crd(cluster: &mut Cluster, crd: &mut Value) {
    let group = str_at(crd, "/spec/group").unwrap_or_default().to_string();
    let kind = str_at(crd, "/spec/names/kind").unwrap_or_default().to_string();
    let plural = str_at(crd, "/spec/names/plural").unwrap_or_default().to_string();
    let namespaced = str_at(crd, "/spec/scope") != Some("Cluster");
    let versions: Vec<(String, bool)> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                .filter_map(|v| Some((v.get("name")?.as_str()?.to_string(), v.pointer("/subresources/status").is_some())))
                .collect()
        })
        .unwrap_or_default();
    cluster.types.retain(|t| !(t.group == group && t.plural == plural));
    for (version, status_subresource) in versions {
        cluster.types.push(ResourceType {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            namespaced,
            status_subresource,
        });
    }
    crd["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(Value::Null),
    });
}

/// Leaf fields both configs set to different values.
fn conflicting_fields(theirs: &Value, ours: &Value, path: &str) -> Vec<String> {
    match (theirs, ours) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .filter(|(k, _)| !path.is_empty() || (k.as_str() != "apiVersion" && k.as_str() != "kind"))
            .filter_map(|(k, v)| b.get(k).map(|w| (k, v, w)))
            .flat_map(|(k, v, w)| conflicting_fields(v, w, &format!("{path}.{k}")))
            .collect(),
        (a, b) if a != b => vec![path.to_string()],
        _ => Vec::new(),
    }
}

/// Deep merge: maps merge, anything else replaces.
fn merge(live: &mut Value, config: &Value) {
    match (live, config) {
        (Value::Object(live), Value::Object(config)) => {
            for (k, v) in config {
                match live.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        live.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (live, config) => *live = config.clone(),
    }
}

/// Removes from `live` the fields `previous` applied that `config` no longer
/// applies and no other manager applies.
fn remove_released(live: &mut Value, previous: &Value, config: &Value, others: &[&Value]) {
    let (Value::Object(live), Value::Object(previous)) = (live, previous) else { return };
    for (k, prev) in previous {
        let now = config.get(k);
        let other_children: Vec<&Value> = others.iter().filter_map(|o| o.get(k)).collect();
        match now {
            None if other_children.is_empty() => {
                live.remove(k);
            }
            Some(now) if prev.is_object() && now.is_object() => {
                if let Some(child) = live.get_mut(k) {
                    remove_released(child, prev, now, &other_children);
                }
            }
            _ => {}
        }
    }
}

/// Drops from `theirs` the fields `ours` now owns (a forced apply takes them over).
fn release(theirs: &mut Value, ours: &Value) {
    let (Value::Object(theirs), Value::Object(ours)) = (theirs, ours) else { return };
    let keys: Vec<String> = theirs.keys().cloned().collect();
    for k in keys {
        let Some(o) = ours.get(&k) else { continue };
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let both_maps = theirs.get(&k).is_some_and(Value::is_object) && o.is_object();
        if both_maps {
            if let Some(child) = theirs.get_mut(&k) {
                release(child, o);
            }
        } else {
            theirs.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_removes_fields_the_manager_no_longer_applies_but_keeps_others() {
        let mut live = json!({"spec": {"replicas": 2, "paused": false, "other": 1}});
        let previous = json!({"spec": {"replicas": 2, "paused": false}});
        let config = json!({"spec": {"replicas": 3}});
        let other = json!({"spec": {"other": 1}});
        remove_released(&mut live, &previous, &config, &[&other]);
        merge(&mut live, &config);
        assert_eq!(live, json!({"spec": {"replicas": 3, "other": 1}}));
    }

    #[test]
    fn conflicts_name_the_differing_leaf_fields() {
        let theirs = json!({"apiVersion": "v1", "spec": {"replicas": 2, "same": 1}});
        let ours = json!({"apiVersion": "v1", "spec": {"replicas": 3, "same": 1}});
        assert_eq!(conflicting_fields(&theirs, &ours, ""), vec![".spec.replicas"]);
    }
}
