//! From an Application's policies and workflow to a plan: which components go
//! to which cluster and namespace, with which overrides, and which steps are
//! held behind an approval gate.
//!
//! Without a workflow, each topology policy becomes one deploy step carrying
//! every override policy, as in KubeVela. A `suspend` step (or a `deploy`
//! with `auto: false`) holds every later step until it is approved; in DAG
//! mode it holds only the steps that depend on it.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_model::Problem;
use heimdall_model::spec::application::{AppPolicy, ApplicationSpec, WorkflowStep};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::params;
use crate::platform::Platform;

/// Where a deploy step puts its objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    pub cluster: String,
    pub namespace: String,
    pub environment: Option<String>,
}

/// One deploy step's work.
#[derive(Debug, Clone)]
pub struct Unit {
    pub step: String,
    pub placements: Vec<Placement>,
    /// Override policy properties, in the order they apply, with their paths.
    pub overrides: Vec<(Value, String)>,
    /// Only these components (`apply-component`); `None` for all.
    pub components: Option<Vec<String>>,
    /// The suspend step this unit waits for, if it is not approved.
    pub held_by: Option<String>,
    /// Objects the step itself writes (`export2config`, `export2secret`).
    pub objects: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Done at render time.
    Succeeded,
    /// An approval gate that has not been approved.
    Suspended,
    /// Waiting behind a gate.
    Pending,
    /// Runs in the cluster (reads state the renderer cannot see).
    Runtime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub units: Vec<Unit>,
    pub steps: Vec<StepStatus>,
    pub warnings: Vec<String>,
}

pub const STEP_TYPES: &[&str] = &[
    "deploy",
    "apply-component",
    "suspend",
    "step-group",
    "export2config",
    "export2secret",
    "print-message-in-status",
    "depends-on-app",
    "read-object",
];

/// Policy types that place, override, or mark objects for the agent.
pub const POLICY_TYPES: &[&str] =
    &["topology", "override", "garbage-collect", "apply-once", "shared-resource", "take-over", "read-only", "resource-update"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Topology {
    clusters: Option<Vec<String>>,
    cluster_label_selector: Option<BTreeMap<String, String>>,
    cluster_selector: Option<BTreeMap<String, String>>,
    namespace: Option<String>,
    #[serde(default)]
    allow_empty: bool,
    /// Heimdall's extension: the clusters of this Environment.
    environment: Option<String>,
}

pub struct Context<'a> {
    pub spec: &'a ApplicationSpec,
    pub app_namespace: &'a str,
    pub platform: &'a Platform,
    pub environment: Option<&'a str>,
    pub approvals: &'a BTreeSet<String>,
}

fn policy_name(policy: &AppPolicy, index: usize) -> String {
    policy.name.clone().unwrap_or_else(|| format!("policy-{index}"))
}

fn properties(policy: &AppPolicy) -> Map<String, Value> {
    policy.properties.clone().unwrap_or_default()
}

