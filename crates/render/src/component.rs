//! KubeVela's built-in component types, with the parameters its
//! documentation gives them: `webservice`, `worker`, `daemon`, `statefulset`
//! (long-running), `task`, `cron-task` (run to completion), `k8s-objects`
//! (objects as written) and `ref-objects` (objects that already exist).

use heimdall_api::labels as well_known;
use std::collections::BTreeMap;

use heimdall_model::Problem;
use heimdall_model::problem::join_path;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::context::{ComponentOutput, ObjectReference, Output, RenderContext};
use crate::object::{self, with_mode};
use crate::params::{self, quantity, string_map};

/// The built-in component types and the workload kind each renders.
pub const BUILTIN: &[(&str, &str)] = &[
    ("webservice", "Deployment"),
    ("worker", "Deployment"),
    ("daemon", "DaemonSet"),
    ("statefulset", "StatefulSet"),
    ("task", "Job"),
    ("cron-task", "CronJob"),
    ("k8s-objects", ""),
    ("ref-objects", ""),
];

const CONTAINER_KEYS: &[&str] = &[
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "cmd",
    "args",
    "env",
    "cpu",
    "memory",
    "limit",
    "volumeMounts",
    "volumes",
    "livenessProbe",
    "readinessProbe",
    "hostAliases",
    "labels",
    "annotations",
];
const PORT_KEYS: &[&str] = &["port", "ports", "exposeType", "addRevisionLabel"];
const JOB_KEYS: &[&str] = &["count", "restart", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"];
const CRON_KEYS: &[&str] = &[
    "schedule",
    "startingDeadlineSeconds",
    "suspend",
    "concurrencyPolicy",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "timeZone",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    image: String,
    image_pull_policy: Option<PullPolicy>,
    #[serde(default)]
    image_pull_secrets: Vec<String>,
    cmd: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default, deserialize_with = "quantity")]
    cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    memory: Option<String>,
    limit: Option<Limit>,
    volume_mounts: Option<VolumeMounts>,
    #[serde(default)]
    volumes: Vec<LegacyVolume>,
    liveness_probe: Option<Map<String, Value>>,
    readiness_probe: Option<Map<String, Value>>,
    #[serde(default)]
    host_aliases: Vec<HostAlias>,
    #[serde(default, deserialize_with = "string_map")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    annotations: BTreeMap<String, String>,
    // Long-running workloads.
    port: Option<u16>,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    expose_type: ExposeType,
    #[serde(default)]
    add_revision_label: bool,
    // Jobs.
    count: Option<u32>,
    restart: Option<RestartPolicy>,
    // Cron jobs.
    schedule: Option<String>,
    starting_deadline_seconds: Option<i64>,
    suspend: Option<bool>,
    concurrency_policy: Option<ConcurrencyPolicy>,
    successful_jobs_history_limit: Option<i32>,
    failed_jobs_history_limit: Option<i32>,
    time_zone: Option<String>,
    ttl_seconds_after_finished: Option<i32>,
    active_deadline_seconds: Option<i64>,
    backoff_limit: Option<i32>,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
pub enum PullPolicy {
    Always,
    Never,
    IfNotPresent,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize)]
