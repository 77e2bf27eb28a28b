//! KubeVela's built-in traits. A trait patches the component's workload,
//! adds objects beside it, or both. Each one declares which workloads it fits,
//! so attaching `scaler` to a `task` is an error, not a silent no-op.

use heimdall_api::labels as well_known;
use std::collections::BTreeMap;

use heimdall_model::Problem;
use heimdall_model::problem::join_path;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::component::EnvVar;
use crate::context::{ComponentOutput, Output, RenderContext};
use crate::object::{self, Object, json_merge_patch, json_patch, list_at, map_at, pod_spec_mut, pod_template_mut, with_mode};
use crate::params::{self, quantities, quantity, string_map};

/// Which workloads a trait fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fits {
    /// Deployments and StatefulSets: the workloads with replicas.
    Replicated,
    /// Any workload with a pod template.
    Pods,
    /// Any component with a workload object.
    Workload,
}

impl Fits {
    pub fn accepts(self, workload_kind: &str) -> bool {
        match self {
            Fits::Replicated => matches!(workload_kind, "Deployment" | "StatefulSet"),
            Fits::Pods => object::pod_template_path(workload_kind).is_some(),
            Fits::Workload => !workload_kind.is_empty(),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fits::Replicated => "workloads with replicas (Deployment, StatefulSet)",
            Fits::Pods => "workloads that run pods (Deployment, StatefulSet, DaemonSet, Job, CronJob)",
            Fits::Workload => "components with a workload object",
        }
    }
}

pub const BUILTIN: &[(&str, Fits)] = &[
    ("scaler", Fits::Replicated),
    ("gateway", Fits::Pods),
    ("pure-ingress", Fits::Pods),
    ("expose", Fits::Pods),
    ("labels", Fits::Workload),
    ("annotations", Fits::Workload),
    ("env", Fits::Pods),
    ("storage", Fits::Pods),
    ("sidecar", Fits::Pods),
    ("init-container", Fits::Pods),
    ("hpa", Fits::Replicated),
    ("cpuscaler", Fits::Replicated),
    ("resource", Fits::Pods),
    ("service-account", Fits::Pods),
    ("affinity", Fits::Pods),
    ("topologyspreadconstraints", Fits::Pods),
    ("securitycontext", Fits::Pods),
    ("podsecuritycontext", Fits::Pods),
    ("command", Fits::Pods),
    ("container-image", Fits::Pods),
    ("startup-probe", Fits::Pods),
    ("k8s-update-strategy", Fits::Workload),
    ("json-patch", Fits::Workload),
    ("json-merge-patch", Fits::Workload),
    ("service-binding", Fits::Pods),
    ("hostalias", Fits::Pods),
];

pub fn fits(type_: &str) -> Option<Fits> {
    BUILTIN.iter().find(|(name, _)| *name == type_).map(|(_, fits)| *fits)
}

type Result<T> = std::result::Result<T, Vec<Problem>>;

fn problem(path: &str, field: &str, message: impl Into<String>) -> Vec<Problem> {
    vec![Problem::new(join_path(path, field), message)]
}

/// Applies built-in trait `type_` to `component`. The caller has checked
/// that the trait fits the workload, so `component.workload` is present.
pub fn apply(type_: &str, properties: &Map<String, Value>, ctx: &RenderContext, path: &str, component: &mut ComponentOutput) -> Result<()> {
    let Some(workload) = component.workload.as_mut() else {
        return Err(problem(path, "", format!("trait {type_} needs a workload")));
    };
    let mut outputs = Vec::new();
    match type_ {
        "scaler" => scaler(properties, path, workload)?,
        "gateway" => gateway(properties, ctx, path, true, &mut outputs)?,
        "pure-ingress" => gateway(properties, ctx, path, false, &mut outputs)?,
        "expose" => expose(properties, ctx, path, &mut outputs)?,
        "labels" => metadata_map(properties, path, workload, "labels")?,
        "annotations" => metadata_map(properties, path, workload, "annotations")?,
        "env" => env(properties, ctx, path, workload)?,
        "storage" => storage(properties, ctx, path, workload, &mut outputs)?,
        "sidecar" => sidecar(properties, path, workload)?,
        "init-container" => init_container(properties, ctx, path, workload)?,
        "hpa" => {
            hpa(properties, ctx, path, &mut outputs)?;
            leave_replicas_to_the_autoscaler(workload);
        }
        "cpuscaler" => {
            cpuscaler(properties, ctx, path, &mut outputs)?;
            leave_replicas_to_the_autoscaler(workload);
        }
        "resource" => resource(properties, path, workload)?,
        "service-account" => service_account(properties, ctx, path, workload, &mut outputs)?,
        "affinity" => affinity(properties, path, workload)?,
        "topologyspreadconstraints" => topology_spread(properties, path, workload)?,
        "securitycontext" => security_context(properties, ctx, path, workload)?,
        "podsecuritycontext" => pod_security_context(properties, workload),
        "command" => command(properties, ctx, path, workload)?,
        "container-image" => container_image(properties, ctx, path, workload)?,
        "startup-probe" => startup_probe(properties, ctx, workload, path)?,
        "k8s-update-strategy" => update_strategy(properties, path, workload)?,
        "json-patch" => json_patch_trait(properties, path, workload)?,
        "json-merge-patch" => json_merge_patch(workload, &Value::Object(properties.clone())),
        "service-binding" => service_binding(properties, ctx, path, workload)?,
        "hostalias" => host_alias(properties, path, workload)?,
        other => unreachable!("not a built-in trait: {other}"),
    }
    component.outputs.extend(outputs.into_iter().map(|(name, object)| Output { name, object, trait_type: Some(type_.to_string()) }));
    Ok(())
}