impl Context<'_> {
    fn placements_for_environment(&self, name: &str, path: &str, namespace: Option<&str>) -> Result<Vec<Placement>, Vec<Problem>> {
        let Some(environment) = self.platform.environments.get(name) else {
            let known: Vec<&str> = self.platform.environments.keys().map(String::as_str).collect();
            let hint = params::closest(name, known.iter().copied()).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            let known =
                if known.is_empty() { "none; pass --platform DIR with Environment definitions".to_string() } else { known.join(", ") };
            return Err(vec![Problem::new(path, format!("unknown environment {name:?} (known: {known}){hint}"))]);
        };
        Ok(self
            .platform
            .clusters_of(environment)
            .into_iter()
            .map(|cluster| Placement {
                cluster: cluster.name.clone(),
                namespace: namespace.unwrap_or(self.app_namespace).to_string(),
                environment: Some(name.to_string()),
            })
            .collect())
    }

    /// Where an application goes when no topology says: the requested
    /// environment, else the platform's default environments, else (with no
    /// platform) the pseudo-cluster `local`.
    fn default_placements(&self) -> Result<Vec<Placement>, Vec<Problem>> {
        if let Some(environment) = self.environment {
            return self.placements_for_environment(environment, "environment", None);
        }
        if !self.platform.defaults.environments.is_empty() {
            let mut placements = Vec::new();
            for env in &self.platform.defaults.environments {
                placements.extend(self.placements_for_environment(env, "Defaults.spec.environments", None)?);
            }
            return Ok(placements);
        }
        if self.platform.clusters.is_empty() {
            return Ok(vec![Placement { cluster: "local".into(), namespace: self.app_namespace.to_string(), environment: None }]);
        }
        Ok(Vec::new())
    }

    fn topology(&self, policy: &AppPolicy, path: &str) -> Result<Vec<Placement>, Vec<Problem>> {
        let allowed = ["clusters", "clusterLabelSelector", "clusterSelector", "namespace", "allowEmpty", "environment"];
        let topology: Topology = params::read(&properties(policy), &allowed, path)?;
        let namespace = topology.namespace.as_deref();
        let mut placements = Vec::new();
        if let Some(environment) = &topology.environment {
            placements.extend(self.placements_for_environment(environment, &format!("{path}.environment"), namespace)?);
        }
        let strict = !self.platform.clusters.is_empty();
        for (i, cluster) in topology.clusters.iter().flatten().enumerate() {
            if strict && !self.platform.clusters.contains_key(cluster) {
                let hint = params::closest(cluster, self.platform.clusters.keys().map(String::as_str))
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                return Err(vec![Problem::new(format!("{path}.clusters[{i}]"), format!("unknown cluster {cluster:?}{hint}"))]);
            }
            placements.push(Placement {
                cluster: cluster.clone(),
                namespace: namespace.unwrap_or(self.app_namespace).to_string(),
                environment: self.platform.environment_of(cluster).map(|e| e.name.clone()),
            });
        }
        if let Some(labels) = topology.cluster_label_selector.as_ref().or(topology.cluster_selector.as_ref()) {
            for cluster in self.platform.clusters.values() {
                if labels.iter().all(|(k, v)| cluster.labels.get(k) == Some(v)) {
                    placements.push(Placement {
                        cluster: cluster.name.clone(),
                        namespace: namespace.unwrap_or(self.app_namespace).to_string(),
                        environment: self.platform.environment_of(&cluster.name).map(|e| e.name.clone()),
                    });
                }
            }
        }
        if topology.clusters.is_none()
            && topology.cluster_label_selector.is_none()
            && topology.cluster_selector.is_none()
            && topology.environment.is_none()
        {
            // A topology with only a namespace keeps the default clusters.
            placements = self
                .default_placements()?
                .into_iter()
                .map(|p| Placement { namespace: namespace.unwrap_or(&p.namespace).to_string(), ..p })
                .collect();
        }
        if placements.is_empty() && !topology.allow_empty && strict {
            return Err(vec![Problem::new(path, "selects no cluster; set allowEmpty: true if that is intended")]);
        }
        Ok(placements)
    }

    /// Placements for a workload without policies (Score).
    pub fn plan_default(&self) -> Result<Vec<Placement>, Vec<Problem>> {
        self.default_placements()
    }

    /// Restricts placements to the requested environment, if any.
    fn in_environment(&self, placements: Vec<Placement>) -> Vec<Placement> {
        match self.environment {
            Some(env) => placements.into_iter().filter(|p| p.environment.as_deref() == Some(env)).collect(),
            None => placements,
        }
    }
}

struct Policies<'a> {
    by_name: BTreeMap<String, (usize, &'a AppPolicy)>,
}

