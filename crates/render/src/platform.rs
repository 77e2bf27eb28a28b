//! The platform: what the platform team decides, compiled once and shared by
//! every render. Built from stored resources (the hub) or a folder
//! (`heimdall render --platform DIR`).

use std::collections::BTreeMap;

use heimdall_model::spec::deserialize_at;
use heimdall_model::spec::platform::{ComponentDefinitionSpec, DefaultsSpec, EnvironmentSpec, PolicySpec, TraitDefinitionSpec};
use heimdall_model::spec::tenant::TenantSpec;
use heimdall_model::{DocumentError, LabelSelector, Problem, Resource};
use serde_json::Value;

use crate::rego::Policies;
use crate::template::{self, Parameters};

/// A component type defined by the platform team.
#[derive(Debug)]
pub struct CustomComponent {
    pub parameters: Option<Parameters>,
    pub template: Value,
}

/// A trait defined by the platform team.
#[derive(Debug)]
pub struct CustomTrait {
    pub applies_to: Vec<String>,
    pub parameters: Option<Parameters>,
    pub template: Value,
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub selector: LabelSelector,
    pub overrides: Option<Value>,
    pub secret_store: Option<heimdall_model::spec::platform::SecretStoreRef>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub secrets: heimdall_model::spec::platform::ClusterSecrets,
}

#[derive(Debug, Default)]
pub struct Platform {
    pub(crate) engine: template::Engine,
    pub(crate) components: BTreeMap<String, CustomComponent>,
    pub(crate) traits: BTreeMap<String, CustomTrait>,
    pub(crate) policies: Policies,
    pub(crate) defaults: DefaultsSpec,
    pub(crate) environments: BTreeMap<String, Environment>,
    pub(crate) clusters: BTreeMap<String, Cluster>,
    pub(crate) tenants: BTreeMap<String, TenantSpec>,
    pub(crate) capabilities: BTreeMap<String, crate::capability::CompiledCapability>,
}

fn source(resource: &Resource) -> String {
    format!("{} {}", resource.kind, resource.metadata.name)
}

impl Platform {
    /// Built-in definitions and default settings only: no clusters, so
    /// placement accepts the cluster names an application gives.
    pub fn builtin() -> Platform {
        Platform::default()
    }