/// With an autoscaler, `spec.replicas` is set once at creation and then left
/// alone, so delivery never fights the autoscaler.
fn leave_replicas_to_the_autoscaler(workload: &mut Object) {
    let annotations = map_at(workload, &["metadata", "annotations"]);
    let paths = annotations.get(well_known::APPLY_ONCE).and_then(Value::as_str).unwrap_or_default().to_string();
    if paths != "true" && !paths.split(',').any(|p| p == "spec.replicas") {
        let value = if paths.is_empty() { "spec.replicas".to_string() } else { format!("{paths},spec.replicas") };
        annotations.insert(well_known::APPLY_ONCE.into(), json!(value));
    }
}

/// The container a trait targets: `containerName` if given, else the one named
/// after the component, else the first.
fn container_mut<'a>(workload: &'a mut Object, name: Option<&str>, ctx: &RenderContext, path: &str) -> Result<&'a mut Map<String, Value>> {
    let Some(spec) = pod_spec_mut(workload) else {
        return Err(problem(path, "", "the workload has no pod template"));
    };
    let containers = list_at(spec, "containers");
    let names: Vec<String> = containers.iter().filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from)).collect();
    let index = match name {
        Some(name) => names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| problem(path, "containerName", format!("no container named {name:?}; the workload has {}", names.join(", "))))?,
        None => names.iter().position(|n| *n == ctx.name).unwrap_or(0),
    };
    match containers.get_mut(index) {
        Some(Value::Object(container)) => Ok(container),
        _ => Err(problem(path, "", "the workload has no containers")),
    }
}

fn all_containers_mut(workload: &mut Object) -> Vec<&mut Map<String, Value>> {
    match pod_spec_mut(workload) {
        Some(spec) => list_at(spec, "containers").iter_mut().filter_map(Value::as_object_mut).collect(),
        None => Vec::new(),
    }
}

#[derive(Deserialize)]
struct Scaler {
    #[serde(default = "one")]
    replicas: i32,
}

fn one() -> i32 {
    1
}

fn scaler(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: Scaler = params::read(properties, &["replicas"], path)?;
    if params.replicas < 0 {
        return Err(problem(path, "replicas", format!("expected 0 or more, got {}", params.replicas)));
    }
    map_at(workload, &["spec"]).insert("replicas".into(), json!(params.replicas));
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Gateway {
    domain: Option<String>,
    http: BTreeMap<String, u16>,
    #[serde(default = "nginx")]
    class: String,
    #[serde(default)]
    class_in_spec: bool,
    secret_name: Option<String>,
    name: Option<String>,
    #[serde(default = "implementation_specific")]
    path_type: String,
    #[serde(default, deserialize_with = "string_map")]
    annotations: BTreeMap<String, String>,
    gateway_host: Option<String>,
}

fn nginx() -> String {
    "nginx".into()
}

fn implementation_specific() -> String {
    "ImplementationSpecific".into()
}

/// `gateway` (a Service and an Ingress) and `pure-ingress` (the Ingress only).
fn gateway(
    properties: &Map<String, Value>,
    ctx: &RenderContext,
    path: &str,
    with_service: bool,
    outputs: &mut Vec<(String, Object)>,
) -> Result<()> {
    let allowed: &[&str] = if with_service {
        &["domain", "http", "class", "classInSpec", "secretName", "name", "pathType", "annotations", "gatewayHost"]
    } else {
        &["domain", "http", "class"]
    };
    let params: Gateway = params::read(properties, allowed, path)?;
    if params.http.is_empty() {
        return Err(problem(path, "http", "expected at least one path, e.g. {\"/\": 8080}"));
    }
    if with_service {
        let mut ports: Vec<u16> = params.http.values().copied().collect();
        ports.sort_unstable();
        ports.dedup();
        outputs.push((
            "service".into(),
            json!({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": ctx.name},
                "spec": {"selector": {(well_known::OAM_COMPONENT): ctx.name},
                         "ports": ports.iter().map(|p| json!({"name": format!("port-{p}"), "port": p, "targetPort": p})).collect::<Vec<_>>()},
            }),
        ));
    }
    let paths: Vec<Value> = params
        .http
        .iter()
        .map(|(route, port)| json!({"path": route, "pathType": params.path_type, "backend": {"service": {"name": ctx.name, "port": {"number": port}}}}))
        .collect();
    let mut rule = json!({"http": {"paths": paths}});
    if let Some(domain) = &params.domain {
        rule["host"] = json!(domain);
    }
    let mut annotations = params.annotations.clone();
    let mut spec = json!({"rules": [rule]});
    if params.class_in_spec {
        spec["ingressClassName"] = json!(params.class);
    } else {
        annotations.insert("kubernetes.io/ingress.class".into(), params.class.clone());
    }
    if let Some(host) = &params.gateway_host {
        annotations.insert("heimdall.dev/gateway-host".into(), host.clone());
    }
    if let Some(secret) = &params.secret_name {
        let hosts: Vec<&String> = params.domain.iter().collect();
        spec["tls"] = json!([{"hosts": hosts, "secretName": secret}]);
    }
    let mut metadata = json!({"name": params.name.clone().unwrap_or_else(|| ctx.name.clone())});
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    outputs.push(("ingress".into(), json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec})));
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExposePort {
    port: u16,
    name: Option<String>,
    protocol: Option<String>,
    target_port: Option<Value>,
    node_port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expose {
    #[serde(default)]
    port: Vec<u16>,
    #[serde(default)]
    ports: Vec<ExposePort>,
    #[serde(rename = "type", default = "cluster_ip")]
    type_: String,
    #[serde(default, deserialize_with = "string_map")]
    annotations: BTreeMap<String, String>,
    match_labels: Option<BTreeMap<String, String>>,
}

fn cluster_ip() -> String {
    "ClusterIP".into()
}

fn expose(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, outputs: &mut Vec<(String, Object)>) -> Result<()> {
    let params: Expose = params::read(properties, &["port", "ports", "type", "annotations", "matchLabels"], path)?;
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&params.type_.as_str()) {
        return Err(problem(path, "type", format!("expected ClusterIP, NodePort, LoadBalancer or ExternalName, got {:?}", params.type_)));
    }
    let mut ports: Vec<Value> = params.port.iter().map(|p| json!({"name": format!("port-{p}"), "port": p, "targetPort": p})).collect();
    for p in &params.ports {
        let mut port = json!({"name": p.name.clone().unwrap_or_else(|| format!("port-{}", p.port)), "port": p.port, "targetPort": p.target_port.clone().unwrap_or(json!(p.port))});
        if let Some(protocol) = &p.protocol {
            port["protocol"] = json!(protocol);
        }
        if let Some(node_port) = p.node_port {
            port["nodePort"] = json!(node_port);
        }
        ports.push(port);
    }
    if ports.is_empty() {
        return Err(problem(path, "ports", "expected at least one port"));
    }
    let selector = params.match_labels.unwrap_or_else(|| BTreeMap::from([(well_known::OAM_COMPONENT.to_string(), ctx.name.clone())]));
    let mut metadata = json!({"name": ctx.name});
    if !params.annotations.is_empty() {
        metadata["annotations"] = json!(params.annotations);
    }
    outputs.push((
        "service".into(),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {"selector": selector, "ports": ports, "type": params.type_}}),
    ));
    Ok(())
}