fn check_overrides(spec: &ApplicationSpec, policy: &AppPolicy, path: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let props = properties(policy);
    for key in props.keys() {
        if key != "components" && key != "selector" {
            problems.push(Problem::new(format!("{path}.{key}"), "unknown property (expected components or selector)"));
        }
    }
    for (j, entry) in props.get("components").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(name) = entry.get("name").and_then(Value::as_str)
            && name != "*"
            && !spec.components.iter().any(|c| c.name == name)
        {
            let hint = params::closest(name, spec.components.iter().map(|c| c.name.as_str()))
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_default();
            problems.push(Problem::new(format!("{path}.components[{j}].name"), format!("no component named {name:?}{hint}")));
        }
    }
    for (j, name) in props.get("selector").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(name) = name.as_str()
            && !spec.components.iter().any(|c| c.name == name)
        {
            problems.push(Problem::new(format!("{path}.selector[{j}]"), format!("no component named {name:?}")));
        }
    }
    problems
}

/// Builds the plan, or every problem with the policies and workflow.
pub fn plan(ctx: &Context) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut policies = Policies { by_name: BTreeMap::new() };
    for (i, policy) in ctx.spec.policies.iter().enumerate() {
        let path = format!("spec.policies[{i}]");
        if !POLICY_TYPES.contains(&policy.type_.as_str()) {
            let hint =
                params::closest(&policy.type_, POLICY_TYPES.iter().copied()).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            problems.push(Problem::new(
                format!("{path}.type"),
                format!("unknown policy type {:?}{hint} (expected one of {})", policy.type_, POLICY_TYPES.join(", ")),
            ));
        }
        if policy.type_ == "override" {
            problems.extend(check_overrides(ctx.spec, policy, &format!("{path}.properties")));
        }
        policies.by_name.insert(policy_name(policy, i), (i, policy));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut plan = Plan::default();
    let steps = ctx.spec.workflow.as_ref().map(|w| w.steps.as_slice()).unwrap_or_default();
    if steps.is_empty() {
        default_workflow(ctx, &mut plan)?;
        return Ok(plan);
    }
    let dag = ctx.spec.workflow.as_ref().and_then(|w| w.mode.as_ref()).and_then(|m| m.steps.as_deref()) == Some("DAG");
    let mut held: Option<String> = None;
    let mut held_steps: BTreeMap<String, String> = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        let path = format!("spec.workflow.steps[{i}]");
        let name = step.name.clone().unwrap_or_else(|| format!("step-{i}"));
        // In DAG mode a gate holds only the steps that depend on it.
        let gate = if dag { step.depends_on.iter().find_map(|d| held_steps.get(d).cloned()) } else { held.clone() };
        let result = run_step(ctx, &policies, step, &name, &path, gate.clone(), &mut plan);
        match result {
            Ok(Some(new_gate)) => {
                if !dag && held.is_none() {
                    held = Some(new_gate.clone());
                }
                held_steps.insert(name, new_gate);
            }
            Ok(None) => {
                if let Some(gate) = gate {
                    held_steps.insert(name, gate);
                }
            }
            Err(mut step_problems) => problems.append(&mut step_problems),
        }
    }
    if problems.is_empty() { Ok(plan) } else { Err(problems) }
}

fn default_workflow(ctx: &Context, plan: &mut Plan) -> Result<(), Vec<Problem>> {
    let overrides: Vec<(Value, String)> = ctx
        .spec
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.type_ == "override")
        .map(|(i, p)| (Value::Object(properties(p)), format!("spec.policies[{i}].properties")))
        .collect();
    let topologies: Vec<(usize, &AppPolicy)> = ctx.spec.policies.iter().enumerate().filter(|(_, p)| p.type_ == "topology").collect();
    if topologies.is_empty() {
        plan.units.push(Unit {
            step: "deploy".into(),
            placements: ctx.default_placements()?,
            overrides,
            components: None,
            held_by: None,
            objects: Vec::new(),
        });
    } else {
        for (i, policy) in topologies {
            let placements = ctx.in_environment(ctx.topology(policy, &format!("spec.policies[{i}].properties"))?);
            plan.units.push(Unit {
                step: format!("deploy-{}", policy_name(policy, i)),
                placements,
                overrides: overrides.clone(),
                components: None,
                held_by: None,
                objects: Vec::new(),
            });
        }
    }
    plan.steps.push(deploy_step());
    Ok(())
}