pub enum ExposeType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
enum RestartPolicy {
    Never,
    OnFailure,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
enum ConcurrencyPolicy {
    Allow,
    Forbid,
    Replace,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    #[serde(default, deserialize_with = "quantity")]
    pub value: Option<String>,
    pub value_from: Option<Map<String, Value>>,
}

impl EnvVar {
    pub fn to_json(&self) -> Value {
        let mut var = json!({"name": self.name});
        if let Some(value) = &self.value {
            var["value"] = json!(value);
        }
        if let Some(from) = &self.value_from {
            var["valueFrom"] = Value::Object(from.clone());
        }
        var
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    #[serde(default, deserialize_with = "quantity")]
    cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    memory: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Port {
    port: u16,
    container_port: Option<u16>,
    name: Option<String>,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    expose: bool,
    node_port: Option<u16>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct HostAlias {
    ip: String,
    hostnames: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VolumeMounts {
    #[serde(default)]
    pvc: Vec<Mount>,
    #[serde(default)]
    config_map: Vec<Mount>,
    #[serde(default)]
    secret: Vec<Mount>,
    #[serde(default)]
    empty_dir: Vec<Mount>,
    #[serde(default)]
    host_path: Vec<Mount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Mount {
    name: String,
    mount_path: String,
    sub_path: Option<String>,
    read_only: Option<bool>,
    mount_propagation: Option<String>,
    claim_name: Option<String>,
    cm_name: Option<String>,
    secret_name: Option<String>,
    default_mode: Option<i32>,
    items: Option<Vec<Value>>,
    medium: Option<String>,
    path: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LegacyVolume {
    name: String,
    mount_path: String,
    #[serde(rename = "type")]
    type_: String,
    claim_name: Option<String>,
    cm_name: Option<String>,
    secret_name: Option<String>,
    medium: Option<String>,
    default_mode: Option<i32>,
    items: Option<Vec<Value>>,
}

fn mount_json(mount: &Mount) -> Value {
    let mut value = json!({"name": mount.name, "mountPath": mount.mount_path});
    if let Some(sub_path) = &mount.sub_path {
        value["subPath"] = json!(sub_path);
    }
    if let Some(read_only) = mount.read_only {
        value["readOnly"] = json!(read_only);
    }
    if let Some(propagation) = &mount.mount_propagation {
        value["mountPropagation"] = json!(propagation);
    }
    value
}

/// Volumes and mounts from `volumeMounts` (and the deprecated `volumes`),
/// one volume per name even when several mounts share it.
fn volumes(params: &Params, path: &str, problems: &mut Vec<Problem>) -> (Vec<Value>, Vec<Value>) {
    let mut volumes: Vec<Value> = Vec::new();
    let mut mounts = Vec::new();
    let mut add_volume = |volume: Value| {
        if !volumes.iter().any(|v| v["name"] == volume["name"]) {
            volumes.push(volume);
        }
    };
    let groups = params.volume_mounts.as_ref().map(|v| {
        [("pvc", &v.pvc), ("configMap", &v.config_map), ("secret", &v.secret), ("emptyDir", &v.empty_dir), ("hostPath", &v.host_path)]
    });
    for (kind, list) in groups.into_iter().flatten() {
        for (i, mount) in list.iter().enumerate() {
            let at = |field: &str| format!("{path}.volumeMounts.{kind}[{i}].{field}");
            let required = |value: &Option<String>, field: &str, problems: &mut Vec<Problem>| {
                if value.is_none() {
                    problems.push(Problem::new(at(field), "required field is missing"));
                }
                value.clone().unwrap_or_default()
            };
            let source = match kind {
                "pvc" => json!({"persistentVolumeClaim": {"claimName": required(&mount.claim_name, "claimName", problems)}}),
                "configMap" => {
                    json!({"configMap": with_mode(json!({"name": required(&mount.cm_name, "cmName", problems)}), mount.default_mode, &mount.items)})
                }
                "secret" => {
                    json!({"secret": with_mode(json!({"secretName": required(&mount.secret_name, "secretName", problems)}), mount.default_mode, &mount.items)})
                }
                "emptyDir" => match mount.medium.as_deref().filter(|m| !m.is_empty()) {
                    Some(medium) => json!({"emptyDir": {"medium": medium}}),
                    None => json!({"emptyDir": {}}),
                },
                _ => {
                    let mut host = json!({"path": required(&mount.path, "path", problems)});
                    if let Some(type_) = &mount.type_ {
                        host["type"] = json!(type_);
                    }
                    json!({"hostPath": host})
                }
            };
            let mut volume = json!({"name": mount.name});
            if let (Some(volume), Some(source)) = (volume.as_object_mut(), source.as_object()) {
                volume.extend(source.clone());
            }
            add_volume(volume);
            mounts.push(mount_json(mount));
        }
    }
    for (i, legacy) in params.volumes.iter().enumerate() {
        let source = match legacy.type_.as_str() {
            "pvc" => json!({"persistentVolumeClaim": {"claimName": legacy.claim_name}}),
            "configMap" => json!({"configMap": with_mode(json!({"name": legacy.cm_name}), legacy.default_mode, &legacy.items)}),
            "secret" => json!({"secret": with_mode(json!({"secretName": legacy.secret_name}), legacy.default_mode, &legacy.items)}),
            "emptyDir" => json!({"emptyDir": legacy.medium.as_ref().map_or(json!({}), |m| json!({"medium": m}))}),
            other => {
                problems.push(Problem::new(
                    format!("{path}.volumes[{i}].type"),
                    format!("expected pvc, configMap, secret or emptyDir, got {other:?}"),
                ));
                continue;
            }
        };
        let mut volume = json!({"name": legacy.name});
        if let (Some(volume), Some(source)) = (volume.as_object_mut(), source.as_object()) {
            volume.extend(source.clone());
        }
        add_volume(volume);
        mounts.push(json!({"name": legacy.name, "mountPath": legacy.mount_path}));
    }
    (volumes, mounts)
}

fn port_name(port: &Port) -> String {
    port.name.clone().unwrap_or_else(|| format!("port-{}", port.port))
}

/// The main container, named after the component as KubeVela names it.
fn container(ctx: &RenderContext, params: &Params, mounts: Vec<Value>, with_ports: bool) -> Value {
    let mut container = json!({"name": ctx.name, "image": params.image});
    let c = container.as_object_mut().unwrap_or_else(|| unreachable!());
    if let Some(policy) = params.image_pull_policy {
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    if let Some(cmd) = &params.cmd {
        c.insert("command".into(), json!(cmd));
    }
    if let Some(args) = &params.args {
        c.insert("args".into(), json!(args));
    }
    if !params.env.is_empty() {
        c.insert("env".into(), Value::Array(params.env.iter().map(EnvVar::to_json).collect()));
    }
    let mut requests = Map::new();
    let mut limits = Map::new();
    if let Some(cpu) = &params.cpu {
        requests.insert("cpu".into(), json!(cpu));
        limits.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = &params.memory {
        requests.insert("memory".into(), json!(memory));
        limits.insert("memory".into(), json!(memory));
    }
    if let Some(limit) = &params.limit {
        if let Some(cpu) = &limit.cpu {
            limits.insert("cpu".into(), json!(cpu));
        }
        if let Some(memory) = &limit.memory {
            limits.insert("memory".into(), json!(memory));
        }
    }
    if !requests.is_empty() || !limits.is_empty() {
        c.insert("resources".into(), json!({"requests": requests, "limits": limits}));
    }
    if with_ports {
        let ports: Vec<Value> = match (&params.port, params.ports.is_empty()) {
            (Some(port), true) => vec![json!({"containerPort": port})],
            _ => params
                .ports
                .iter()
                .map(|p| json!({"containerPort": p.container_port.unwrap_or(p.port), "name": port_name(p), "protocol": p.protocol}))
                .collect(),
        };
        if !ports.is_empty() {
            c.insert("ports".into(), Value::Array(ports));
        }
    }
    if !mounts.is_empty() {
        c.insert("volumeMounts".into(), Value::Array(mounts));
    }
    if let Some(probe) = &params.liveness_probe {
        c.insert("livenessProbe".into(), Value::Object(probe.clone()));
    }
    if let Some(probe) = &params.readiness_probe {
        c.insert("readinessProbe".into(), Value::Object(probe.clone()));
    }
    container
}

fn pod_template(ctx: &RenderContext, params: &Params, container: Value, volumes: Vec<Value>) -> Value {
    let mut labels: Map<String, Value> = params.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    labels.insert(well_known::OAM_NAME.into(), json!(ctx.app_name));
    labels.insert(well_known::OAM_COMPONENT.into(), json!(ctx.name));
    if params.add_revision_label {
        labels.insert(well_known::OAM_REVISION.into(), json!(ctx.app_revision));
    }
    let mut metadata = json!({"labels": labels});
    if !params.annotations.is_empty() {
        metadata["annotations"] = json!(params.annotations);
    }
    let mut spec = json!({"containers": [container]});
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    if !params.image_pull_secrets.is_empty() {
        spec["imagePullSecrets"] = Value::Array(params.image_pull_secrets.iter().map(|s| json!({"name": s})).collect());
    }
    if !params.host_aliases.is_empty() {
        spec["hostAliases"] = json!(params.host_aliases);
    }
    json!({"metadata": metadata, "spec": spec})
}

fn workload_metadata(ctx: &RenderContext, params: &Params) -> Value {
    let mut metadata = json!({"name": ctx.name});
    if !params.labels.is_empty() {
        metadata["labels"] = json!(params.labels);
    }
    if !params.annotations.is_empty() {
        metadata["annotations"] = json!(params.annotations);
    }
    metadata
}

/// The Service for ports marked `expose: true`.
fn exposing_service(ctx: &RenderContext, params: &Params, name: String, headless: bool) -> Option<Value> {
    let exposed: Vec<&Port> = params.ports.iter().filter(|p| p.expose || headless).collect();
    if exposed.is_empty() {
        return None;
    }
    let ports: Vec<Value> = exposed
        .iter()
        .map(|p| {
            let mut port =
                json!({"name": port_name(p), "port": p.port, "targetPort": p.container_port.unwrap_or(p.port), "protocol": p.protocol});
            if let (Some(node_port), ExposeType::NodePort) = (p.node_port, params.expose_type) {
                port["nodePort"] = json!(node_port);
            }
            port
        })
        .collect();
    let mut spec = json!({"selector": {(well_known::OAM_COMPONENT): ctx.name}, "ports": ports});
    if headless {
        spec["clusterIP"] = json!("None");
    } else {
        spec["type"] = json!(params.expose_type);
    }
    Some(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}))
}

/// Renders one built-in component type. `path` is where its properties are
/// (`spec.components[0].properties`), for errors.
pub fn render(type_: &str, properties: &Map<String, Value>, ctx: &RenderContext, path: &str) -> Result<ComponentOutput, Vec<Problem>> {
    match type_ {
        "k8s-objects" => return k8s_objects(properties, path),
        "ref-objects" => return ref_objects(properties, ctx, path),
        _ => {}
    }
    let allowed: Vec<&str> = match type_ {
        "webservice" | "daemon" | "statefulset" => CONTAINER_KEYS.iter().chain(PORT_KEYS).copied().collect(),
        "worker" => CONTAINER_KEYS.to_vec(),
        "task" => CONTAINER_KEYS.iter().chain(JOB_KEYS).copied().collect(),
        "cron-task" => CONTAINER_KEYS.iter().chain(JOB_KEYS).chain(CRON_KEYS).copied().collect(),
        other => unreachable!("not a built-in component type: {other}"),
    };
    let params: Params = params::read(properties, &allowed, path)?;
    let mut problems = Vec::new();
    let (volumes, mounts) = volumes(&params, path, &mut problems);
    let with_ports = matches!(type_, "webservice" | "daemon" | "statefulset");
    let template = pod_template(ctx, &params, container(ctx, &params, mounts, with_ports), volumes);
    let selector = json!({"matchLabels": {(well_known::OAM_COMPONENT): ctx.name}});
    let metadata = workload_metadata(ctx, &params);
    let mut outputs = Vec::new();
    let workload = match type_ {
        "webservice" | "worker" => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": {"replicas": 1, "selector": selector, "template": template}})
        }
        "daemon" => {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata, "spec": {"selector": selector, "template": template}})
        }
        "statefulset" => {
            let headless = format!("{}-headless", ctx.name);
            if let Some(service) = exposing_service(ctx, &params, headless.clone(), true) {
                outputs.push(Output { name: "headless".into(), object: service, trait_type: None });
            }
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata, "spec": {"replicas": 1, "selector": selector, "serviceName": headless, "template": template}})
        }
        "task" => json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec(&params, template)}),
        _ => {
            let Some(schedule) = &params.schedule else {
                problems
                    .push(Problem::new(join_path(path, "schedule"), "required field is missing: a cron schedule such as \"*/5 * * * *\""));
                return Err(problems);
            };
            let mut spec = json!({
                "schedule": schedule,
                "concurrencyPolicy": params.concurrency_policy.unwrap_or(ConcurrencyPolicy::Allow),
                "suspend": params.suspend.unwrap_or(false),
                "successfulJobsHistoryLimit": params.successful_jobs_history_limit.unwrap_or(3),
                "failedJobsHistoryLimit": params.failed_jobs_history_limit.unwrap_or(1),
                "jobTemplate": {"metadata": {"labels": template["metadata"]["labels"].clone()}, "spec": job_spec(&params, template)},
            });
            if let Some(deadline) = params.starting_deadline_seconds {
                spec["startingDeadlineSeconds"] = json!(deadline);
            }
            if let Some(zone) = &params.time_zone {
                spec["timeZone"] = json!(zone);
            }
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec})
        }
    };
    if matches!(type_, "webservice" | "daemon")
        && let Some(service) = exposing_service(ctx, &params, ctx.name.clone(), false)
    {
        outputs.push(Output { name: "webserviceExpose".into(), object: service, trait_type: None });
    }
    if type_ == "statefulset"
        && let Some(service) = exposing_service(ctx, &params, ctx.name.clone(), false)
    {
        outputs.push(Output { name: "statefulsetExpose".into(), object: service, trait_type: None });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ComponentOutput { workload: Some(workload), outputs, references: Vec::new() })
}