/// `labels` and `annotations`: on the workload and on its pod template.
fn metadata_map(properties: &Map<String, Value>, path: &str, workload: &mut Object, field: &str) -> Result<()> {
    let mut entries = Map::new();
    for (key, value) in properties {
        match value {
            Value::String(_) => {
                entries.insert(key.clone(), value.clone());
            }
            Value::Number(_) | Value::Bool(_) => {
                entries.insert(key.clone(), json!(value.to_string()));
            }
            Value::Null => {
                entries.insert(key.clone(), Value::Null);
            }
            other => return Err(problem(path, &format!("[{key:?}]"), format!("expected a string, got {other}"))),
        }
    }
    let apply = |target: &mut Map<String, Value>| {
        for (key, value) in &entries {
            if value.is_null() {
                target.remove(key);
            } else {
                target.insert(key.clone(), value.clone());
            }
        }
    };
    apply(map_at(workload, &["metadata", field]));
    if let Some(template) = pod_template_mut(workload) {
        let metadata = template.entry("metadata").or_insert_with(|| json!({}));
        apply(map_at(metadata, &[field]));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContainerEnv {
    container_name: String,
    #[serde(default, deserialize_with = "string_map")]
    env: BTreeMap<String, String>,
    #[serde(default)]
    replace: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Env {
    #[serde(default, deserialize_with = "string_map")]
    env: BTreeMap<String, String>,
    container_name: Option<String>,
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    containers: Vec<ContainerEnv>,
}

fn set_env(container: &mut Map<String, Value>, vars: &BTreeMap<String, String>, replace: bool) {
    let list = list_at(container, "env");
    if replace {
        list.clear();
    }
    // New variables are added in name order, so the output does not depend on map order.
    for (name, value) in vars {
        match list.iter_mut().find(|v| v["name"] == json!(name)) {
            Some(existing) => *existing = json!({"name": name, "value": value}),
            None => list.push(json!({"name": name, "value": value})),
        }
    }
}

fn env(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: Env = params::read(properties, &["env", "containerName", "replace", "containers"], path)?;
    if params.containers.is_empty() {
        set_env(container_mut(workload, params.container_name.as_deref(), ctx, path)?, &params.env, params.replace);
    }
    for (i, entry) in params.containers.iter().enumerate() {
        let at = format!("{path}.containers[{i}]");
        set_env(container_mut(workload, Some(&entry.container_name), ctx, &at)?, &entry.env, entry.replace);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PvcVolume {
    name: String,
    #[serde(default)]
    mount_only: bool,
    mount_path: Option<String>,
    sub_path: Option<String>,
    claim_name: Option<String>,
    volume_mode: Option<String>,
    volume_name: Option<String>,
    access_modes: Option<Vec<String>>,
    storage_class_name: Option<String>,
    resources: Option<PvcResources>,
    data_source_ref: Option<Value>,
    data_source: Option<Value>,
    selector: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PvcResources {
    #[serde(default, deserialize_with = "quantities")]
    requests: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "quantities")]
    limits: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MountToEnv {
    env_name: String,
    #[serde(alias = "secretKey")]
    config_map_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataVolume {
    name: String,
    #[serde(default)]
    mount_only: bool,
    mount_path: Option<String>,
    sub_path: Option<String>,
    mount_to_env: Option<MountToEnv>,
    #[serde(default)]
    mount_to_envs: Vec<MountToEnv>,
    default_mode: Option<i32>,
    read_only: Option<bool>,
    #[serde(default, deserialize_with = "string_map")]
    data: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    string_data: BTreeMap<String, String>,
    items: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SimpleVolume {
    name: String,
    mount_path: String,
    sub_path: Option<String>,
    medium: Option<String>,
    path: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    read_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Storage {
    #[serde(default)]
    pvc: Vec<PvcVolume>,
    #[serde(default)]
    config_map: Vec<DataVolume>,
    #[serde(default)]
    secret: Vec<DataVolume>,
    #[serde(default)]
    empty_dir: Vec<SimpleVolume>,
    #[serde(default)]
    host_path: Vec<SimpleVolume>,
}

struct Mounting<'a> {
    volumes: Vec<Value>,
    mounts: Vec<Value>,
    env: Vec<Value>,
    outputs: &'a mut Vec<(String, Object)>,
}

impl Mounting<'_> {
    fn mount(&mut self, name: &str, source: Value, mount_path: Option<&str>, sub_path: Option<&str>, read_only: Option<bool>) {
        let mut volume = json!({"name": name});
        if let (Some(volume), Some(source)) = (volume.as_object_mut(), source.as_object()) {
            volume.extend(source.clone());
        }
        if !self.volumes.iter().any(|v| v["name"] == json!(name)) {
            self.volumes.push(volume);
        }
        if let Some(mount_path) = mount_path {
            let mut mount = json!({"name": name, "mountPath": mount_path});
            if let Some(sub_path) = sub_path {
                mount["subPath"] = json!(sub_path);
            }
            if let Some(read_only) = read_only {
                mount["readOnly"] = json!(read_only);
            }
            self.mounts.push(mount);
        }
    }
}

fn storage(
    properties: &Map<String, Value>,
    ctx: &RenderContext,
    path: &str,
    workload: &mut Object,
    outputs: &mut Vec<(String, Object)>,
) -> Result<()> {
    let params: Storage = params::read(properties, &["pvc", "configMap", "secret", "emptyDir", "hostPath"], path)?;
    let mut m = Mounting { volumes: Vec::new(), mounts: Vec::new(), env: Vec::new(), outputs };
    for pvc in &params.pvc {
        let claim = pvc.claim_name.clone().unwrap_or_else(|| pvc.name.clone());
        m.mount(
            &pvc.name,
            json!({"persistentVolumeClaim": {"claimName": claim}}),
            pvc.mount_path.as_deref(),
            pvc.sub_path.as_deref(),
            None,
        );
        if !pvc.mount_only {
            let mut spec = json!({
                "accessModes": pvc.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
                "volumeMode": pvc.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
                "resources": {"requests": {"storage": "8Gi"}},
            });
            if let Some(resources) = &pvc.resources {
                if let Some(requests) = &resources.requests {
                    spec["resources"]["requests"] = json!(requests);
                }
                if let Some(limits) = &resources.limits {
                    spec["resources"]["limits"] = json!(limits);
                }
            }
            for (field, value) in [
                ("storageClassName", pvc.storage_class_name.clone().map(Value::from)),
                ("volumeName", pvc.volume_name.clone().map(Value::from)),
                ("dataSourceRef", pvc.data_source_ref.clone()),
                ("dataSource", pvc.data_source.clone()),
                ("selector", pvc.selector.clone()),
            ] {
                if let Some(value) = value {
                    spec[field] = value;
                }
            }
            m.outputs.push((
                format!("pvc-{}", pvc.name),
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim}, "spec": spec}),
            ));
        }
    }
    for (is_secret, list) in [(false, &params.config_map), (true, &params.secret)] {
        for volume in list {
            let source = if is_secret {
                json!({"secret": with_mode(json!({"secretName": volume.name}), volume.default_mode, &volume.items)})
            } else {
                json!({"configMap": with_mode(json!({"name": volume.name}), volume.default_mode, &volume.items)})
            };
            if volume.mount_path.is_some() {
                m.mount(&volume.name, source, volume.mount_path.as_deref(), volume.sub_path.as_deref(), volume.read_only);
            }
            for to_env in volume.mount_to_env.iter().chain(&volume.mount_to_envs) {
                let reference = if is_secret { "secretKeyRef" } else { "configMapKeyRef" };
                m.env.push(json!({"name": to_env.env_name, "valueFrom": {reference: {"name": volume.name, "key": to_env.config_map_key}}}));
            }
            if !volume.mount_only && (!volume.data.is_empty() || !volume.string_data.is_empty()) {
                let object = if is_secret {
                    let mut data = volume.string_data.clone();
                    data.extend(volume.data.clone());
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": volume.name}, "type": "Opaque", "stringData": data})
                } else {
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": volume.name}, "data": volume.data})
                };
                let prefix = if is_secret { "secret" } else { "configmap" };
                m.outputs.push((format!("{prefix}-{}", volume.name), object));
            }
        }
    }
    for volume in &params.empty_dir {
        let source = match volume.medium.as_deref().filter(|m| !m.is_empty()) {
            Some(medium) => json!({"emptyDir": {"medium": medium}}),
            None => json!({"emptyDir": {}}),
        };
        m.mount(&volume.name, source, Some(&volume.mount_path), volume.sub_path.as_deref(), volume.read_only);
    }
    for (i, volume) in params.host_path.iter().enumerate() {
        let Some(host) = &volume.path else {
            return Err(problem(path, &format!("hostPath[{i}].path"), "required field is missing"));
        };
        let mut source = json!({"path": host});
        if let Some(type_) = &volume.type_ {
            source["type"] = json!(type_);
        }
        m.mount(&volume.name, json!({"hostPath": source}), Some(&volume.mount_path), volume.sub_path.as_deref(), volume.read_only);
    }
    let (volumes, mounts, env) = (m.volumes, m.mounts, m.env);
    let container = container_mut(workload, None, ctx, path)?;
    list_at(container, "volumeMounts").extend(mounts);
    list_at(container, "env").extend(env);
    if let Some(spec) = pod_spec_mut(workload) {
        let existing = list_at(spec, "volumes");
        for volume in volumes {
            if !existing.iter().any(|v| v["name"] == volume["name"]) {
                existing.push(volume);
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarVolume {
    name: String,
    path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    name: String,
    image: String,
    cmd: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    volumes: Vec<SidecarVolume>,
    liveness_probe: Option<Value>,
    readiness_probe: Option<Value>,
}

fn sidecar(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: Sidecar =
        params::read(properties, &["name", "image", "cmd", "args", "env", "volumes", "livenessProbe", "readinessProbe"], path)?;
    let mut container = json!({"name": params.name, "image": params.image});
    if let Some(cmd) = params.cmd {
        container["command"] = json!(cmd);
    }
    if let Some(args) = params.args {
        container["args"] = json!(args);
    }
    if !params.env.is_empty() {
        container["env"] = Value::Array(params.env.iter().map(EnvVar::to_json).collect());
    }
    if !params.volumes.is_empty() {
        container["volumeMounts"] = Value::Array(params.volumes.iter().map(|v| json!({"name": v.name, "mountPath": v.path})).collect());
    }
    if let Some(probe) = params.liveness_probe {
        container["livenessProbe"] = probe;
    }
    if let Some(probe) = params.readiness_probe {
        container["readinessProbe"] = probe;
    }
    let Some(spec) = pod_spec_mut(workload) else {
        return Err(problem(path, "", "the workload has no pod template"));
    };
    let containers = list_at(spec, "containers");
    if containers.iter().any(|c| c["name"] == json!(params.name)) {
        return Err(problem(path, "name", format!("the workload already has a container named {:?}", params.name)));
    }
    containers.push(container);
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExtraMount {
    name: String,
    mount_path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitContainer {
    name: String,
    image: String,
    #[serde(default = "if_not_present")]
    image_pull_policy: String,
    cmd: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default = "workdir")]
    mount_name: String,
    app_mount_path: String,
    init_mount_path: String,
    #[serde(default)]
    extra_volume_mounts: Vec<ExtraMount>,
}

fn if_not_present() -> String {
    "IfNotPresent".into()
}

fn workdir() -> String {
    "workdir".into()
}

fn init_container(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: InitContainer = params::read(
        properties,
        &["name", "image", "imagePullPolicy", "cmd", "args", "env", "mountName", "appMountPath", "initMountPath", "extraVolumeMounts"],
        path,
    )?;
    let mut mounts = vec![json!({"name": params.mount_name, "mountPath": params.init_mount_path})];
    mounts.extend(params.extra_volume_mounts.iter().map(|m| json!({"name": m.name, "mountPath": m.mount_path})));
    let mut init = json!({"name": params.name, "image": params.image, "imagePullPolicy": params.image_pull_policy, "volumeMounts": mounts});
    if let Some(cmd) = params.cmd {
        init["command"] = json!(cmd);
    }
    if let Some(args) = params.args {
        init["args"] = json!(args);
    }
    if !params.env.is_empty() {
        init["env"] = Value::Array(params.env.iter().map(EnvVar::to_json).collect());
    }
    list_at(container_mut(workload, None, ctx, path)?, "volumeMounts")
        .push(json!({"name": params.mount_name, "mountPath": params.app_mount_path}));
    let Some(spec) = pod_spec_mut(workload) else {
        return Err(problem(path, "", "the workload has no pod template"));
    };
    list_at(spec, "initContainers").push(init);
    let volumes = list_at(spec, "volumes");
    if !volumes.iter().any(|v| v["name"] == json!(params.mount_name)) {
        volumes.push(json!({"name": params.mount_name, "emptyDir": {}}));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricTarget {
    #[serde(rename = "type", default = "utilization")]
    type_: String,
    value: u32,
}

fn utilization() -> String {
    "Utilization".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PodMetric {
    name: String,
    #[serde(deserialize_with = "quantity")]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hpa {
    #[serde(default = "one")]
    min: i32,
    #[serde(default = "ten")]
    max: i32,
    cpu_util: Option<u32>,
    mem_util: Option<u32>,
    cpu: Option<MetricTarget>,
    mem: Option<MetricTarget>,
    #[serde(default)]
    pod_custom_metrics: Vec<PodMetric>,
    #[serde(default = "apps_v1")]
    target_api_version: String,
    #[serde(default = "deployment")]
    target_kind: String,
}

fn ten() -> i32 {
    10
}

fn apps_v1() -> String {
    "apps/v1".into()
}

fn deployment() -> String {
    "Deployment".into()
}

fn resource_metric(name: &str, target: &MetricTarget, path: &str, field: &str) -> Result<Value> {
    let target = match target.type_.as_str() {
        "Utilization" => json!({"type": "Utilization", "averageUtilization": target.value}),
        "AverageValue" => json!({"type": "AverageValue", "averageValue": target.value.to_string()}),
        other => {
            return Err(problem(path, &format!("{field}.type"), format!("expected Utilization or AverageValue, got {other:?}")));
        }
    };
    Ok(json!({"type": "Resource", "resource": {"name": name, "target": target}}))
}

fn check_bounds(min: i32, max: i32, path: &str) -> Result<()> {
    if min < 1 || max < min {
        return Err(problem(path, "max", format!("expected 1 <= min <= max, got min {min} and max {max}")));
    }
    Ok(())
}

fn hpa(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, outputs: &mut Vec<(String, Object)>) -> Result<()> {
    let params: Hpa = params::read(
        properties,
        &["min", "max", "cpuUtil", "memUtil", "cpu", "mem", "podCustomMetrics", "targetAPIVersion", "targetKind"],
        path,
    )?;
    check_bounds(params.min, params.max, path)?;
    let mut metrics = Vec::new();
    let cpu = params.cpu.or(params.cpu_util.map(|value| MetricTarget { type_: utilization(), value }));
    let mem = params.mem.or(params.mem_util.map(|value| MetricTarget { type_: utilization(), value }));
    if let Some(cpu) = &cpu {
        metrics.push(resource_metric("cpu", cpu, path, "cpu")?);
    }
    if let Some(mem) = &mem {
        metrics.push(resource_metric("memory", mem, path, "mem")?);
    }
    for metric in &params.pod_custom_metrics {
        metrics.push(json!({"type": "Pods", "pods": {"metric": {"name": metric.name}, "target": {"type": "AverageValue", "averageValue": metric.value}}}));
    }
    if metrics.is_empty() {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}));
    }
    outputs.push((
        "hpa".into(),
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": ctx.name},
            "spec": {"scaleTargetRef": {"apiVersion": params.target_api_version, "kind": params.target_kind, "name": ctx.name},
                     "minReplicas": params.min, "maxReplicas": params.max, "metrics": metrics},
        }),
    ));
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpuScaler {
    #[serde(default = "one")]
    min: i32,
    #[serde(default = "ten")]
    max: i32,
    #[serde(default = "fifty")]
    cpu_util: u32,
    #[serde(default = "apps_v1")]
    target_api_version: String,
    #[serde(default = "deployment")]
    target_kind: String,
}

fn fifty() -> u32 {
    50
}

fn cpuscaler(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, outputs: &mut Vec<(String, Object)>) -> Result<()> {
    let params: CpuScaler = params::read(properties, &["min", "max", "cpuUtil", "targetAPIVersion", "targetKind"], path)?;
    check_bounds(params.min, params.max, path)?;
    outputs.push((
        "cpuscaler".into(),
        json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": ctx.name},
            "spec": {"scaleTargetRef": {"apiVersion": params.target_api_version, "kind": params.target_kind, "name": ctx.name},
                     "minReplicas": params.min, "maxReplicas": params.max, "targetCPUUtilizationPercentage": params.cpu_util},
        }),
    ));
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CpuMemory {
    #[serde(default, deserialize_with = "quantity")]
    cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    memory: Option<String>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default, deserialize_with = "quantity")]
    cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    memory: Option<String>,
    requests: Option<CpuMemory>,
    limits: Option<CpuMemory>,
}

fn resource(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: Resource = params::read(properties, &["cpu", "memory", "requests", "limits"], path)?;
    let mut requests = Map::new();
    let mut limits = Map::new();
    for (name, value) in [("cpu", &params.cpu), ("memory", &params.memory)] {
        if let Some(value) = value {
            requests.insert(name.into(), json!(value));
            limits.insert(name.into(), json!(value));
        }
    }
    for (target, source) in [(&mut requests, &params.requests), (&mut limits, &params.limits)] {
        if let Some(source) = source {
            for (name, value) in [("cpu", &source.cpu), ("memory", &source.memory)] {
                if let Some(value) = value {
                    target.insert(name.into(), json!(value));
                }
            }
        }
    }
    for container in all_containers_mut(workload) {
        let resources = map_at(container.entry("resources").or_insert_with(|| json!({})), &[]);
        if !requests.is_empty() {
            resources.insert("requests".into(), Value::Object(requests.clone()));
        }
        if !limits.is_empty() {
            resources.insert("limits".into(), Value::Object(limits.clone()));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Privilege {
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default = "namespace_scope")]
    scope: String,
}

fn namespace_scope() -> String {
    "namespace".into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceAccount {
    name: String,
    #[serde(default)]
    create: bool,
    #[serde(default)]
    privileges: Vec<Privilege>,
}

fn service_account(
    properties: &Map<String, Value>,
    ctx: &RenderContext,
    path: &str,
    workload: &mut Object,
    outputs: &mut Vec<(String, Object)>,
) -> Result<()> {
    let params: ServiceAccount = params::read(properties, &["name", "create", "privileges"], path)?;
    if let Some(spec) = pod_spec_mut(workload) {
        spec.insert("serviceAccountName".into(), json!(params.name));
    }
    if params.create {
        outputs.push(("service-account".into(), json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": params.name}})));
    }
    for (scope, role_kind, binding_kind) in [("namespace", "Role", "RoleBinding"), ("cluster", "ClusterRole", "ClusterRoleBinding")] {
        let rules: Vec<Value> = params
            .privileges
            .iter()
            .filter(|p| p.scope == scope)
            .map(|p| {
                let mut rule = json!({"verbs": p.verbs});
                for (field, values) in [
                    ("apiGroups", &p.api_groups),
                    ("resources", &p.resources),
                    ("resourceNames", &p.resource_names),
                    ("nonResourceURLs", &p.non_resource_urls),
                ] {
                    if !values.is_empty() {
                        rule[field] = json!(values);
                    }
                }
                rule
            })
            .collect();
        if rules.is_empty() {
            continue;
        }
        let role_name = if scope == "cluster" {
            format!("{}:{}:{}", ctx.app_namespace, ctx.name, params.name)
        } else {
            format!("{}:{}", ctx.name, params.name)
        };
        outputs.push((
            format!("{scope}-role"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": role_kind, "metadata": {"name": role_name}, "rules": rules}),
        ));
        outputs.push((
            format!("{scope}-role-binding"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind, "metadata": {"name": role_name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
                   "subjects": [{"kind": "ServiceAccount", "name": params.name, "namespace": ctx.namespace}]}),
        ));
    }
    for (i, privilege) in params.privileges.iter().enumerate() {
        if privilege.scope != "namespace" && privilege.scope != "cluster" {
            return Err(problem(
                path,
                &format!("privileges[{i}].scope"),
                format!("expected namespace or cluster, got {:?}", privilege.scope),
            ));
        }
    }
    Ok(())
}

/// KubeVela writes selector expressions without an operator; Kubernetes needs one.
fn default_operators(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(expressions)) = map.get_mut("matchExpressions") {
                for expression in expressions.iter_mut().filter_map(Value::as_object_mut) {
                    if !expression.contains_key("operator") {
                        let has_values = expression.get("values").and_then(Value::as_array).is_some_and(|v| !v.is_empty());
                        expression.insert("operator".into(), json!(if has_values { "In" } else { "Exists" }));
                    }
                }
            }
            map.values_mut().for_each(default_operators);
        }
        Value::Array(items) => items.iter_mut().for_each(default_operators),
        _ => {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffinityTerms {
    required: Option<Value>,
    preferred: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Affinity {
    pod_affinity: Option<AffinityTerms>,
    pod_anti_affinity: Option<AffinityTerms>,
    node_affinity: Option<AffinityTerms>,
    tolerations: Option<Vec<Value>>,
}

fn affinity(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: Affinity = params::read(properties, &["podAffinity", "podAntiAffinity", "nodeAffinity", "tolerations"], path)?;
    let mut affinity = Map::new();
    for (field, terms) in
        [("podAffinity", &params.pod_affinity), ("podAntiAffinity", &params.pod_anti_affinity), ("nodeAffinity", &params.node_affinity)]
    {
        let Some(terms) = terms else { continue };
        let mut converted = Map::new();
        if let Some(required) = &terms.required {
            converted.insert("requiredDuringSchedulingIgnoredDuringExecution".into(), required.clone());
        }
        if let Some(preferred) = &terms.preferred {
            converted.insert("preferredDuringSchedulingIgnoredDuringExecution".into(), preferred.clone());
        }
        affinity.insert(field.into(), Value::Object(converted));
    }
    let mut affinity = Value::Object(affinity);
    default_operators(&mut affinity);
    let Some(spec) = pod_spec_mut(workload) else {
        return Err(problem(path, "", "the workload has no pod template"));
    };
    if affinity.as_object().is_some_and(|a| !a.is_empty()) {
        object::strategic_merge(spec.entry("affinity").or_insert_with(|| json!({})), &affinity);
    }
    if let Some(tolerations) = params.tolerations {
        list_at(spec, "tolerations").extend(tolerations);
    }
    Ok(())
}

#[derive(Deserialize)]
struct TopologySpread {
    constraints: Vec<Value>,
}

fn topology_spread(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: TopologySpread = params::read(properties, &["constraints"], path)?;
    let mut constraints = Value::Array(params.constraints);
    default_operators(&mut constraints);
    if let (Some(spec), Value::Array(constraints)) = (pod_spec_mut(workload), constraints) {
        list_at(spec, "topologySpreadConstraints").extend(constraints);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    container_name: Option<String>,
    allow_privilege_escalation: Option<bool>,
    read_only_root_filesystem: Option<bool>,
    privileged: Option<bool>,
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    add_capabilities: Option<Vec<String>>,
    drop_capabilities: Option<Vec<String>>,
}

fn security_context(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: SecurityContext = params::read(
        properties,
        &[
            "containerName",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "privileged",
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "addCapabilities",
            "dropCapabilities",
        ],
        path,
    )?;
    let container = container_mut(workload, params.container_name.as_deref(), ctx, path)?;
    let context = map_at(container.entry("securityContext").or_insert_with(|| json!({})), &[]);
    for (field, value) in [
        ("allowPrivilegeEscalation", params.allow_privilege_escalation.map(Value::from)),
        ("readOnlyRootFilesystem", params.read_only_root_filesystem.map(Value::from)),
        ("privileged", params.privileged.map(Value::from)),
        ("runAsUser", params.run_as_user.map(Value::from)),
        ("runAsGroup", params.run_as_group.map(Value::from)),
        ("runAsNonRoot", params.run_as_non_root.map(Value::from)),
    ] {
        if let Some(value) = value {
            context.insert(field.into(), value);
        }
    }
    if let Some(add) = params.add_capabilities {
        map_at(context.entry("capabilities").or_insert_with(|| json!({})), &[]).insert("add".into(), json!(add));
    }
    if let Some(drop) = params.drop_capabilities {
        map_at(context.entry("capabilities").or_insert_with(|| json!({})), &[]).insert("drop".into(), json!(drop));
    }
    Ok(())
}

fn pod_security_context(properties: &Map<String, Value>, workload: &mut Object) {
    if let Some(spec) = pod_spec_mut(workload) {
        object::strategic_merge(spec.entry("securityContext").or_insert_with(|| json!({})), &Value::Object(properties.clone()));
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CommandSpec {
    container_name: Option<String>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    add_args: Vec<String>,
    #[serde(default)]
    del_args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Command {
    container_name: Option<String>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default)]
    add_args: Vec<String>,
    #[serde(default)]
    del_args: Vec<String>,
    #[serde(default)]
    containers: Vec<CommandSpec>,
}

fn set_command(container: &mut Map<String, Value>, spec: &CommandSpec) {
    if let Some(command) = &spec.command {
        container.insert("command".into(), json!(command));
    }
    if let Some(args) = &spec.args {
        container.insert("args".into(), json!(args));
    }
    if !spec.add_args.is_empty() || !spec.del_args.is_empty() {
        let args = list_at(container, "args");
        args.extend(spec.add_args.iter().map(|a| json!(a)));
        args.retain(|a| !spec.del_args.iter().any(|d| a == &json!(d)));
    }
}

fn command(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: Command = params::read(properties, &["containerName", "command", "args", "addArgs", "delArgs", "containers"], path)?;
    if params.containers.is_empty() {
        let spec = CommandSpec {
            container_name: params.container_name,
            command: params.command,
            args: params.args,
            add_args: params.add_args,
            del_args: params.del_args,
        };
        set_command(container_mut(workload, spec.container_name.as_deref(), ctx, path)?, &spec);
    }
    for (i, spec) in params.containers.iter().enumerate() {
        set_command(container_mut(workload, spec.container_name.as_deref(), ctx, &format!("{path}.containers[{i}]"))?, spec);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImageSpec {
    container_name: Option<String>,
    image: String,
    image_pull_policy: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerImage {
    container_name: Option<String>,
    image: Option<String>,
    image_pull_policy: Option<String>,
    #[serde(default)]
    containers: Vec<ImageSpec>,
}

fn container_image(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: ContainerImage = params::read(properties, &["containerName", "image", "imagePullPolicy", "containers"], path)?;
    let mut specs = params.containers;
    if specs.is_empty() {
        let Some(image) = params.image else {
            return Err(problem(path, "image", "required field is missing"));
        };
        specs.push(ImageSpec { container_name: params.container_name, image, image_pull_policy: params.image_pull_policy });
    }
    for spec in specs {
        let container = container_mut(workload, spec.container_name.as_deref(), ctx, path)?;
        container.insert("image".into(), json!(spec.image));
        if let Some(policy) = spec.image_pull_policy {
            container.insert("imagePullPolicy".into(), json!(policy));
        }
    }
    Ok(())
}

fn startup_probe(properties: &Map<String, Value>, ctx: &RenderContext, workload: &mut Object, path: &str) -> Result<()> {
    const PROBE: &[&str] = &[
        "containerName",
        "exec",
        "httpGet",
        "grpc",
        "tcpSocket",
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "successThreshold",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    ];
    let mut probe: Map<String, Value> = params::read(properties, PROBE, path)?;
    let name = probe.remove("containerName").and_then(|v| v.as_str().map(String::from));
    container_mut(workload, name.as_deref(), ctx, path)?.insert("startupProbe".into(), Value::Object(probe));
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RollingStrategy {
    max_surge: Option<Value>,
    max_unavailable: Option<Value>,
    partition: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Strategy {
    #[serde(rename = "type", default = "rolling_update")]
    type_: String,
    rolling_strategy: Option<RollingStrategy>,
}

fn rolling_update() -> String {
    "RollingUpdate".into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStrategy {
    #[serde(default = "apps_v1", rename = "targetAPIVersion")]
    target_api_version: String,
    #[serde(default = "deployment")]
    target_kind: String,
    strategy: Strategy,
}

fn update_strategy(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: UpdateStrategy = params::read(properties, &["targetAPIVersion", "targetKind", "strategy"], path)?;
    let kind = object::kind(workload).to_string();
    if params.target_kind != kind || params.target_api_version != object::api_version(workload) {
        return Err(problem(
            path,
            "targetKind",
            format!("the workload is a {kind} ({}), not a {}", object::api_version(workload), params.target_kind),
        ));
    }
    let rolling = params.strategy.rolling_strategy.as_ref();
    let surge = rolling.and_then(|r| r.max_surge.clone()).unwrap_or(json!("25%"));
    let unavailable = rolling.and_then(|r| r.max_unavailable.clone()).unwrap_or(json!("25%"));
    let type_ = params.strategy.type_.as_str();
    let (field, value) = match (kind.as_str(), type_) {
        ("Deployment", "RollingUpdate") => {
            ("strategy", json!({"type": type_, "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}))
        }
        ("Deployment", "Recreate") => ("strategy", json!({"type": type_})),
        ("StatefulSet", "RollingUpdate") => {
            ("updateStrategy", json!({"type": type_, "rollingUpdate": {"partition": rolling.and_then(|r| r.partition).unwrap_or(0)}}))
        }
        ("StatefulSet" | "DaemonSet", "OnDelete") => ("updateStrategy", json!({"type": type_})),
        ("DaemonSet", "RollingUpdate") => {
            ("updateStrategy", json!({"type": type_, "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}))
        }
        _ => {
            return Err(problem(path, "strategy.type", format!("{type_:?} is not an update strategy of a {kind}")));
        }
    };
    map_at(workload, &["spec"]).insert(field.into(), value);
    Ok(())
}

#[derive(Deserialize)]
struct JsonPatch {
    operations: Vec<Value>,
}

fn json_patch_trait(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: JsonPatch = params::read(properties, &["operations"], path)?;
    json_patch(workload, &params.operations).map_err(|(index, message)| problem(path, &format!("operations[{index}]"), message))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Binding {
    secret: Option<String>,
    configmap: Option<String>,
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceBinding {
    env_mappings: BTreeMap<String, Binding>,
}

fn service_binding(properties: &Map<String, Value>, ctx: &RenderContext, path: &str, workload: &mut Object) -> Result<()> {
    let params: ServiceBinding = params::read(properties, &["envMappings"], path)?;
    let mut vars = Vec::new();
    for (env, binding) in &params.env_mappings {
        let key = binding.key.clone().unwrap_or_else(|| env.clone());
        let from = match (&binding.secret, &binding.configmap) {
            (Some(secret), None) => json!({"secretKeyRef": {"name": secret, "key": key}}),
            (None, Some(configmap)) => json!({"configMapKeyRef": {"name": configmap, "key": key}}),
            _ => {
                return Err(problem(path, &format!("envMappings.{env}"), "expected exactly one of secret or configmap"));
            }
        };
        vars.push(json!({"name": env, "valueFrom": from}));
    }
    let env = list_at(container_mut(workload, None, ctx, path)?, "env");
    for var in vars {
        env.retain(|v| v["name"] != var["name"]);
        env.push(var);
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostAliases {
    host_aliases: Vec<HostAlias>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct HostAlias {
    ip: String,
    hostnames: Vec<String>,
}

fn host_alias(properties: &Map<String, Value>, path: &str, workload: &mut Object) -> Result<()> {
    let params: HostAliases = params::read(properties, &["hostAliases"], path)?;
    if let Some(spec) = pod_spec_mut(workload) {
        let aliases = list_at(spec, "hostAliases");
        for alias in params.host_aliases {
            aliases.retain(|a| a["ip"] != json!(alias.ip));
            aliases.push(json!(alias));
        }
    }
    Ok(())
}