/// The one step of a render without a workflow: deploy, done.
pub(crate) fn deploy_step() -> StepStatus {
    StepStatus { name: "deploy".into(), type_: "deploy".into(), phase: Phase::Succeeded, message: None }
}

fn step_properties(step: &WorkflowStep) -> Map<String, Value> {
    step.properties.clone().unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deploy {
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default = "yes")]
    auto: bool,
    parallelism: Option<u32>,
    ignore_terraform_component: Option<bool>,
}

fn yes() -> bool {
    true
}

/// Runs one step into the plan. Returns the name of a new unapproved gate.
fn run_step(
    ctx: &Context,
    policies: &Policies,
    step: &WorkflowStep,
    name: &str,
    path: &str,
    gate: Option<String>,
    plan: &mut Plan,
) -> Result<Option<String>, Vec<Problem>> {
    let props = step_properties(step);
    let props_path = format!("{path}.properties");
    let status = |phase: Phase, message: Option<String>| StepStatus { name: name.to_string(), type_: step.type_.clone(), phase, message };
    let settled = |gate: &Option<String>| if gate.is_some() { Phase::Pending } else { Phase::Succeeded };
    let approved = ctx.approvals.contains(name);
    let mut new_gate = None;
    match step.type_.as_str() {
        "suspend" => {
            let message = props.get("message").and_then(Value::as_str).map(String::from);
            if approved || gate.is_some() {
                plan.steps.push(status(if approved { Phase::Succeeded } else { Phase::Pending }, message));
            } else {
                plan.steps.push(status(
                    Phase::Suspended,
                    Some(message.unwrap_or_else(|| format!("waiting for approval: heimdall approve ... --step {name}"))),
                ));
                new_gate = Some(name.to_string());
            }
        }
        "deploy" => {
            let deploy: Deploy = params::read(&props, &["policies", "auto", "parallelism", "ignoreTerraformComponent"], &props_path)?;
            let _ = (deploy.parallelism, deploy.ignore_terraform_component);
            let mut placements = Vec::new();
            let mut overrides = Vec::new();
            let mut has_topology = false;
            for (j, policy_ref) in deploy.policies.iter().enumerate() {
                let at = format!("{props_path}.policies[{j}]");
                let Some((index, policy)) = policies.by_name.get(policy_ref) else {
                    let hint = params::closest(policy_ref, policies.by_name.keys().map(String::as_str))
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    return Err(vec![Problem::new(at, format!("no policy named {policy_ref:?}{hint}"))]);
                };
                match policy.type_.as_str() {
                    "topology" => {
                        has_topology = true;
                        placements.extend(ctx.topology(policy, &format!("spec.policies[{index}].properties"))?);
                    }
                    "override" => overrides.push((Value::Object(properties(policy)), format!("spec.policies[{index}].properties"))),
                    other => {
                        return Err(vec![Problem::new(at, format!("a deploy step takes topology and override policies, not {other}"))]);
                    }
                }
            }
            if !has_topology {
                placements = ctx.default_placements()?;
            }
            let mut gate = gate;
            if !deploy.auto && !approved && gate.is_none() {
                gate = Some(name.to_string());
                new_gate = Some(name.to_string());
            }
            plan.units.push(Unit {
                step: name.to_string(),
                placements: ctx.in_environment(placements),
                overrides,
                components: None,
                held_by: gate.clone(),
                objects: Vec::new(),
            });
            let phase = if new_gate.is_some() { Phase::Suspended } else { settled(&gate) };
            plan.steps.push(status(phase, None));
        }
        "apply-component" => {
            #[derive(Deserialize)]
            struct ApplyComponent {
                component: String,
                cluster: Option<String>,
                namespace: Option<String>,
            }
            let apply: ApplyComponent = params::read(&props, &["component", "cluster", "namespace"], &props_path)?;
            if !ctx.spec.components.iter().any(|c| c.name == apply.component) {
                return Err(vec![Problem::new(format!("{props_path}.component"), format!("no component named {:?}", apply.component))]);
            }
            let placements = match apply.cluster {
                Some(cluster) => vec![Placement {
                    environment: ctx.platform.environment_of(&cluster).map(|e| e.name.clone()),
                    cluster,
                    namespace: apply.namespace.clone().unwrap_or_else(|| ctx.app_namespace.to_string()),
                }],
                None => ctx
                    .default_placements()?
                    .into_iter()
                    .map(|p| Placement { namespace: apply.namespace.clone().unwrap_or(p.namespace.clone()), ..p })
                    .collect(),
            };
            plan.units.push(Unit {
                step: name.to_string(),
                placements: ctx.in_environment(placements),
                overrides: Vec::new(),
                components: Some(vec![apply.component]),
                held_by: gate.clone(),
                objects: Vec::new(),
            });
            plan.steps.push(status(settled(&gate), None));
        }
        "step-group" => {
            plan.steps.push(status(settled(&gate), None));
            for (j, sub) in step.sub_steps.iter().enumerate() {
                let sub_name = sub.name.clone().unwrap_or_else(|| format!("{name}-{j}"));
                if sub.type_ == "step-group" {
                    return Err(vec![Problem::new(format!("{path}.subSteps[{j}].type"), "step groups cannot nest")]);
                }
                if let Some(inner) = run_step(ctx, policies, sub, &sub_name, &format!("{path}.subSteps[{j}]"), gate.clone(), plan)? {
                    new_gate.get_or_insert(inner);
                }
            }
        }
        "export2config" | "export2secret" => {
            let secret = step.type_ == "export2secret";
            let name_key = if secret { "secretName" } else { "configName" };
            let allowed: &[&str] = if secret {
                &["secretName", "namespace", "type", "data", "cluster", "kind", "dockerRegistry"]
            } else {
                &["configName", "namespace", "data", "cluster"]
            };
            let props: Map<String, Value> = params::read(&props, allowed, &props_path)?;
            let Some(object_name) = props.get(name_key).and_then(Value::as_str) else {
                return Err(vec![Problem::new(format!("{props_path}.{name_key}"), "required field is missing")]);
            };
            let data: BTreeMap<String, String> = props
                .get("data")
                .and_then(Value::as_object)
                .map(|d| d.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), String::from))).collect())
                .unwrap_or_default();
            let mut object = if secret {
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": object_name}, "type": props.get("type").and_then(Value::as_str).unwrap_or("Opaque"), "stringData": data})
            } else {
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": object_name}, "data": data})
            };
            if let Some(namespace) = props.get("namespace").and_then(Value::as_str) {
                object["metadata"]["namespace"] = json!(namespace);
            }
            let placements = match props.get("cluster").and_then(Value::as_str) {
                Some(cluster) => vec![Placement {
                    cluster: cluster.to_string(),
                    namespace: ctx.app_namespace.to_string(),
                    environment: ctx.platform.environment_of(cluster).map(|e| e.name.clone()),
                }],
                None => ctx.default_placements()?,
            };
            plan.units.push(Unit {
                step: name.to_string(),
                placements: ctx.in_environment(placements),
                overrides: Vec::new(),
                components: Some(Vec::new()),
                held_by: gate.clone(),
                objects: vec![object],
            });
            plan.steps.push(status(settled(&gate), None));
        }
        "print-message-in-status" => {
            let message = props.get("message").and_then(Value::as_str).map(String::from);
            plan.steps.push(status(settled(&gate), message));
        }
        "depends-on-app" | "read-object" => {
            plan.steps.push(status(
                if gate.is_some() { Phase::Pending } else { Phase::Runtime },
                Some("checked in the cluster by the agent".into()),
            ));
        }
        other => {
            let hint = params::closest(other, STEP_TYPES.iter().copied()).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            return Err(vec![Problem::new(
                format!("{path}.type"),
                format!("unknown workflow step type {other:?}{hint} (expected one of {})", STEP_TYPES.join(", ")),
            )]);
        }
    }
    Ok(new_gate)
}
