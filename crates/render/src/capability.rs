//! Capabilities: a claim (a KubeVela component, a Score resource or a
//! `Claim` of a capability's type) becomes, per target, the objects of the
//! composition that serves that target, and outputs its consumers read
//! (values, or keys of the connection Secret the provider writes).
//!
//! Which composition an instance uses is sticky: the hub passes the one in
//! use (from the owner's status), so a platform change to the selectors
//! never swaps a database under an application. Moving is a
//! `ClaimMigration`: the new instance is made beside the old, consumers
//! switch once the agent reports it ready, and the old one goes only after
//! `confirmDelete`.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_model::spec::capability::{CapabilitySpec, ClaimSpec, Composition};
use heimdall_model::spec::deserialize_at;
use heimdall_model::{LabelSelector, Problem, Resource};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::context::RenderContext;
use crate::object::{Object, map_at};
use crate::plan::{self, Placement};
use crate::platform::Platform;
use crate::render::{Finisher, Origin, RenderOptions, Rendered, TargetBuilder};
use crate::template::Parameters;

/// Set on an instance's objects: the Secret the provider will write, so
/// consumers' references to it are not looked for among the hub's secrets.
pub const CONNECTION_SECRET_ANNOTATION: &str = "capabilities.heimdall.dev/connection-secret";
pub const CLAIM_LABEL: &str = "capabilities.heimdall.dev/claim";
pub const COMPOSITION_LABEL: &str = "capabilities.heimdall.dev/composition";

#[derive(Debug)]
pub(crate) struct CompiledCapability {
    pub spec: CapabilitySpec,
    parameters: Option<Parameters>,
    selectors: Vec<LabelSelector>,
    limits: Vec<Parameters>,
}

impl CompiledCapability {
    pub fn compile(spec: CapabilitySpec, engine: &crate::template::Engine) -> Result<CompiledCapability, Vec<Problem>> {
        let mut problems = Vec::new();
        let parameters = match spec.parameters.as_ref().map(|schema| Parameters::compile(schema, "spec.parameters")).transpose() {
            Ok(parameters) => parameters,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let mut limits = Vec::new();
        for (i, limit) in spec.limits.iter().enumerate() {
            match Parameters::compile(&limit.schema, &format!("spec.limits[{i}].schema")) {
                Ok(compiled) => limits.push(compiled),
                Err(problem) => problems.push(problem),
            }
        }
        for (i, composition) in spec.compositions.iter().enumerate() {
            let at = format!("spec.compositions[{i}]");
            problems.extend(engine.check(&composition.template, &format!("{at}.template")));
            if let Some(secret) = &composition.connection.secret {
                problems.extend(engine.check(&json!(secret), &format!("{at}.connection.secret")));
            }
            for (name, source) in &composition.connection.outputs {
                if let Some(value) = &source.value {
                    problems.extend(engine.check(&json!(value), &format!("{at}.connection.outputs.{name}.value")));
                }
            }
        }
        let selectors = spec.compositions.iter().map(|c| c.selector.cluster_selector.to_selector()).collect();
        if problems.is_empty() { Ok(CompiledCapability { spec, parameters, selectors, limits }) } else { Err(problems) }
    }

    fn composition(&self, name: &str) -> Option<(usize, &Composition)> {
        self.spec.compositions.iter().enumerate().find(|(_, c)| c.name == name)
    }

    /// The first composition whose selector matches the target.
    fn select(&self, environment: Option<&str>, labels: &BTreeMap<String, String>) -> Option<(usize, &Composition)> {
        self.spec.compositions.iter().enumerate().find(|(i, c)| {
            (c.selector.environments.is_empty() || environment.is_some_and(|e| c.selector.environments.iter().any(|s| s == e)))
                && self.selectors[*i].matches(labels)
        })
    }
}

/// What the hub knows about claims that the renderer cannot: which
/// composition each instance uses now and the migrations under way.
#[derive(Debug, Clone, Default)]
pub struct ClaimCatalog {
    /// (namespace, claim, cluster) -> composition of the instance there.
    pub in_use: BTreeMap<(String, String, String), String>,
    /// (namespace, claim) -> migration.
    pub migrations: BTreeMap<(String, String), Migration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub composition: String,
    pub environment: Option<String>,
    pub confirm_delete: bool,
    /// Consumers stay on the old instance even when the new one is ready.
    pub hold: bool,
    /// Clusters where the new instance reported ready.
    pub ready: BTreeSet<String>,
}

/// An instance's part in a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// The instance the claim has (or the only one).
    Current,
    /// Made by a migration beside the current one.
    New,
}

