//! The render pipeline for an Application: validate the structure, plan the
//! workflow, render each component with its traits per target, stamp the
//! tracking labels and organization defaults, check every object against
//! Kubernetes' types, evaluate the organization's policies, and sort.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_model::spec::application::{ApplicationSpec, Component};
use heimdall_model::spec::deserialize_at;
use heimdall_model::spec::platform::{Enforcement, SecurityDefaults};
use heimdall_model::{Problem, Resource};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::context::{ComponentOutput, ObjectReference, Output, RenderContext};
use crate::object::{self, Object, json_merge_patch, map_at, pod_template_mut, set_default, strategic_merge};
use crate::plan::{self, Placement, StepStatus};
use crate::platform::Platform;
use crate::rego::Finding;
use crate::traits::Fits;
use crate::{component, params, traits, validate};
use heimdall_api::labels as well_known;

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Render for this environment only.
    pub environment: Option<String>,
    /// Suspend steps (and `auto: false` deploy steps) that are approved.
    pub approvals: BTreeSet<String>,
    /// The image for Score containers written as `image: .`.
    pub score_image: Option<String>,
    /// The secrets that exist (names, keys, versions). With one, a
    /// reference to a missing secret fails the render, and targets say
    /// which secrets to deliver; without one (rendering outside the hub)
    /// references are not checked.
    pub secrets: Option<std::sync::Arc<crate::secrets::SecretCatalog>>,
    /// Compositions in use and migrations under way (the hub's knowledge);
    /// without it every claim takes the composition its selectors pick.
    pub claims: Option<std::sync::Arc<crate::capability::ClaimCatalog>>,
    /// The role, in the application's tenant, of whoever makes this change:
    /// which kinds its objects may be. `None` (re-rendering what was
    /// admitted, or a platform admin's change): the owners' kinds.
    pub tenant_role: Option<heimdall_model::spec::tenant::TenantRole>,
}

/// Everything one target cluster and namespace receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub cluster: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The approval gate this target waits for; such a target is not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    pub objects: Vec<Object>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ObjectReference>,
    /// Secrets the hub seals for this target's cluster when it delivers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::secrets::SecretUse>,
    /// Capability instances in this target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<crate::capability::ClaimInstance>,
    /// SHA-256 of the objects and secret versions: equal revisions mean identical output.
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetFinding {
    pub cluster: String,
    pub namespace: String,
    #[serde(flatten)]
    pub finding: Finding,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub targets: Vec<Target>,
    pub workflow: Vec<StepStatus>,
    pub findings: Vec<TargetFinding>,
    pub warnings: Vec<String>,
    /// Credentials claims need that the hub has not generated yet; the hub
    /// generates them and renders again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generate: Vec<crate::secrets::Generate>,
}

impl Rendered {
    /// Findings that block the change.
    pub fn violations(&self) -> impl Iterator<Item = &TargetFinding> {
        self.findings.iter().filter(|f| f.finding.enforcement == Enforcement::Deny)
    }
}

/// Where an object came from, for labels, policy rules and error paths.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub component: Option<(String, String)>,
    pub trait_type: Option<String>,
    pub output: Option<String>,
    pub path: String,
    pub wave: usize,
    /// The platform team wrote it (a capability's composition, the hub's
    /// secret delivery): it keeps the platform's rights, in the renderer's
    /// checks and when the agent applies it.
    pub platform: bool,
}

impl Origin {
    /// Content the platform team wrote, at `path`.
    pub fn platform(path: impl Into<String>) -> Origin {
        Origin { component: None, trait_type: None, output: None, path: path.into(), wave: 0, platform: true }
    }
}

/// A component after overrides, ready to render.
#[derive(Debug, Clone)]
pub(crate) struct ComponentSpec {
    pub index: usize,
    pub name: String,
    pub type_: String,
    pub properties: Map<String, Value>,
    pub traits: Vec<(usize, String, Map<String, Value>)>,
}

impl ComponentSpec {
    fn from_component(index: usize, component: &Component) -> ComponentSpec {
        ComponentSpec {
            index,
            name: component.name.clone(),
            type_: component.type_.clone(),
            properties: component.properties.clone().unwrap_or_default(),
            traits: component
                .traits
                .iter()
                .enumerate()
                .map(|(j, t)| (j, t.type_.clone(), t.properties.clone().unwrap_or_default()))
                .collect(),
        }
    }
}

