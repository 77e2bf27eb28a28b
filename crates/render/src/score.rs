//! Score workloads (score.dev/v1b1) to Kubernetes objects, as score-k8s
//! would make them: a Deployment, a Service for `service.ports`, ConfigMaps
//! for files, and the objects of the built-in resource types.
//!
//! Built-in resource types: `service` and `endpoint` (another service's
//! name, host and port), `dns` (a host name), `route` (an Ingress rule) and
//! `volume` (an emptyDir). Types such as `postgres` or `redis` are provided
//! by Capabilities; until a platform defines one, using it is an error.

use heimdall_api::labels as well_known;
use std::collections::BTreeMap;

use heimdall_model::spec::deserialize_at;
use heimdall_model::spec::score::{Container, WorkloadSpec};
use heimdall_model::{Problem, Resource};
use serde_json::{Map, Value, json};

use crate::object::Object;
use crate::plan::{self, Placement};
use crate::platform::Platform;
use crate::render::{Finisher, Origin, RenderOptions, Rendered, TargetBuilder};

pub const BUILTIN_RESOURCE_TYPES: &[&str] = &["service", "endpoint", "dns", "route", "volume", "secret"];
const COMPONENT_TYPE: &str = "score-workload";

/// Outputs of one resource, by output name.
type Outputs = BTreeMap<String, Value>;

struct Placeholders<'a> {
    metadata: &'a Value,
    resources: &'a BTreeMap<String, Outputs>,
    /// Resources of type `secret`: resource name -> Secret name.
    secrets: &'a BTreeMap<String, String>,
    /// Outputs of claims read from a connection Secret: (resource, output) -> (Secret, key).
    claim_secrets: &'a BTreeMap<(String, String), (String, String)>,
    /// Secret keys read since the last `take_secret_reads`: env var -> (Secret, key).
    secret_reads: std::cell::RefCell<BTreeMap<String, (String, String)>>,
}

/// The environment variable a `${resources.<resource>.<key>}` of a secret
/// becomes: Kubernetes expands `$(VAR)` in later variables, command and args,
/// so a secret can sit inside a larger value without Heimdall seeing it.
fn secret_variable(resource: &str, key: &str) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect::<String>();
    format!("SECRET_{}_{}", clean(resource), clean(key))
}

impl Placeholders<'_> {
    /// Expands `${...}` in `text`; `$${` is a literal `${`.
    fn expand(&self, text: &str, path: &str) -> Result<String, Problem> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            if let Some(escaped) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = escaped;
            } else if let Some(inner) = after.strip_prefix("${") {
                let end = inner.find('}').ok_or_else(|| Problem::new(path, format!("unclosed placeholder in {text:?}")))?;
                out.push_str(&self.resolve(&inner[..end], path)?);
                rest = &inner[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, reference: &str, path: &str) -> Result<String, Problem> {
        let parts: Vec<&str> = reference.split('.').collect();
        let value = match parts.as_slice() {
            ["metadata", rest @ ..] => rest.iter().try_fold(self.metadata, |v, key| v.get(key)),
            ["resources", name] => self.resources.get(*name).and_then(|o| o.get("source")),
            ["resources", name, key @ ..] if self.secrets.contains_key(*name) => {
                let key = key.join(".");
                heimdall_model::validation::check_secret_key(&key)
                    .map_err(|message| Problem::new(path, format!("${{{reference}}}: {message}")))?;
                let variable = secret_variable(name, &key);
                self.secret_reads.borrow_mut().insert(variable.clone(), (self.secrets[*name].clone(), key));
                return Ok(format!("$({variable})"));
            }
            ["resources", name, output] if self.claim_secrets.contains_key(&(name.to_string(), output.to_string())) => {
                let (secret, key) = &self.claim_secrets[&(name.to_string(), output.to_string())];
                let variable = secret_variable(name, output);
                self.secret_reads.borrow_mut().insert(variable.clone(), (secret.clone(), key.clone()));
                return Ok(format!("$({variable})"));
            }
            ["resources", name, output @ ..] => {
                let outputs = self.resources.get(*name).ok_or_else(|| {
                    let known: Vec<&str> = self.resources.keys().map(String::as_str).collect();
                    Problem::new(
                        path,
                        format!(
                            "${{{reference}}} refers to resource {name:?}, which the workload does not declare (declared: {})",
                            known.join(", ")
                        ),
                    )
                })?;
                let key = output.join(".");
                Some(outputs.get(&key).ok_or_else(|| {
                    let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                    Problem::new(path, format!("${{{reference}}}: resource {name:?} has no output {key:?} (it has: {})", known.join(", ")))
                })?)
            }
            _ => None,
        };
        match value {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) if !other.is_object() && !other.is_array() => Ok(other.to_string()),
            _ => Err(Problem::new(
                path,
                format!("${{{reference}}} refers to nothing: expected metadata.<field> or resources.<name>.<output>"),
            )),
        }
    }
}