/// One instance of a claim in a target, as the hub records and shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimInstance {
    pub claim: String,
    pub capability: String,
    pub composition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub role: Role,
    /// Consumers read this instance's outputs.
    pub serving: bool,
    /// Monthly, from the composition's cost.
    pub cost: f64,
    /// Output names (never values of secrets).
    pub outputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<String>,
    /// Credentials the hub generates for this instance and delivers sealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedSecret>,
    /// Components (or the Score workload) that read the outputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// Objects the instance is made of: `Kind/name`.
    pub objects: Vec<String>,
}

/// A Secret of the hub's the instance needs with random values in `keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedSecret {
    pub name: String,
    pub keys: Vec<String>,
}

/// An output as a consumer reads it.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputValue {
    Value(String),
    Secret { name: String, key: String },
}

/// A request for an instance, wherever it was written.
pub(crate) struct ClaimRequest<'a> {
    pub name: &'a str,
    pub type_: &'a str,
    pub parameters: &'a Map<String, Value>,
    /// Path of the parameters in the document (`spec.components[1].properties`).
    pub path: &'a str,
    /// Path of the type (`spec.components[1].type`).
    pub type_path: &'a str,
}

/// A claim rendered for one target.
pub(crate) struct Provisioned {
    pub objects: Vec<(Object, String)>,
    /// Outputs of the serving instance.
    pub outputs: BTreeMap<String, OutputValue>,
    pub instances: Vec<ClaimInstance>,
    pub warnings: Vec<String>,
}

/// One composition rendered for a claim.
struct Instance {
    objects: Vec<Object>,
    outputs: BTreeMap<String, OutputValue>,
    /// The connection Secret's name, if the composition has one.
    secret: Option<String>,
    generated: Option<GeneratedSecret>,
}

/// Where the render happens.
pub(crate) struct TargetContext<'a> {
    pub platform: &'a Platform,
    pub catalog: Option<&'a ClaimCatalog>,
    pub app_name: &'a str,
    pub app_namespace: &'a str,
    pub namespace: &'a str,
    pub cluster: &'a str,
    pub environment: Option<&'a str>,
    pub app_revision: &'a str,
}

fn number(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::Bool(true)) => 1.0,
        Some(Value::String(s)) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Monthly cost of an instance with these parameters, rounded to cents.
pub fn cost(composition: &Composition, parameters: &Map<String, Value>) -> f64 {
    let Some(cost) = &composition.cost else { return 0.0 };
    let total = cost.monthly + cost.per.iter().map(|(parameter, price)| price * number(parameters.get(parameter))).sum::<f64>();
    (total * 100.0).round() / 100.0
}