/// Applies override policy properties (`components: [{name, type, properties, traits}]`, `selector`).
fn apply_override(components: &mut Vec<ComponentSpec>, properties: &Value) {
    if let Some(selector) = properties.get("selector").and_then(Value::as_array) {
        let names: Vec<&str> = selector.iter().filter_map(Value::as_str).collect();
        components.retain(|c| names.contains(&c.name.as_str()));
    }
    for entry in properties.get("components").and_then(Value::as_array).into_iter().flatten() {
        let name = entry.get("name").and_then(Value::as_str).filter(|n| *n != "*");
        let type_ = entry.get("type").and_then(Value::as_str);
        for component in components.iter_mut() {
            if name.is_some_and(|n| n != component.name) || type_.is_some_and(|t| t != component.type_) {
                continue;
            }
            if let Some(patch) = entry.get("properties") {
                let mut merged = Value::Object(std::mem::take(&mut component.properties));
                json_merge_patch(&mut merged, patch);
                component.properties = merged.as_object().cloned().unwrap_or_default();
            }
            for t in entry.get("traits").and_then(Value::as_array).into_iter().flatten() {
                let Some(trait_type) = t.get("type").and_then(Value::as_str) else {
                    continue;
                };
                if t.get("disable").and_then(Value::as_bool) == Some(true) {
                    component.traits.retain(|(_, ty, _)| ty != trait_type);
                    continue;
                }
                let patch = t.get("properties").cloned().unwrap_or(json!({}));
                match component.traits.iter_mut().find(|(_, ty, _)| ty == trait_type) {
                    Some((_, _, props)) => {
                        let mut merged = Value::Object(std::mem::take(props));
                        json_merge_patch(&mut merged, &patch);
                        *props = merged.as_object().cloned().unwrap_or_default();
                    }
                    None => component.traits.push((usize::MAX, trait_type.to_string(), patch.as_object().cloned().unwrap_or_default())),
                }
            }
        }
    }
}