fn job_spec(params: &Params, mut template: Value) -> Value {
    template["spec"]["restartPolicy"] = json!(params.restart.unwrap_or(RestartPolicy::Never));
    let count = params.count.unwrap_or(1);
    let mut spec = json!({"parallelism": count, "completions": count, "template": template});
    if let Some(limit) = params.backoff_limit {
        spec["backoffLimit"] = json!(limit);
    }
    if let Some(deadline) = params.active_deadline_seconds {
        spec["activeDeadlineSeconds"] = json!(deadline);
    }
    if let Some(ttl) = params.ttl_seconds_after_finished {
        spec["ttlSecondsAfterFinished"] = json!(ttl);
    }
    spec
}

#[derive(Debug, Deserialize)]
struct ObjectsParams {
    objects: Vec<Value>,
}

/// `k8s-objects`: each object as written; it must at least say what it is.
fn k8s_objects(properties: &Map<String, Value>, path: &str) -> Result<ComponentOutput, Vec<Problem>> {
    let params: ObjectsParams = params::read(properties, &["objects"], path)?;
    let mut problems = Vec::new();
    let mut outputs = Vec::new();
    for (i, object) in params.objects.into_iter().enumerate() {
        let at = format!("{path}.objects[{i}]");
        for field in ["apiVersion", "kind"] {
            if object.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                problems.push(Problem::new(format!("{at}.{field}"), "required field is missing"));
            }
        }
        if object::name(&object).is_empty() {
            problems.push(Problem::new(format!("{at}.metadata.name"), "required field is missing"));
        }
        outputs.push(Output { name: format!("objects-{i}"), object, trait_type: None });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ComponentOutput { workload: None, outputs, references: Vec::new() })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefSelector {
    api_version: Option<String>,
    kind: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    cluster: Option<String>,
    label_selector: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct RefParams {
    objects: Vec<RefSelector>,
}

/// `ref-objects`: objects that exist in the target cluster already. They are
/// observed for health, never applied or pruned.
fn ref_objects(properties: &Map<String, Value>, ctx: &RenderContext, path: &str) -> Result<ComponentOutput, Vec<Problem>> {
    let params: RefParams = params::read(properties, &["objects"], path)?;
    let mut problems = Vec::new();
    let mut references = Vec::new();
    for (i, selector) in params.objects.into_iter().enumerate() {
        let Some(kind) = selector.kind.or(selector.resource) else {
            problems.push(Problem::new(format!("{path}.objects[{i}]"), "expected a kind or a resource (e.g. resource: deployments)"));
            continue;
        };
        if selector.name.is_none() && selector.label_selector.is_none() {
            problems.push(Problem::new(format!("{path}.objects[{i}].name"), "expected a name or a labelSelector"));
        }
        if selector.cluster.as_deref().is_some_and(|c| c != ctx.cluster && c != "local") {
            continue;
        }
        references.push(ObjectReference {
            api_version: selector.api_version,
            kind,
            name: selector.name,
            namespace: selector.namespace.or_else(|| Some(ctx.namespace.clone())),
            label_selector: selector.label_selector,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ComponentOutput { workload: None, outputs: Vec::new(), references })
}