impl TargetContext<'_> {
    /// The parameters with defaults, checked against the schema and the limits that apply here.
    fn parameters(&self, name: &str, capability: &CompiledCapability, request: &ClaimRequest) -> Result<Map<String, Value>, Vec<Problem>> {
        let parameters = match &capability.parameters {
            Some(schema) => schema.read(request.parameters, request.path)?,
            None => Value::Object(request.parameters.clone()),
        };
        let parameters = parameters.as_object().cloned().unwrap_or_default();
        let mut problems = Vec::new();
        for (limit, schema) in capability.spec.limits.iter().zip(&capability.limits) {
            let in_environment =
                limit.environments.is_empty() || self.environment.is_some_and(|e| limit.environments.iter().any(|l| l == e));
            let for_tenant = limit.tenants.is_empty() || limit.tenants.iter().any(|t| t == self.app_namespace);
            if !(in_environment && for_tenant) {
                continue;
            }
            if let Err(found) = schema.read(&parameters, request.path) {
                let place = self.environment.map(|e| format!(" in environment {e}")).unwrap_or_default();
                problems.extend(
                    found
                        .into_iter()
                        .map(|p| Problem::new(p.path, format!("{} ({}: limit of capability {name}{place})", p.message, limit.message))),
                );
            }
        }
        if problems.is_empty() { Ok(parameters) } else { Err(problems) }
    }

    /// Renders a claim for this target: the instances it has here and the outputs consumers read.
    pub fn provision(&self, request: &ClaimRequest) -> Result<Provisioned, Vec<Problem>> {
        let Some((capability_name, capability)) = self.platform.capability(request.type_) else {
            return Err(vec![Problem::new(request.type_path, format!("no Capability named {:?}", request.type_))]);
        };
        let parameters = self.parameters(capability_name, capability, request)?;
        let labels = self.platform.cluster(self.cluster).map(|c| c.labels.clone()).unwrap_or_default();
        let selected = capability.select(self.environment, &labels).ok_or_else(|| {
            vec![Problem::new(
                request.type_path,
                format!(
                    "capability {capability_name} has no composition for cluster {} (environment {}): its compositions are {}",
                    self.cluster,
                    self.environment.unwrap_or("none"),
                    capability.spec.compositions.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )]
        })?;
        let key = (self.app_namespace.to_string(), request.name.to_string());
        let mut warnings = Vec::new();
        let in_use = self.catalog.and_then(|c| c.in_use.get(&(key.0.clone(), key.1.clone(), self.cluster.to_string())));
        let current = match in_use {
            Some(name) => capability.composition(name).ok_or_else(|| {
                vec![Problem::new(
                    request.type_path,
                    format!(
                        "claim {} in cluster {} uses composition {name}, which capability {capability_name} no longer has; restore it or migrate the claim first",
                        request.name, self.cluster
                    ),
                )]
            })?,
            None => selected,
        };
        let migration = self
            .catalog
            .and_then(|c| c.migrations.get(&key))
            .filter(|m| m.environment.is_none() || m.environment.as_deref() == self.environment)
            .filter(|m| m.composition != current.1.name);
        if migration.is_none() && current.1.name != selected.1.name {
            warnings.push(format!(
                "claim {} in cluster {} stays on composition {}; the platform now selects {} (heimdall claim plan {}/{} --composition {})",
                request.name, self.cluster, current.1.name, selected.1.name, self.app_namespace, request.name, selected.1.name
            ));
        }
        let mut instances: Vec<(usize, &Composition, Role, bool)> = Vec::new();
        match migration {
            None => instances.push((current.0, current.1, Role::Current, true)),
            Some(migration) => {
                let new = capability.composition(&migration.composition).ok_or_else(|| {
                    vec![Problem::new(
                        request.type_path,
                        format!(
                            "ClaimMigration {}/{} moves to composition {:?}, which capability {capability_name} does not have (it has: {})",
                            self.app_namespace,
                            request.name,
                            migration.composition,
                            capability.spec.compositions.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )]
                })?;
                let ready = migration.ready.contains(self.cluster) && !migration.hold;
                if !(ready && migration.confirm_delete) {
                    instances.push((current.0, current.1, Role::Current, !ready));
                }
                instances.push((new.0, new.1, Role::New, ready));
            }
        }
        let mut provisioned = Provisioned { objects: Vec::new(), outputs: BTreeMap::new(), instances: Vec::new(), warnings };
        for (index, composition, role, serving) in instances {
            let Instance { objects, outputs, secret, generated } =
                self.instance(capability_name, index, composition, &parameters, request)?;
            let mut seen = BTreeSet::new();
            let names: Vec<String> = objects.iter().map(|o| format!("{}/{}", crate::object::kind(o), crate::object::name(o))).collect();
            for (object, name) in objects.iter().zip(&names) {
                let clash = provisioned.objects.iter().any(|(o, _)| {
                    crate::object::kind(o) == crate::object::kind(object) && crate::object::name(o) == crate::object::name(object)
                });
                if clash || !seen.insert(name.clone()) {
                    return Err(vec![Problem::new(
                        request.type_path,
                        format!(
                            "compositions of capability {capability_name} both make {name} for claim {}: a migration needs them distinct",
                            request.name
                        ),
                    )]);
                }
            }
            provisioned.objects.extend(objects.into_iter().map(|o| (o, composition.name.clone())));
            provisioned.instances.push(ClaimInstance {
                claim: request.name.to_string(),
                capability: capability_name.to_string(),
                composition: composition.name.clone(),
                provider: composition.provider.clone(),
                role,
                serving,
                cost: cost(composition, &parameters),
                outputs: outputs.keys().cloned().collect(),
                connection_secret: secret,
                generated,
                consumers: Vec::new(),
                parameters: parameters.clone(),
                objects: names,
            });
            if serving {
                provisioned.outputs = outputs;
            }
        }
        Ok(provisioned)
    }

    /// One composition's objects, outputs and connection Secret name.
    fn instance(
        &self,
        capability: &str,
        index: usize,
        composition: &Composition,
        parameters: &Map<String, Value>,
        request: &ClaimRequest,
    ) -> Result<Instance, Vec<Problem>> {
        let ctx = RenderContext {
            app_name: self.app_name.to_string(),
            app_namespace: self.app_namespace.to_string(),
            namespace: self.namespace.to_string(),
            name: request.name.to_string(),
            component_type: capability.to_string(),
            app_revision: self.app_revision.to_string(),
            environment: self.environment.map(String::from),
            cluster: self.cluster.to_string(),
        };
        let mut scope = Map::new();
        scope.insert("parameters".into(), Value::Object(parameters.clone()));
        scope.insert("context".into(), serde_json::to_value(&ctx).unwrap_or(Value::Null));
        scope.insert("composition".into(), json!(composition.name));
        let at = format!("spec.compositions[{index}]");
        let fail = |problem: Problem| {
            vec![Problem::new(
                request.path,
                format!("capability {capability} composition {} failed at {}: {}", composition.name, problem.path, problem.message),
            )]
        };
        let engine = &self.platform.engine;
        let text = |template: &str, path: String| -> Result<String, Vec<Problem>> {
            match engine.evaluate(&json!(template), scope.clone(), &path).map_err(fail)? {
                Some(Value::String(s)) => Ok(s),
                Some(other) if !other.is_object() && !other.is_array() => Ok(other.to_string()),
                _ => Err(fail(Problem::new(path, "expected text"))),
            }
        };
        let secret = composition.connection.secret.as_ref().map(|s| text(s, format!("{at}.connection.secret"))).transpose()?;
        if let Some(secret) = &secret {
            heimdall_model::validation::check_dns_subdomain(secret)
                .map_err(|m| fail(Problem::new(format!("{at}.connection.secret"), m)))?;
        }
        let generated = match &composition.connection.generate {
            Some(generate) => {
                let path = format!("{at}.connection.generate.secret");
                let name = text(&generate.secret, path.clone())?;
                heimdall_model::validation::check_dns_subdomain(&name).map_err(|m| fail(Problem::new(path, m)))?;
                Some(GeneratedSecret { name, keys: generate.keys.clone() })
            }
            None => None,
        };
        let mut outputs = BTreeMap::new();
        for (name, source) in &composition.connection.outputs {
            let value = match (&source.key, &source.generated, &source.value, &secret, &generated) {
                (Some(key), _, _, Some(secret), _) => OutputValue::Secret { name: secret.clone(), key: key.clone() },
                (_, Some(key), _, _, Some(generated)) => OutputValue::Secret { name: generated.name.clone(), key: key.clone() },
                (_, _, Some(value), _, _) => OutputValue::Value(text(value, format!("{at}.connection.outputs.{name}.value"))?),
                _ => return Err(fail(Problem::new(format!("{at}.connection.outputs.{name}"), "expected a key, generated or value"))),
            };
            outputs.insert(name.clone(), value);
        }
        let mut objects = Vec::new();
        for (name, template) in composition.template.get("outputs").and_then(Value::as_object).into_iter().flatten() {
            let path = format!("{at}.template.outputs.{name}");
            let Some(mut object) = engine.evaluate(template, scope.clone(), &path).map_err(fail)? else { continue };
            if !object.is_object() || crate::object::kind(&object).is_empty() || crate::object::name(&object).is_empty() {
                return Err(fail(Problem::new(path, "expected an object with apiVersion, kind and metadata.name")));
            }
            let labels = map_at(&mut object, &["metadata", "labels"]);
            labels.insert(CLAIM_LABEL.into(), json!(request.name));
            labels.insert(COMPOSITION_LABEL.into(), json!(composition.name));
            if let Some(secret) = &secret {
                map_at(&mut object, &["metadata", "annotations"]).insert(CONNECTION_SECRET_ANNOTATION.into(), json!(secret));
            }
            objects.push(object);
        }
        Ok(Instance { objects, outputs, secret, generated })
    }
}

/// The env var a consumer reads an output under: `ORDERS_DB_HOST`.
pub fn variable(claim: &str, output: &str) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect::<String>();
    format!("{}_{}", clean(claim), clean(output))
}