/// Checks component and trait types, names and dependencies before rendering.
fn check_structure(spec: &ApplicationSpec, platform: &Platform) -> Result<Vec<usize>, Vec<Problem>> {
    let mut problems = Vec::new();
    let component_types = platform.component_types();
    let trait_types = platform.trait_types();
    for (i, component) in spec.components.iter().enumerate() {
        let is_claim = !component_types.contains(&component.type_.as_str()) && platform.capability(&component.type_).is_some();
        if is_claim {
            for (j, _) in component.traits.iter().enumerate() {
                problems.push(Problem::new(
                    format!("spec.components[{i}].traits[{j}]"),
                    format!("component {} claims a {}: traits apply to workloads, not to claims", component.name, component.type_),
                ));
            }
        } else if !component_types.contains(&component.type_.as_str()) {
            let capabilities = platform.capability_types();
            let hint = params::closest(&component.type_, component_types.iter().copied().chain(capabilities.iter().map(String::as_str)))
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            problems.push(Problem::new(
                format!("spec.components[{i}].type"),
                format!(
                    "unknown component type {:?}{hint} (known: {}{})",
                    component.type_,
                    component_types.join(", "),
                    if capabilities.is_empty() { String::new() } else { format!("; capabilities: {}", capabilities.join(", ")) }
                ),
            ));
        }
        for (j, t) in component.traits.iter().enumerate() {
            if !trait_types.contains(&t.type_.as_str()) {
                let hint =
                    params::closest(&t.type_, trait_types.iter().copied()).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
                problems.push(Problem::new(
                    format!("spec.components[{i}].traits[{j}].type"),
                    format!("unknown trait {:?}{hint} (known: {})", t.type_, trait_types.join(", ")),
                ));
            }
        }
        for (j, dependency) in component.depends_on.iter().enumerate() {
            if !spec.components.iter().any(|c| &c.name == dependency) {
                let hint = params::closest(dependency, spec.components.iter().map(|c| c.name.as_str()))
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                problems
                    .push(Problem::new(format!("spec.components[{i}].dependsOn[{j}]"), format!("no component named {dependency:?}{hint}")));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    waves(spec)
}

/// Each component's apply wave: 0 without dependencies, else one more than
/// its deepest dependency. A cycle is an error naming it.
fn waves(spec: &ApplicationSpec) -> Result<Vec<usize>, Vec<Problem>> {
    let index: BTreeMap<&str, usize> = spec.components.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
    let mut wave: Vec<Option<usize>> = vec![None; spec.components.len()];
    fn visit(
        i: usize,
        spec: &ApplicationSpec,
        index: &BTreeMap<&str, usize>,
        wave: &mut Vec<Option<usize>>,
        stack: &mut Vec<usize>,
    ) -> Result<usize, Problem> {
        if let Some(w) = wave[i] {
            return Ok(w);
        }
        if let Some(start) = stack.iter().position(|&s| s == i) {
            let mut cycle: Vec<&str> = stack[start..].iter().map(|&s| spec.components[s].name.as_str()).collect();
            cycle.push(spec.components[i].name.as_str());
            return Err(Problem::new(format!("spec.components[{i}].dependsOn"), format!("dependency cycle: {}", cycle.join(" -> "))));
        }
        stack.push(i);
        let mut deepest = None;
        for dependency in &spec.components[i].depends_on {
            if let Some(&j) = index.get(dependency.as_str()) {
                let w = visit(j, spec, index, wave, stack)?;
                deepest = Some(deepest.map_or(w, |d: usize| d.max(w)));
            }
        }
        stack.pop();
        let w = deepest.map_or(0, |d| d + 1);
        wave[i] = Some(w);
        Ok(w)
    }
    let mut result = Vec::new();
    for i in 0..spec.components.len() {
        result.push(visit(i, spec, &index, &mut wave, &mut Vec::new()).map_err(|p| vec![p])?);
    }
    Ok(result)
}

/// A component's objects with their origins, and the objects it only refers to.
type RenderedComponent = (Vec<(Object, Origin)>, Vec<ObjectReference>);

/// Renders a component with its traits into objects with their origins.
fn render_component(
    platform: &Platform,
    component: &ComponentSpec,
    ctx: &RenderContext,
    wave: usize,
) -> Result<RenderedComponent, Vec<Problem>> {
    let path = format!("spec.components[{}]", component.index);
    let props_path = format!("{path}.properties");
    let mut output = match platform.components.get(&component.type_) {
        Some(custom) => crate::definitions::render_component(platform, custom, &component.type_, &component.properties, ctx, &props_path)?,
        None => component::render(&component.type_, &component.properties, ctx, &props_path)?,
    };
    let workload_kind = output.workload.as_ref().map(|w| object::kind(w).to_string()).unwrap_or_default();
    let mut problems = Vec::new();
    for (j, trait_type, properties) in &component.traits {
        let trait_path = if *j == usize::MAX { format!("{path}.traits") } else { format!("{path}.traits[{j}]") };
        let result = match platform.traits.get(trait_type) {
            Some(custom) => crate::definitions::apply_trait(
                platform,
                custom,
                trait_type,
                &component.type_,
                properties,
                ctx,
                &format!("{trait_path}.properties"),
                &mut output,
            ),
            None => {
                let fits = traits::fits(trait_type).unwrap_or(Fits::Workload);
                if !fits.accepts(&workload_kind) {
                    let what = if workload_kind.is_empty() { "no workload".to_string() } else { format!("a {workload_kind}") };
                    Err(vec![Problem::new(
                        format!("{trait_path}.type"),
                        format!(
                            "trait {trait_type} does not fit component type {} ({what}): it applies to {}",
                            component.type_,
                            fits.describe()
                        ),
                    )])
                } else {
                    traits::apply(trait_type, properties, ctx, &format!("{trait_path}.properties"), &mut output)
                }
            }
        };
        if let Err(mut trait_problems) = result {
            problems.append(&mut trait_problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let ComponentOutput { workload, outputs, references } = output;
    let mut objects = Vec::new();
    let origin = |trait_type: Option<String>, output: Option<String>| Origin {
        component: Some((component.name.clone(), component.type_.clone())),
        trait_type,
        output,
        path: path.clone(),
        wave,
        platform: false,
    };
    if let Some(workload) = workload {
        objects.push((workload, origin(None, None)));
    }
    for Output { name, object, trait_type } in outputs {
        // Two outputs naming the same object (gateway's Service beside webservice's) merge.
        let existing = objects.iter_mut().find(|(o, _): &&mut (Object, Origin)| {
            object::kind(o) == object::kind(&object)
                && object::name(o) == object::name(&object)
                && object::api_version(o) == object::api_version(&object)
        });
        match existing {
            Some((current, _)) => strategic_merge(current, &object),
            None => objects.push((object, origin(trait_type, Some(name)))),
        }
    }
    Ok((objects, references))
}

/// The labels and annotations every object carries so an agent can prune
/// what it owns and a person can trace an object back to its application.
struct Stamp<'a> {
    app: &'a Resource,
    revision: &'a str,
    generation: i64,
    environment: Option<&'a str>,
    platform: &'a Platform,
    rules: &'a [ObjectRule],
}

impl Stamp<'_> {
    fn apply(&self, object: &mut Object, origin: &Origin) {
        let app_name = &self.app.metadata.name;
        let app_namespace = self.app.metadata.namespace.as_deref().unwrap_or_default();
        let resource_type = if origin.trait_type.is_some() { "TRAIT" } else { "WORKLOAD" };
        let mut tracking = vec![
            (well_known::OAM_NAME, app_name.clone()),
            (well_known::OAM_NAMESPACE, app_namespace.to_string()),
            ("app.oam.dev/appRevision", self.revision.to_string()),
            (well_known::MANAGED_BY.0, well_known::MANAGED_BY.1.to_string()),
            (well_known::APP, app_name.clone()),
            (well_known::TENANT, app_namespace.to_string()),
        ];
        if let Some((component, type_)) = &origin.component {
            tracking.push((well_known::OAM_COMPONENT, component.clone()));
            tracking.push(("app.oam.dev/resourceType", resource_type.to_string()));
            tracking.push(("workload.oam.dev/type", type_.clone()));
        }
        if let Some(trait_type) = &origin.trait_type {
            tracking.push(("trait.oam.dev/type", trait_type.clone()));
            tracking.push(("trait.oam.dev/resource", origin.output.clone().unwrap_or_default()));
        }
        if let Some(environment) = self.environment {
            tracking.push((well_known::ENVIRONMENT, environment.to_string()));
        }
        let labels = map_at(object, &["metadata", "labels"]);
        for (key, value) in tracking {
            labels.insert(key.to_string(), json!(value));
        }
        if let Some((component, _)) = &origin.component {
            set_default(labels, "app.kubernetes.io/name", json!(component));
        }
        set_default(labels, "app.kubernetes.io/instance", json!(app_name));
        for (key, value) in &self.platform.defaults.labels {
            set_default(labels, key, json!(value));
        }
        let annotations = map_at(object, &["metadata", "annotations"]);
        annotations.insert(well_known::SOURCE.into(), json!(format!("{} {app_namespace}/{app_name}", self.app.kind)));
        // Over whatever the object said: who the agent applies it as is the renderer's to decide.
        let tenants = self.platform.tenant(app_namespace).is_some() && !origin.platform;
        let apply_as = if tenants { well_known::APPLY_AS_TENANT } else { well_known::APPLY_AS_PLATFORM };
        annotations.insert(well_known::APPLY_AS.into(), json!(apply_as));
        annotations.insert("heimdall.dev/generation".into(), json!(self.generation.to_string()));
        if origin.wave > 0 {
            annotations.insert(well_known::WAVE.into(), json!(origin.wave.to_string()));
        }
        // A tenant's own policies (take-over, garbage collection, recreate) mark its own objects,
        // never the platform's it is given, which the agent applies with its own rights.
        let tenants_rules_apply = !(origin.platform && self.platform.tenant(app_namespace).is_some());
        for rule in self.rules.iter().filter(|_| tenants_rules_apply) {
            if rule.matches(object, origin) {
                for (key, value) in &rule.annotations {
                    map_at(object, &["metadata", "annotations"]).insert(key.clone(), json!(value));
                }
            }
        }
        // Pods get the stable labels only: a revision label would restart them on every change.
        if let Some(template) = pod_template_mut(object) {
            let labels = map_at(template.entry("metadata").or_insert_with(|| json!({})), &["labels"]);
            set_default(labels, "app.kubernetes.io/name", json!(origin.component.as_ref().map(|c| c.0.clone()).unwrap_or_default()));
            set_default(labels, "app.kubernetes.io/instance", json!(app_name));
            labels.insert(well_known::APP.into(), json!(app_name));
            if let Some(environment) = self.environment {
                labels.insert(well_known::ENVIRONMENT.into(), json!(environment));
            }
        }
        apply_defaults(object, self.platform);
    }
}

/// Organization defaults, filled in where the workload says nothing.
fn apply_defaults(object: &mut Object, platform: &Platform) {
    let defaults = &platform.defaults;
    let Some(template) = pod_template_mut(object) else { return };
    let spec = map_at(template.entry("spec").or_insert_with(|| json!({})), &[]);
    let restricted = defaults.security_context == SecurityDefaults::Restricted;
    if restricted {
        let pod_security = map_at(spec.entry("securityContext").or_insert_with(|| json!({})), &[]);
        set_default(pod_security, "runAsNonRoot", json!(true));
        set_default(pod_security, "seccompProfile", json!({"type": "RuntimeDefault"}));
    }
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(policy) = &defaults.image_pull_policy {
                set_default(container, "imagePullPolicy", json!(policy));
            }
            if let Some(resources) = defaults.resources.as_ref().and_then(Value::as_object) {
                let target = map_at(container.entry("resources").or_insert_with(|| json!({})), &[]);
                for (section, values) in resources {
                    let Some(values) = values.as_object() else { continue };
                    let section = map_at(target.entry(section.clone()).or_insert_with(|| json!({})), &[]);
                    for (name, quantity) in values {
                        set_default(section, name, quantity.clone());
                    }
                }
            }
            if restricted {
                let security = map_at(container.entry("securityContext").or_insert_with(|| json!({})), &[]);
                // A privileged container cannot also forbid privilege escalation.
                if security.get("privileged") != Some(&json!(true)) {
                    set_default(security, "allowPrivilegeEscalation", json!(false));
                }
                let capabilities = map_at(security.entry("capabilities").or_insert_with(|| json!({})), &[]);
                set_default(capabilities, "drop", json!(["ALL"]));
            }
        }
    }
}

/// A policy rule that marks matching objects for the agent (garbage
/// collection, apply-once, shared, take-over, read-only, update strategy).
#[derive(Debug, Clone)]
pub(crate) struct ObjectRule {
    selector: Map<String, Value>,
    annotations: Vec<(String, String)>,
}

impl ObjectRule {
    fn matches(&self, object: &Object, origin: &Origin) -> bool {
        let listed = |key: &str, value: &str| {
            self.selector.get(key).and_then(Value::as_array).is_none_or(|list| list.iter().any(|v| v.as_str() == Some(value)))
        };
        let component = origin.component.as_ref();
        listed("componentNames", component.map_or("", |c| c.0.as_str()))
            && listed("componentTypes", component.map_or("", |c| c.1.as_str()))
            && listed("oamTypes", if origin.trait_type.is_some() { "TRAIT" } else { "COMPONENT" })
            && (self.selector.get("traitTypes").is_none() || origin.trait_type.as_deref().is_some_and(|t| listed("traitTypes", t)))
            && listed("resourceTypes", object::kind(object))
            && listed("resourceNames", object::name(object))
    }
}

fn object_rules(spec: &ApplicationSpec) -> Result<Vec<ObjectRule>, Vec<Problem>> {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (i, policy) in spec.policies.iter().enumerate() {
        let props = policy.properties.clone().unwrap_or_default();
        let path = format!("spec.policies[{i}].properties");
        let rule_list: Vec<(Map<String, Value>, Value)> = props
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| {
                        (
                            r.get("selector").and_then(Value::as_object).cloned().unwrap_or_default(),
                            r.get("strategy").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut push = |selector: Map<String, Value>, annotations: Vec<(&str, String)>| {
            rules.push(ObjectRule { selector, annotations: annotations.into_iter().map(|(k, v)| (k.to_string(), v)).collect() })
        };
        match policy.type_.as_str() {
            "garbage-collect" => {
                if props.get("keepLegacyResource").and_then(Value::as_bool) == Some(true) {
                    push(Map::new(), vec![(well_known::GC, "on-app-delete".into())]);
                }
                for (j, (selector, strategy)) in rule_list.into_iter().enumerate() {
                    let strategy = match strategy.as_str() {
                        Some("never") => "never",
                        Some("onAppDelete") => "on-app-delete",
                        Some("onAppUpdate") | None => "on-app-update",
                        Some(other) => {
                            problems.push(Problem::new(
                                format!("{path}.rules[{j}].strategy"),
                                format!("expected onAppUpdate, onAppDelete or never, got {other:?}"),
                            ));
                            continue;
                        }
                    };
                    push(selector, vec![(well_known::GC, strategy.into())]);
                }
            }
            "apply-once" => {
                if props.get("enable").and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                if rule_list.is_empty() {
                    push(Map::new(), vec![(well_known::APPLY_ONCE, "true".into())]);
                }
                for (selector, strategy) in rule_list {
                    let paths: Vec<&str> = strategy
                        .get("path")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let value = if paths.is_empty() || paths.contains(&"*") { "true".to_string() } else { paths.join(",") };
                    push(selector, vec![(well_known::APPLY_ONCE, value)]);
                }
            }
            "shared-resource" | "take-over" | "read-only" => {
                let key = match policy.type_.as_str() {
                    "shared-resource" => well_known::SHARED,
                    "take-over" => well_known::TAKE_OVER,
                    _ => well_known::READ_ONLY,
                };
                if rule_list.is_empty() {
                    push(Map::new(), vec![(key, "true".into())]);
                }
                for (selector, _) in rule_list {
                    push(selector, vec![(key, "true".into())]);
                }
            }
            "resource-update" => {
                for (selector, strategy) in rule_list {
                    let mut annotations = Vec::new();
                    if let Some(op) = strategy.get("op").and_then(Value::as_str) {
                        annotations.push(("heimdall.dev/update", op.to_string()));
                    }
                    if let Some(fields) = strategy.get("recreateFields").and_then(Value::as_array) {
                        annotations
                            .push((well_known::RECREATE_FIELDS, fields.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")));
                    }
                    push(selector, annotations);
                }
            }
            _ => {}
        }
    }
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}

/// Order objects so that an agent applying them in order never applies a
/// thing before what it needs: namespaces and CRDs first, workloads late.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ResourceQuota" | "LimitRange" | "PriorityClass" | "StorageClass" => 2,
        "ServiceAccount" | "ClusterRole" | "Role" => 3,
        "ClusterRoleBinding" | "RoleBinding" => 4,
        "Secret" | "ConfigMap" => 5,
        "PersistentVolume" | "PersistentVolumeClaim" => 6,
        "Service" => 7,
        "DaemonSet" | "Deployment" | "StatefulSet" | "ReplicaSet" | "Pod" | "Job" | "CronJob" => 8,
        "HorizontalPodAutoscaler" | "PodDisruptionBudget" => 9,
        "Ingress" | "NetworkPolicy" => 10,
        _ => 11,
    }
}

pub(crate) fn sort_objects(objects: &mut [Object]) {
    objects.sort_by(|a, b| {
        let key = |o: &Object| {
            (
                kind_rank(object::kind(o)),
                object::api_version(o).to_string(),
                object::kind(o).to_string(),
                object::namespace(o).unwrap_or_default().to_string(),
                object::name(o).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
}

pub(crate) fn revision(objects: &[Object]) -> String {
    let bytes = serde_json::to_vec(objects).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

fn revision_with_secrets(objects: &[Object], secrets: &[crate::secrets::SecretUse]) -> String {
    if secrets.is_empty() {
        return revision(objects);
    }
    let bytes = serde_json::to_vec(&(objects, secrets)).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Objects for one target, collected from every step that deploys there.
#[derive(Default)]
pub(crate) struct TargetBuilder {
    pub environment: Option<String>,
    pub held_by: Option<String>,
    pub objects: BTreeMap<(String, String, String, String), (Object, Origin)>,
    pub references: BTreeSet<ObjectReference>,
    pub claims: Vec<crate::capability::ClaimInstance>,
}

impl TargetBuilder {
    pub fn add(&mut self, namespace: &str, mut object: Object, origin: Origin) {
        let (api_version, kind) = (object::api_version(&object).to_string(), object::kind(&object).to_string());
        let object_namespace = if validate::is_cluster_scoped(&api_version, &kind) {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("namespace");
            }
            String::new()
        } else {
            let namespace = object::namespace(&object).unwrap_or(namespace).to_string();
            map_at(&mut object, &["metadata"]).insert("namespace".into(), json!(namespace));
            namespace
        };
        let key = (api_version, kind, object_namespace, object::name(&object).to_string());
        self.objects.insert(key, (object, origin));
    }
}

pub(crate) struct Finisher<'a> {
    pub platform: &'a Platform,
    pub app: &'a Resource,
    pub rules: Vec<ObjectRule>,
    pub secrets: Option<&'a crate::secrets::SecretCatalog>,
    /// The writer's role in the tenant ([`RenderOptions::tenant_role`]).
    pub role: Option<heimdall_model::spec::tenant::TenantRole>,
}

impl<'a> Finisher<'a> {
    pub fn new(platform: &'a Platform, app: &'a Resource, rules: Vec<ObjectRule>, options: &'a RenderOptions) -> Finisher<'a> {
        Finisher { platform, app, rules, secrets: options.secrets.as_deref(), role: options.tenant_role }
    }
}

/// Checks a target's objects against the tenant's rules; returns the findings.
type TenantCheck<'a> = Box<dyn Fn(&[Object]) -> Vec<Finding> + 'a>;

/// Every container image of a workload or pod.
fn images(object: &Object) -> impl Iterator<Item = &str> {
    let spec = if object::kind(object) == "Pod" { object.get("spec").and_then(Value::as_object) } else { object::pod_spec(object) };
    ["initContainers", "containers"]
        .into_iter()
        .filter_map(move |list| spec?.get(list)?.as_array())
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
}

impl Finisher<'_> {
    /// A tenant's rules for one target of its application: only its
    /// environments and namespaces (an error), its own namespace objects in
    /// `perApp` mode, and its allowed registries (a denying finding).
    fn tenant_guardrails(
        &self,
        cluster: &str,
        namespace: &str,
        environment: Option<&str>,
    ) -> Result<(Vec<Object>, TenantCheck<'_>), Problem> {
        let app_namespace = self.app.metadata.namespace.as_deref().unwrap_or_default();
        let Some(spec) = self.platform.tenant(app_namespace) else { return Ok((Vec::new(), Box::new(|_| Vec::new()))) };
        let app = self.app.metadata.name.as_str();
        // Without clusters (a render with no platform) there is nowhere to guard.
        let deliverable = !self.platform.clusters.is_empty();
        if deliverable && !environment.is_some_and(|e| spec.environments.iter().any(|allowed| allowed == e)) {
            return Err(Problem::new(
                "spec",
                format!(
                    "tenant {app_namespace} may not deploy to cluster {cluster} (environment {}); its environments: {}",
                    environment.unwrap_or("none"),
                    if spec.environments.is_empty() { "none".to_string() } else { spec.environments.join(", ") }
                ),
            ));
        }
        if !crate::tenant::owns_namespace(app_namespace, spec, app, namespace) {
            return Err(Problem::new(
                "spec",
                format!(
                    "namespace {namespace} is not tenant {app_namespace}'s: use {}",
                    crate::tenant::default_namespace(app_namespace, spec, app)
                ),
            ));
        }
        let objects = match spec.namespaces {
            heimdall_model::spec::tenant::NamespaceMode::PerApp => {
                crate::tenant::namespace_objects(self.platform, app_namespace, spec, namespace, environment)
            }
            heimdall_model::spec::tenant::NamespaceMode::PerTenant => Vec::new(),
        };
        let registries = spec.allowed_registries.clone();
        let tenant = app_namespace.to_string();
        let check: TenantCheck<'_> = Box::new(move |objects: &[Object]| {
            if registries.is_empty() {
                return Vec::new();
            }
            objects
                .iter()
                .flat_map(|object| images(object).map(move |image| (object, image)))
                .filter(|(_, image)| !registries.iter().any(|prefix| image.starts_with(prefix.as_str())))
                .map(|(object, image)| Finding {
                    policy: format!("tenant-{tenant}-registries"),
                    message: format!(
                        "{} {}: image {image:?} is not from tenant {tenant}'s registries ({})",
                        object::kind(object),
                        object::name(object),
                        registries.join(", ")
                    ),
                    enforcement: Enforcement::Deny,
                })
                .collect()
        });
        Ok((objects, check))
    }
}

impl Finisher<'_> {
    /// Stamps, validates, checks policies and sorts every target.
    pub fn finish(
        &self,
        builders: BTreeMap<(Option<String>, String, String), TargetBuilder>,
        workflow: Vec<StepStatus>,
        warnings: Vec<String>,
    ) -> Result<Rendered, Vec<Problem>> {
        let generation = self.app.metadata.generation.unwrap_or(1);
        let revision_label = format!("{}-v{generation}", self.app.metadata.name);
        let app_namespace = self.app.metadata.namespace.as_deref().unwrap_or_default();
        let confinement = self
            .platform
            .tenant(app_namespace)
            .map(|spec| crate::confine::Confinement::new(self.platform, app_namespace, spec, &self.app.metadata.name, self.role));
        let mut problems = Vec::new();
        let mut targets = Vec::new();
        let mut findings = Vec::new();
        let mut generate = Vec::new();
        for ((held_by, cluster, namespace), mut builder) in builders {
            let environment = builder.environment.take();
            let stamp = Stamp {
                app: self.app,
                revision: &revision_label,
                generation,
                environment: environment.as_deref(),
                platform: self.platform,
                rules: &self.rules,
            };
            let mut objects = Vec::new();
            let tenant = self.tenant_guardrails(&cluster, &namespace, environment.as_deref());
            let (tenant_objects, tenant_findings) = match tenant {
                Ok(found) => found,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            // The tenant's own namespace objects (perApp) are the platform's: an application may not replace one.
            for (object, origin) in builder.objects.values() {
                let same = |o: &&Object| {
                    object::kind(o) == object::kind(object)
                        && object::name(o) == object::name(object)
                        && object::namespace(o) == object::namespace(object)
                };
                if let Some(scaffolding) = tenant_objects.iter().find(same) {
                    problems.push(Problem::new(
                        origin.path.clone(),
                        format!(
                            "renders {}, which is tenant {app_namespace}'s own (its namespace's rules); choose another name",
                            describe_object(scaffolding)
                        ),
                    ));
                }
            }
            objects.extend(tenant_objects);
            // What a tenant may not deploy is refused before anything else is said about it.
            if let Some(confinement) = &confinement {
                let before = problems.len();
                for (object, origin) in builder.objects.values().filter(|(_, origin)| !origin.platform) {
                    let by = match &origin.component {
                        Some((name, type_)) => format!("component {name} ({type_})"),
                        None => "the application".to_string(),
                    };
                    for rule in confinement.check(object) {
                        problems.push(Problem::new(
                            origin.path.clone(),
                            format!("{by} renders {}, which tenant {app_namespace} may not deploy: {rule}", describe_object(object)),
                        ));
                    }
                }
                if problems.len() > before {
                    continue;
                }
            }
            let target_secrets = crate::secrets::TargetSecrets {
                platform: self.platform,
                app: self.app,
                catalog: self.secrets,
                cluster: &cluster,
                namespace: &namespace,
                environment: environment.as_deref(),
                generated: builder.claims.iter().filter_map(|c| c.generated.clone()).collect(),
            };
            let built: Vec<(&Object, &str)> = builder.objects.values().map(|(o, origin)| (o, origin.path.as_str())).collect();
            let resolved = target_secrets.resolve(&built);
            let secrets = match resolved {
                Ok(resolution) => resolution,
                Err(mut more) => {
                    problems.append(&mut more);
                    continue;
                }
            };
            generate.extend(secrets.generate);
            for object in secrets.objects {
                builder.add(&namespace, object, Origin::platform("spec"));
            }
            for (_, (mut object, origin)) in builder.objects {
                let mut object_problems = validate::normalize_quantities(&mut object);
                stamp.apply(&mut object, &origin);
                if let Err(more) = validate::check(&object) {
                    object_problems.extend(more);
                }
                let size = serde_json::to_vec(&object).map_or(0, |bytes| bytes.len());
                if size > heimdall_model::limits::MAX_OBJECT_BYTES {
                    object_problems.push((
                        String::new(),
                        format!(
                            "is {size} bytes; an object may be at most {} bytes (what the Kubernetes API server stores)",
                            heimdall_model::limits::MAX_OBJECT_BYTES
                        ),
                    ));
                }
                if !object_problems.is_empty() {
                    let what = format!("{} {}", object::kind(&object), object::name(&object));
                    for (path, message) in object_problems {
                        let at = if path.is_empty() { String::new() } else { format!(" {path}:") };
                        problems.push(Problem::new(origin.path.clone(), format!("renders an invalid {what}:{at} {message}")));
                    }
                }
                objects.push(object);
            }
            if self.app.metadata.annotations.get(crate::secrets::ROLLOUT_ANNOTATION).is_some_and(|v| v == "true") {
                crate::secrets::stamp_checksums(&mut objects, &secrets.uses);
            }
            sort_objects(&mut objects);
            let global_warn = self.platform.defaults.policy_enforcement == Enforcement::Warn;
            findings.extend(tenant_findings(&objects).into_iter().map(|mut finding| {
                if global_warn {
                    finding.enforcement = Enforcement::Warn;
                }
                TargetFinding { cluster: cluster.clone(), namespace: namespace.clone(), finding }
            }));
            if !self.platform.policies.is_empty() {
                let input = json!({
                    "app": {"kind": self.app.kind, "name": self.app.metadata.name, "namespace": self.app.metadata.namespace,
                            "labels": self.app.metadata.labels, "annotations": self.app.metadata.annotations},
                    "environment": environment.as_ref().map(|name| json!({"name": name})),
                    "cluster": {"name": cluster, "labels": self.platform.clusters.get(&cluster).map(|c| c.labels.clone()).unwrap_or_default()},
                    "namespace": namespace,
                    "claims": builder.claims,
                    "objects": objects,
                });
                findings.extend(self.platform.policies.evaluate(input).into_iter().map(|mut finding| {
                    if global_warn {
                        finding.enforcement = Enforcement::Warn;
                    }
                    TargetFinding { cluster: cluster.clone(), namespace: namespace.clone(), finding }
                }));
            }
            targets.push(Target {
                revision: revision_with_secrets(&objects, &secrets.uses),
                secrets: secrets.uses,
                cluster,
                namespace,
                environment,
                held_by,
                objects,
                references: builder.references.into_iter().collect(),
                claims: builder.claims,
            });
        }
        if !problems.is_empty() {
            return Err(sorted(problems));
        }
        targets.sort_by(|a, b| (a.held_by.is_some(), &a.cluster, &a.namespace).cmp(&(b.held_by.is_some(), &b.cluster, &b.namespace)));
        generate.sort();
        generate.dedup();
        Ok(Rendered { targets, workflow, findings, warnings, generate })
    }
}

/// `Deployment shop/web`, `ClusterRoleBinding admin`.
fn describe_object(object: &Object) -> String {
    match object::namespace(object) {
        Some(namespace) if !namespace.is_empty() => format!("{} {namespace}/{}", object::kind(object), object::name(object)),
        _ => format!("{} {}", object::kind(object), object::name(object)),
    }
}

/// Problems in path order, each once: the same mistake in several targets is one mistake.
pub(crate) fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    problems.dedup();
    problems
}

/// Renders a KubeVela Application.
pub(crate) fn render_application(app: &Resource, platform: &Platform, options: &RenderOptions) -> Result<Rendered, Vec<Problem>> {
    let spec: ApplicationSpec = deserialize_at(&app.spec, "spec").map_err(|p| vec![p])?;
    let waves = check_structure(&spec, platform)?;
    let app_namespace = app.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let plan = plan::plan(&plan::Context {
        spec: &spec,
        app_namespace: &platform.default_namespace(&app_namespace, &app.metadata.name),
        platform,
        environment: options.environment.as_deref(),
        approvals: &options.approvals,
    })?;
    let rules = object_rules(&spec)?;
    let generation = app.metadata.generation.unwrap_or(1);
    let mut builders: BTreeMap<(Option<String>, String, String), TargetBuilder> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut warnings = plan.warnings;
    for unit in &plan.units {
        if unit.placements.is_empty() {
            warnings.push(format!("step {} deploys to no cluster", unit.step));
        }
        for Placement { cluster, namespace, environment } in &unit.placements {
            let mut components: Vec<ComponentSpec> = spec
                .components
                .iter()
                .enumerate()
                .filter(|(_, c)| unit.components.as_ref().is_none_or(|names| names.contains(&c.name)))
                .map(|(i, c)| ComponentSpec::from_component(i, c))
                .collect();
            if let Some(overrides) = environment.as_ref().and_then(|e| platform.environments.get(e)).and_then(|e| e.overrides.as_ref()) {
                apply_override(&mut components, overrides);
            }
            for (overrides, _) in &unit.overrides {
                apply_override(&mut components, overrides);
            }
            let builder = builders.entry((unit.held_by.clone(), cluster.clone(), namespace.clone())).or_default();
            builder.environment = environment.clone();
            builder.held_by = unit.held_by.clone();
            let is_claim = |type_: &str| !platform.components.contains_key(type_) && !component::BUILTIN.iter().any(|(n, _)| *n == type_);
            // Claims first: their outputs are wired into the components that depend on them.
            let revision = format!("{}-v{generation}", app.metadata.name);
            let mut claim_outputs: BTreeMap<String, BTreeMap<String, crate::capability::OutputValue>> = BTreeMap::new();
            for component in components.iter().filter(|c| is_claim(&c.type_)) {
                let target = crate::capability::TargetContext {
                    platform,
                    catalog: options.claims.as_deref(),
                    app_name: &app.metadata.name,
                    app_namespace: &app_namespace,
                    namespace,
                    cluster,
                    environment: environment.as_deref(),
                    app_revision: &revision,
                };
                let path = format!("spec.components[{}]", component.index);
                let request = crate::capability::ClaimRequest {
                    name: &component.name,
                    type_: &component.type_,
                    parameters: &component.properties,
                    path: &format!("{path}.properties"),
                    type_path: &format!("{path}.type"),
                };
                match target.provision(&request) {
                    Ok(provisioned) => {
                        for (object, _) in provisioned.objects {
                            // A composition is the platform team's: it keeps its rights.
                            let origin = Origin {
                                component: Some((component.name.clone(), component.type_.clone())),
                                trait_type: None,
                                output: None,
                                path: path.clone(),
                                wave: waves[component.index],
                                platform: true,
                            };
                            builder.add(namespace, object, origin);
                        }
                        claim_outputs.insert(component.name.clone(), provisioned.outputs);
                        builder.claims.extend(provisioned.instances);
                        warnings.extend(provisioned.warnings);
                    }
                    Err(mut more) => problems.append(&mut more),
                }
            }
            for component in components.iter().filter(|c| !is_claim(&c.type_)) {
                let ctx = RenderContext {
                    app_name: app.metadata.name.clone(),
                    app_namespace: app_namespace.clone(),
                    namespace: namespace.clone(),
                    name: component.name.clone(),
                    component_type: component.type_.clone(),
                    app_revision: format!("{}-v{generation}", app.metadata.name),
                    environment: environment.clone(),
                    cluster: cluster.clone(),
                };
                match render_component(platform, component, &ctx, waves[component.index]) {
                    Ok((mut objects, references)) => {
                        let depends_on = &spec.components[component.index].depends_on;
                        for (claim, outputs) in claim_outputs.iter().filter(|(claim, _)| depends_on.contains(claim)) {
                            let workload = objects.iter_mut().find(|(_, o)| o.trait_type.is_none() && o.output.is_none());
                            if let Some((workload, _)) = workload
                                && crate::capability::wire(workload, &component.name, claim, outputs)
                            {
                                for instance in builder.claims.iter_mut().filter(|i| &i.claim == claim && i.serving) {
                                    instance.consumers.push(component.name.clone());
                                }
                            }
                        }
                        for (object, origin) in objects {
                            builder.add(namespace, object, origin);
                        }
                        builder.references.extend(references);
                    }
                    Err(mut component_problems) => problems.append(&mut component_problems),
                }
            }
            for object in &unit.objects {
                let origin = Origin {
                    component: None,
                    trait_type: None,
                    output: None,
                    path: format!("spec.workflow ({})", unit.step),
                    wave: 0,
                    platform: false,
                };
                builder.add(namespace, object.clone(), origin);
            }
        }
    }
    if !problems.is_empty() {
        return Err(sorted(problems));
    }
    Finisher::new(platform, app, rules, options).finish(builders, plan.steps, warnings)
}