/// Outputs of the built-in resource types.
fn provision(
    workload: &str,
    namespace: &str,
    name: &str,
    type_: &str,
    params: &Map<String, Value>,
    id: Option<&str>,
    path: &str,
) -> Result<Outputs, Problem> {
    let service_name = id.unwrap_or(name).to_string();
    let outputs: Outputs = match type_ {
        "service" => BTreeMap::from([("name".to_string(), json!(service_name)), ("host".to_string(), json!(service_name))]),
        "endpoint" => {
            let port = params.get("port").cloned().unwrap_or(json!(80));
            let port_text = port.as_u64().map_or_else(|| port.as_str().unwrap_or("80").to_string(), |p| p.to_string());
            BTreeMap::from([
                ("name".to_string(), json!(service_name)),
                ("host".to_string(), json!(service_name)),
                ("port".to_string(), json!(port_text)),
                ("url".to_string(), json!(format!("http://{service_name}:{port_text}"))),
            ])
        }
        "dns" => BTreeMap::from([("host".to_string(), json!(format!("{workload}-{name}.{namespace}.localhost")))]),
        "route" => BTreeMap::new(),
        "volume" => BTreeMap::from([("source".to_string(), json!(format!("volume:{name}")))]),
        // Keys resolve to secretKeyRefs (see `Placeholders::resolve`); the
        // resource itself, as a volume source, mounts the whole Secret.
        "secret" => {
            let secret = params.get("name").and_then(Value::as_str).unwrap_or(name);
            heimdall_model::validation::check_dns_subdomain(secret).map_err(|m| Problem::new(format!("{path}.params.name"), m))?;
            BTreeMap::from([("source".to_string(), json!(format!("secret:{secret}")))])
        }
        other => {
            return Err(Problem::new(
                format!("{path}.type"),
                format!(
                    "resource type {other:?} is neither built in ({}) nor a Capability of this platform",
                    BUILTIN_RESOURCE_TYPES.join(", ")
                ),
            ));
        }
    };
    Ok(outputs)
}

/// Score's deprecated list forms of `files` and `volumes` become the map form.
fn normalize_list(value: &Option<Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let target = item.get("target")?.as_str()?.to_string();
                let mut rest = item.as_object()?.clone();
                rest.remove("target");
                Some((target, Value::Object(rest)))
            })
            .collect(),
        _ => Map::new(),
    }
}

pub use heimdall_model::spec::score::inline_file_sources;

fn probe(probe: &Value, path: &str) -> Result<Value, Problem> {
    let mut out = Map::new();
    if let Some(http) = probe.get("httpGet") {
        out.insert("httpGet".into(), http.clone());
    }
    if let Some(exec) = probe.get("exec") {
        out.insert("exec".into(), exec.clone());
    }
    if out.is_empty() {
        return Err(Problem::new(path, "expected httpGet or exec"));
    }
    Ok(Value::Object(out))
}

fn sanitize(target: &str) -> String {
    let cleaned: String =
        target.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' }).collect();
    cleaned.trim_matches('-').to_string()
}

struct Built {
    objects: Vec<Object>,
}