/// The env entry for an output.
pub fn env_entry(name: &str, value: &OutputValue) -> Value {
    match value {
        OutputValue::Value(text) => json!({"name": name, "value": text}),
        OutputValue::Secret { name: secret, key } => json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}),
    }
}

/// Adds the outputs of a claim to a workload's main container (the one
/// named after the component, else the first), unless the container sets
/// the variable itself.
pub(crate) fn wire(workload: &mut Object, component: &str, claim: &str, outputs: &BTreeMap<String, OutputValue>) -> bool {
    let Some(spec) = crate::object::pod_template_mut(workload).and_then(|t| t.get_mut("spec")).and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) else { return false };
    let index = containers.iter().position(|c| c.get("name").and_then(Value::as_str) == Some(component)).unwrap_or(0);
    let Some(container) = containers.get_mut(index).and_then(Value::as_object_mut) else { return false };
    let env = container.entry("env").or_insert_with(|| json!([]));
    let Some(env) = env.as_array_mut() else { return false };
    for (output, value) in outputs {
        let name = variable(claim, output);
        if !env.iter().any(|e| e.get("name").and_then(Value::as_str) == Some(name.as_str())) {
            env.push(env_entry(&name, value));
        }
    }
    true
}

/// Renders a standalone `Claim` document.
pub(crate) fn render_claim(claim: &Resource, platform: &Platform, options: &RenderOptions) -> Result<Rendered, Vec<Problem>> {
    let spec: ClaimSpec = deserialize_at(&claim.spec, "spec").map_err(|p| vec![p])?;
    let name = claim.metadata.name.as_str();
    let app_namespace = claim.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    if platform.capability(&spec.type_).is_none() {
        return Err(vec![unknown_type("spec.type", &spec.type_, platform)]);
    }
    let policies: Vec<heimdall_model::spec::application::AppPolicy> = spec
        .environments
        .iter()
        .map(|e| serde_json::from_value(json!({"name": e, "type": "topology", "properties": {"environment": e}})))
        .collect::<Result<_, _>>()
        .map_err(|e| vec![Problem::new("spec.environments", e.to_string())])?;
    let app_spec = heimdall_model::spec::application::ApplicationSpec { components: Vec::new(), policies, workflow: None };
    let context = plan::Context {
        spec: &app_spec,
        app_namespace: &platform.default_namespace(&app_namespace, name),
        platform,
        environment: options.environment.as_deref(),
        approvals: &options.approvals,
    };
    let placements = if spec.environments.is_empty() {
        context.plan_default()?
    } else {
        plan::plan(&context)?.units.into_iter().flat_map(|u| u.placements).collect()
    };
    let revision = format!("{name}-v{}", claim.metadata.generation.unwrap_or(1));
    let mut builders: BTreeMap<(Option<String>, String, String), TargetBuilder> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for Placement { cluster, namespace, environment } in &placements {
        let target = TargetContext {
            platform,
            catalog: options.claims.as_deref(),
            app_name: name,
            app_namespace: &app_namespace,
            namespace,
            cluster,
            environment: environment.as_deref(),
            app_revision: &revision,
        };
        let request =
            ClaimRequest { name, type_: &spec.type_, parameters: &spec.parameters, path: "spec.parameters", type_path: "spec.type" };
        let builder = builders.entry((None, cluster.clone(), namespace.clone())).or_default();
        builder.environment = environment.clone();
        match target.provision(&request) {
            Ok(provisioned) => {
                for (object, _) in provisioned.objects {
                    let origin = Origin {
                        component: Some((name.to_string(), spec.type_.clone())),
                        trait_type: None,
                        output: None,
                        path: "spec".into(),
                        wave: 0,
                        platform: true,
                    };
                    builder.add(namespace, object, origin);
                }
                builder.claims.extend(provisioned.instances);
                warnings.extend(provisioned.warnings);
            }
            Err(mut more) => problems.append(&mut more),
        }
    }
    if !problems.is_empty() {
        return Err(crate::render::sorted(problems));
    }
    if placements.is_empty() {
        warnings.push("the claim goes to no cluster: set spec.environments or Defaults.spec.environments".into());
    }
    let workflow = vec![plan::deploy_step()];
    Finisher::new(platform, claim, Vec::new(), options).finish(builders, workflow, warnings)
}

pub(crate) fn unknown_type(path: &str, type_: &str, platform: &Platform) -> Problem {
    let known = platform.capability_types();
    let hint =
        crate::params::closest(type_, known.iter().map(String::as_str)).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
    Problem::new(
        path,
        format!(
            "no Capability named {type_:?}{hint} (capabilities: {})",
            if known.is_empty() { "none defined".to_string() } else { known.join(", ") }
        ),
    )
}