    /// Compiles the platform kinds among `resources` (others are ignored).
    /// Every definition, schema and policy is checked; all problems are returned.
    pub fn from_resources<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Result<Platform, Vec<DocumentError>> {
        let mut platform = Platform::default();
        let mut errors = Vec::new();
        let mut policies = Vec::new();
        let mut defaults_seen: Option<String> = None;
        let mut fail = |resource: &Resource, problems: Vec<Problem>| errors.push(DocumentError::new(source(resource), problems));
        for resource in resources {
            let name = resource.metadata.name.clone();
            match resource.kind.as_str() {
                "ComponentDefinition" => match deserialize_at::<ComponentDefinitionSpec>(&resource.spec, "spec") {
                    Ok(spec) => match platform.compile_component(spec) {
                        Ok(component) => {
                            platform.components.insert(name, component);
                        }
                        Err(problems) => fail(resource, problems),
                    },
                    Err(problem) => fail(resource, vec![problem]),
                },
                "TraitDefinition" => match deserialize_at::<TraitDefinitionSpec>(&resource.spec, "spec") {
                    Ok(spec) => match platform.compile_trait(spec) {
                        Ok(definition) => {
                            platform.traits.insert(name, definition);
                        }
                        Err(problems) => fail(resource, problems),
                    },
                    Err(problem) => fail(resource, vec![problem]),
                },
                "Capability" => match deserialize_at::<heimdall_model::spec::capability::CapabilitySpec>(&resource.spec, "spec") {
                    Ok(spec) => match crate::capability::CompiledCapability::compile(spec, &platform.engine) {
                        Ok(capability) => {
                            platform.capabilities.insert(name, capability);
                        }
                        Err(problems) => fail(resource, problems),
                    },
                    Err(problem) => fail(resource, vec![problem]),
                },
                "Policy" => match deserialize_at::<PolicySpec>(&resource.spec, "spec") {
                    Ok(spec) => policies.push((name, spec.rego, spec.enforcement)),
                    Err(problem) => fail(resource, vec![problem]),
                },
                "Defaults" => {
                    if let Some(first) = &defaults_seen {
                        fail(
                            resource,
                            vec![Problem::new("metadata.name", format!("Defaults {first} is already defined; keep one Defaults object"))],
                        );
                        continue;
                    }
                    defaults_seen = Some(name);
                    let spec = if resource.spec.is_null() { serde_json::json!({}) } else { resource.spec.clone() };
                    match deserialize_at::<DefaultsSpec>(&spec, "spec") {
                        Ok(spec) => platform.defaults = spec,
                        Err(problem) => fail(resource, vec![problem]),
                    }
                }
                "Environment" => {
                    let spec = if resource.spec.is_null() { serde_json::json!({}) } else { resource.spec.clone() };
                    match deserialize_at::<EnvironmentSpec>(&spec, "spec") {
                        Ok(spec) => {
                            platform.environments.insert(
                                name.clone(),
                                Environment {
                                    name,
                                    selector: spec.cluster_selector.to_selector(),
                                    overrides: spec.overrides,
                                    secret_store: spec.secret_store,
                                },
                            );
                        }
                        Err(problem) => fail(resource, vec![problem]),
                    }
                }
                "Tenant" => {
                    let spec = if resource.spec.is_null() { serde_json::json!({}) } else { resource.spec.clone() };
                    match deserialize_at::<TenantSpec>(&spec, "spec") {
                        Ok(spec) => {
                            platform.tenants.insert(name, spec);
                        }
                        Err(problem) => fail(resource, vec![problem]),
                    }
                }
                "Cluster" => {
                    let spec = if resource.spec.is_null() { serde_json::json!({}) } else { resource.spec.clone() };
                    match deserialize_at::<heimdall_model::spec::platform::ClusterSpec>(&spec, "spec") {
                        Ok(spec) => {
                            let secrets = spec.secrets.unwrap_or_default();
                            platform.clusters.insert(name.clone(), Cluster { name, labels: resource.metadata.labels.clone(), secrets });
                        }
                        Err(problem) => fail(resource, vec![problem]),
                    }
                }
                _ => {}
            }
        }
        match Policies::compile(&policies) {
            Ok(compiled) => platform.policies = compiled,
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(name, problem)| DocumentError::new(format!("Policy {name}"), vec![problem])))
            }
        }
        errors.extend(crate::tenant::check_tenant_namespaces(&platform.tenants));
        for (i, env) in platform.defaults.environments.iter().enumerate() {
            if !platform.environments.contains_key(env) {
                errors.push(DocumentError::new(
                    format!("Defaults {}", defaults_seen.clone().unwrap_or_default()),
                    vec![Problem::new(format!("spec.environments[{i}]"), format!("no Environment named {env:?}"))],
                ));
            }
        }
        if errors.is_empty() { Ok(platform) } else { Err(errors) }
    }

    fn compile_parameters(schema: Option<&Value>) -> Result<Option<Parameters>, Vec<Problem>> {
        schema.map(|schema| Parameters::compile(schema, "spec.parameters")).transpose().map_err(|p| vec![p])
    }

    fn compile_component(&self, spec: ComponentDefinitionSpec) -> Result<CustomComponent, Vec<Problem>> {
        let parameters = Self::compile_parameters(spec.parameters.as_ref())?;
        let problems = self.engine.check(&spec.template, "spec.template");
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(CustomComponent { parameters, template: spec.template })
    }

    fn compile_trait(&self, spec: TraitDefinitionSpec) -> Result<CustomTrait, Vec<Problem>> {
        let parameters = Self::compile_parameters(spec.parameters.as_ref())?;
        let problems = self.engine.check(&spec.template, "spec.template");
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(CustomTrait { applies_to: spec.applies_to, parameters, template: spec.template })
    }

    /// The tenant an application in hub namespace `namespace` belongs to:
    /// the Tenant of that name. Namespaces without one belong to the platform team.
    pub fn tenant(&self, namespace: &str) -> Option<&TenantSpec> {
        self.tenants.get(namespace)
    }

    pub fn tenants(&self) -> impl Iterator<Item = (&String, &TenantSpec)> {
        self.tenants.iter()
    }

    /// Where an application goes when nothing says: its tenant's namespace
    /// (or its own, for `perApp` tenants), else its hub namespace.
    pub fn default_namespace(&self, app_namespace: &str, app: &str) -> String {
        match self.tenant(app_namespace) {
            Some(spec) => crate::tenant::default_namespace(app_namespace, spec, app),
            None => app_namespace.to_string(),
        }
    }

    /// Whether the platform has a Cluster of this name.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters.contains_key(name)
    }

    pub fn cluster_names(&self) -> impl Iterator<Item = String> + '_ {
        self.clusters.keys().cloned()
    }

    pub fn defaults(&self) -> &DefaultsSpec {
        &self.defaults
    }

    /// The clusters an environment selects, in name order.
    pub(crate) fn clusters_of(&self, environment: &Environment) -> Vec<&Cluster> {
        self.clusters.values().filter(|c| environment.selector.matches(&c.labels)).collect()
    }

    /// The environment a cluster serves: the first (by name) whose selector matches it.
    pub(crate) fn environment_of(&self, cluster: &str) -> Option<&Environment> {
        let labels = &self.clusters.get(cluster)?.labels;
        self.environments.values().find(|e| !e.selector.is_empty() && e.selector.matches(labels))
    }

    /// Every component type name, built-in and custom, for suggestions.
    pub fn component_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> =
            crate::component::BUILTIN.iter().map(|(n, _)| *n).chain(self.components.keys().map(String::as_str)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// A capability by its name or one of its aliases.
    pub(crate) fn capability(&self, type_: &str) -> Option<(&str, &crate::capability::CompiledCapability)> {
        if let Some((name, capability)) = self.capabilities.get_key_value(type_) {
            return Some((name.as_str(), capability));
        }
        self.capabilities.iter().find(|(_, c)| c.spec.aliases.iter().any(|a| a == type_)).map(|(n, c)| (n.as_str(), c))
    }

    /// Every capability name and alias.
    pub fn capability_types(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.capabilities.iter().flat_map(|(name, c)| std::iter::once(name.clone()).chain(c.spec.aliases.iter().cloned())).collect();
        names.sort_unstable();
        names
    }

    /// The compositions of a capability, for plans: name and provider.
    pub fn compositions(&self, type_: &str) -> Option<Vec<(String, Option<String>)>> {
        self.capability(type_).map(|(_, c)| c.spec.compositions.iter().map(|c| (c.name.clone(), c.provider.clone())).collect())
    }

    pub fn trait_types(&self) -> Vec<&str> {
        let mut names: Vec<&str> = crate::traits::BUILTIN.iter().map(|(n, _)| *n).chain(self.traits.keys().map(String::as_str)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}