#[allow(clippy::too_many_arguments)]
fn container(
    workload: &str,
    name: &str,
    container: &Container,
    placeholders: &Placeholders,
    image_override: Option<&str>,
    volumes: &mut Vec<Value>,
    built: &mut Built,
    path: &str,
) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let image = match (container.image.as_str(), image_override) {
        (".", Some(image)) => image.to_string(),
        (".", None) => {
            return Err(vec![Problem::new(
                format!("{path}.image"),
                "\".\" means the image is given at deploy time; pass one (heimdall render --image IMAGE)",
            )]);
        }
        (image, _) => image.to_string(),
    };
    let mut out = json!({"name": name, "image": image});
    let expand_all = |values: &[String], field: &str, problems: &mut Vec<Problem>| -> Vec<String> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| placeholders.expand(v, &format!("{path}.{field}[{i}]")).map_err(|p| problems.push(p)).ok())
            .collect()
    };
    if !container.command.is_empty() {
        out["command"] = json!(expand_all(&container.command, "command", &mut problems));
    }
    if !container.args.is_empty() {
        out["args"] = json!(expand_all(&container.args, "args", &mut problems));
    }
    let mut env = Vec::new();
    // Secret keys read by command and args (expanded above), and inside larger values.
    let mut hidden = std::mem::take(&mut *placeholders.secret_reads.borrow_mut());
    for (key, value) in &container.variables {
        let expanded = placeholders.expand(value, &format!("{path}.variables.{key}"));
        let reads = std::mem::take(&mut *placeholders.secret_reads.borrow_mut());
        match expanded {
            Ok(expanded) => match reads.iter().next() {
                // A variable that is exactly one secret key reads it directly.
                Some((variable, (secret, secret_key))) if reads.len() == 1 && expanded == format!("$({variable})") => {
                    env.push(json!({"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_key}}}));
                }
                _ => {
                    hidden.extend(reads);
                    env.push(json!({"name": key, "value": expanded}));
                }
            },
            Err(p) => problems.push(p),
        }
    }
    // Kubernetes expands `$(VAR)` only for variables defined before: these come first.
    let hidden: Vec<Value> = hidden
        .into_iter()
        .map(|(variable, (secret, secret_key))| json!({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_key}}}))
        .collect();
    if !hidden.is_empty() {
        env.splice(0..0, hidden);
    }
    if !env.is_empty() {
        out["env"] = Value::Array(env);
    }
    if let Some(resources) = &container.resources {
        out["resources"] = resources.clone();
    }
    for (field, value) in [("livenessProbe", &container.liveness_probe), ("readinessProbe", &container.readiness_probe)] {
        if let Some(value) = value {
            match probe(value, &format!("{path}.{field}")) {
                Ok(p) => out[field] = p,
                Err(p) => problems.push(p),
            }
        }
    }
    let mut mounts = Vec::new();
    let files = normalize_list(&container.files);
    if !files.is_empty() {
        let config_name = format!("{workload}-{name}-files");
        let mut data = Map::new();
        let mut binary = Map::new();
        let volume_name = format!("files-{name}");
        for (target, file) in &files {
            let at = format!("{path}.files[{target:?}]");
            let key = sanitize(target);
            if let Some(content) = file.get("content").and_then(Value::as_str) {
                let no_expand = file.get("noExpand").and_then(Value::as_bool).unwrap_or(false);
                let content = if no_expand { Ok(content.to_string()) } else { placeholders.expand(content, &at) };
                let content = content.and_then(|content| {
                    if std::mem::take(&mut *placeholders.secret_reads.borrow_mut()).is_empty() {
                        Ok(content)
                    } else {
                        // A file is a ConfigMap: a secret value would be stored in plain text.
                        Err(Problem::new(
                            &at,
                            "a file's content may not read a secret (files are ConfigMaps); mount the secret as a volume (source: ${resources.<secret>}) or read it in variables",
                        ))
                    }
                });
                match content {
                    Ok(content) => {
                        data.insert(key.clone(), json!(content));
                    }
                    Err(p) => problems.push(p),
                }
            } else if let Some(content) = file.get("binaryContent").and_then(Value::as_str) {
                binary.insert(key.clone(), json!(content));
            } else if file.get("source").is_some() {
                problems.push(Problem::new(
                    format!("{at}.source"),
                    "file sources must be inlined before rendering; heimdall apply and heimdall render read them next to the Score file",
                ));
                continue;
            } else {
                problems.push(Problem::new(at, "expected content, binaryContent or source"));
                continue;
            }
            let mut mount = json!({"name": volume_name, "mountPath": target, "subPath": key, "readOnly": true});
            if let Some(mode) = file.get("mode").and_then(Value::as_str) {
                mount["readOnly"] = json!(!mode.ends_with(['6', '7', '2', '3']));
            }
            mounts.push(mount);
        }
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": config_name}});
        if !data.is_empty() {
            config["data"] = Value::Object(data);
        }
        if !binary.is_empty() {
            config["binaryData"] = Value::Object(binary);
        }
        built.objects.push(config);
        volumes.push(json!({"name": volume_name, "configMap": {"name": config_name}}));
    }
    for (target, volume) in &normalize_list(&container.volumes) {
        let at = format!("{path}.volumes[{target:?}]");
        let source = volume.get("source").and_then(Value::as_str).unwrap_or_default();
        let resolved = match placeholders.expand(source, &format!("{at}.source")) {
            Ok(resolved) => resolved,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let volume_name = match resolved.strip_prefix("volume:") {
            None if resolved.starts_with("secret:") => {
                let secret = &resolved["secret:".len()..];
                let volume_name = format!("secret-{}", sanitize(secret));
                if !volumes.iter().any(|v| v["name"] == json!(volume_name)) {
                    volumes.push(json!({"name": volume_name, "secret": {"secretName": secret}}));
                }
                volume_name
            }
            Some(resource) => {
                let volume_name = format!("volume-{resource}");
                if !volumes.iter().any(|v| v["name"] == json!(volume_name)) {
                    volumes.push(json!({"name": volume_name, "emptyDir": {}}));
                }
                volume_name
            }
            // A plain name refers to a PersistentVolumeClaim that exists.
            None => {
                let volume_name = format!("claim-{}", sanitize(&resolved));
                if !volumes.iter().any(|v| v["name"] == json!(volume_name)) {
                    volumes.push(json!({"name": volume_name, "persistentVolumeClaim": {"claimName": resolved}}));
                }
                volume_name
            }
        };
        let mut mount = json!({"name": volume_name, "mountPath": target});
        if let Some(sub_path) = volume.get("path").and_then(Value::as_str) {
            mount["subPath"] = json!(sub_path);
        }
        if let Some(read_only) = volume.get("readOnly").and_then(Value::as_bool) {
            mount["readOnly"] = json!(read_only);
        }
        mounts.push(mount);
    }
    if !mounts.is_empty() {
        out["volumeMounts"] = Value::Array(mounts);
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// A Score resource of a capability's type.
fn is_claim(platform: &Platform, type_: &str) -> bool {
    !BUILTIN_RESOURCE_TYPES.contains(&type_) && platform.capability(type_).is_some()
}

pub(crate) fn render_workload(app: &Resource, platform: &Platform, options: &RenderOptions) -> Result<Rendered, Vec<Problem>> {
    let spec: WorkloadSpec = deserialize_at(&app.spec, "spec").map_err(|p| vec![p])?;
    let name = app.metadata.name.clone();
    let namespace = app.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let mut problems = Vec::new();
    let mut outputs = BTreeMap::new();
    for (resource_name, resource) in &spec.resources {
        if is_claim(platform, &resource.type_) {
            continue;
        }
        let params = resource.params.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
        match provision(
            &name,
            &namespace,
            resource_name,
            &resource.type_,
            &params,
            resource.id.as_deref(),
            &format!("spec.resources.{resource_name}"),
        ) {
            Ok(out) => {
                outputs.insert(resource_name.clone(), out);
            }
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let empty_spec = heimdall_model::spec::application::ApplicationSpec { components: Vec::new(), policies: Vec::new(), workflow: None };
    let placements = plan::Context {
        spec: &empty_spec,
        app_namespace: &platform.default_namespace(&namespace, &app.metadata.name),
        platform,
        environment: options.environment.as_deref(),
        approvals: &options.approvals,
    }
    .plan_default()?;
    let revision = format!("{name}-v{}", app.metadata.generation.unwrap_or(1));
    let claims: Vec<(&String, &heimdall_model::spec::score::ResourceRequest)> =
        spec.resources.iter().filter(|(_, r)| is_claim(platform, &r.type_)).collect();
    let mut builders: BTreeMap<(Option<String>, String, String), TargetBuilder> = BTreeMap::new();
    let mut warnings = Vec::new();
    let origin = |platform: bool| Origin {
        component: Some((name.clone(), COMPONENT_TYPE.to_string())),
        trait_type: None,
        output: None,
        path: "spec".into(),
        wave: 0,
        platform,
    };
    // Without a target the workload is still built once, so its mistakes are found.
    let targets: Vec<Option<&Placement>> = if placements.is_empty() { vec![None] } else { placements.iter().map(Some).collect() };
    for placement in targets {
        let mut target_outputs = outputs.clone();
        let mut claim_secrets = BTreeMap::new();
        let mut claim_objects = Vec::new();
        let mut instances = Vec::new();
        for (resource_name, resource) in &claims {
            let at = format!("spec.resources.{resource_name}");
            let Some(placement) = placement else {
                let declared = platform.capability(&resource.type_).map(|(_, c)| c.spec.outputs.clone()).unwrap_or_default();
                target_outputs.insert((*resource_name).clone(), declared.into_iter().map(|o| (o.name, json!(""))).collect());
                continue;
            };
            let params = resource.params.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
            let target = crate::capability::TargetContext {
                platform,
                catalog: options.claims.as_deref(),
                app_name: &name,
                app_namespace: &namespace,
                namespace: &placement.namespace,
                cluster: &placement.cluster,
                environment: placement.environment.as_deref(),
                app_revision: &revision,
            };
            let claim = resource.id.as_deref().unwrap_or(resource_name);
            let request = crate::capability::ClaimRequest {
                name: claim,
                type_: &resource.type_,
                parameters: &params,
                path: &format!("{at}.params"),
                type_path: &format!("{at}.type"),
            };
            match target.provision(&request) {
                Ok(provisioned) => {
                    let mut values = Outputs::new();
                    for (output, value) in provisioned.outputs {
                        match value {
                            crate::capability::OutputValue::Value(text) => {
                                values.insert(output, json!(text));
                            }
                            crate::capability::OutputValue::Secret { name: secret, key } => {
                                claim_secrets.insert(((*resource_name).clone(), output), (secret, key));
                            }
                        }
                    }
                    target_outputs.insert((*resource_name).clone(), values);
                    claim_objects.extend(provisioned.objects.into_iter().map(|(o, _)| o));
                    instances.extend(provisioned.instances.into_iter().map(|mut i| {
                        if i.serving {
                            i.consumers.push(name.clone());
                        }
                        i
                    }));
                    warnings.extend(provisioned.warnings);
                }
                Err(mut more) => problems.append(&mut more),
            }
        }
        if !problems.is_empty() {
            continue;
        }
        match build(app, &spec, &name, &target_outputs, &claim_secrets, options) {
            Ok(objects) => {
                let Some(placement) = placement else { continue };
                let builder = builders.entry((None, placement.cluster.clone(), placement.namespace.clone())).or_default();
                builder.environment = placement.environment.clone();
                // A claim's objects are its composition's, the platform team's.
                for object in claim_objects {
                    builder.add(&placement.namespace, object, origin(true));
                }
                for object in objects {
                    builder.add(&placement.namespace, object, origin(false));
                }
                builder.claims.extend(instances);
            }
            Err(mut more) => problems.append(&mut more),
        }
    }
    if !problems.is_empty() {
        return Err(crate::render::sorted(problems));
    }
    let workflow = vec![plan::deploy_step()];
    if placements.is_empty() {
        warnings.push("the workload deploys to no cluster: set Defaults.spec.environments".to_string());
    }
    Finisher::new(platform, app, Vec::new(), options).finish(builders, workflow, warnings)
}

/// The workload's objects with its placeholders resolved for one target.
fn build(
    app: &Resource,
    spec: &WorkloadSpec,
    name: &str,
    outputs: &BTreeMap<String, Outputs>,
    claim_secrets: &BTreeMap<(String, String), (String, String)>,
    options: &RenderOptions,
) -> Result<Vec<Object>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut metadata = json!({"name": name, "annotations": app.metadata.annotations});
    for (key, value) in &app.metadata.extra {
        metadata[key] = value.clone();
    }
    let secrets: BTreeMap<String, String> = spec
        .resources
        .iter()
        .filter(|(_, r)| r.type_ == "secret")
        .map(|(resource_name, r)| {
            let secret = r.params.as_ref().and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or(resource_name);
            (resource_name.clone(), secret.to_string())
        })
        .collect();
    let placeholders =
        Placeholders { metadata: &metadata, resources: outputs, secrets: &secrets, claim_secrets, secret_reads: Default::default() };
    let mut built = Built { objects: Vec::new() };
    let mut volumes = Vec::new();
    let mut containers = Vec::new();
    for (container_name, definition) in &spec.containers {
        match container(
            name,
            container_name,
            definition,
            &placeholders,
            options.score_image.as_deref(),
            &mut volumes,
            &mut built,
            &format!("spec.containers.{container_name}"),
        ) {
            Ok(c) => containers.push(c),
            Err(mut p) => problems.append(&mut p),
        }
    }
    let selector = json!({(well_known::OAM_COMPONENT): name});
    let mut pod_spec = json!({"containers": containers});
    if !volumes.is_empty() {
        pod_spec["volumes"] = Value::Array(volumes);
    }
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": {"metadata": {"labels": selector}, "spec": pod_spec}},
    });
    if !app.metadata.annotations.is_empty() {
        deployment["metadata"]["annotations"] = json!(app.metadata.annotations);
        deployment["spec"]["template"]["metadata"]["annotations"] = json!(app.metadata.annotations);
    }
    built.objects.push(deployment);
    if let Some(service) = &spec.service
        && !service.ports.is_empty()
    {
        let ports: Vec<Value> = service
            .ports
            .iter()
            .map(|(port_name, port)| json!({"name": port_name, "port": port.port, "targetPort": port.target_port.unwrap_or(port.port), "protocol": port.protocol.clone().unwrap_or_else(|| "TCP".into())}))
            .collect();
        built.objects.push(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"selector": selector, "ports": ports}}),
        );
    }
    for (resource_name, resource) in &spec.resources {
        if resource.type_ != "route" {
            continue;
        }
        let at = format!("spec.resources.{resource_name}.params");
        let params = resource.params.clone().unwrap_or(json!({}));
        let text = |field: &str| -> Result<String, Problem> {
            let raw = params
                .get(field)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .ok_or_else(|| Problem::new(format!("{at}.{field}"), "required field is missing"))?;
            placeholders.expand(&raw, &format!("{at}.{field}"))
        };
        match (text("host"), text("path"), text("port")) {
            (Ok(host), Ok(route_path), Ok(port)) => {
                let Ok(port) = port.parse::<u16>() else {
                    problems.push(Problem::new(format!("{at}.port"), format!("expected a port number, got {port:?}")));
                    continue;
                };
                built.objects.push(json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": format!("{name}-{resource_name}")},
                    "spec": {"rules": [{"host": host, "http": {"paths": [{"path": route_path, "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"number": port}}}}]}}]},
                }));
            }
            (host, route_path, port) => problems.extend([host.err(), route_path.err(), port.err()].into_iter().flatten()),
        }
    }
    if problems.is_empty() { Ok(built.objects) } else { Err(problems) }
}
