//! Rendering the platform team's own component types and traits: the same
//! contract as the built-ins (properties in, workload and outputs out), with
//! parameters checked by JSON Schema and objects made by templates.

use heimdall_model::Problem;
use serde_json::{Map, Value, json};

use crate::context::{ComponentOutput, Output, RenderContext};
use crate::object::strategic_merge;
use crate::platform::{CustomComponent, CustomTrait, Platform};
use crate::template::Parameters;

fn read_parameters(parameters: &Option<Parameters>, properties: &Map<String, Value>, path: &str) -> Result<Value, Vec<Problem>> {
    match parameters {
        Some(parameters) => parameters.read(properties, path),
        None => Ok(Value::Object(properties.clone())),
    }
}

fn scope(parameters: Value, ctx: &RenderContext, workload: Option<&Value>) -> Map<String, Value> {
    let mut scope = Map::new();
    scope.insert("parameters".into(), parameters);
    scope.insert("context".into(), serde_json::to_value(ctx).unwrap_or(Value::Null));
    if let Some(workload) = workload {
        scope.insert("workload".into(), workload.clone());
    }
    scope
}

/// A template failure is reported where the application uses the definition,
/// with the place in the definition that failed.
fn definition_problem(kind: &str, name: &str, path: &str, problem: Problem) -> Vec<Problem> {
    vec![Problem::new(path, format!("{kind} {name} failed at {}: {}", problem.path, problem.message))]
}

fn outputs(
    platform: &Platform,
    template: &Value,
    scope: &Map<String, Value>,
    kind: &str,
    name: &str,
    path: &str,
) -> Result<Vec<(String, Value)>, Vec<Problem>> {
    let mut out = Vec::new();
    for (output_name, output) in template.get("outputs").and_then(Value::as_object).into_iter().flatten() {
        let at = format!("spec.template.outputs.{output_name}");
        if let Some(object) = platform.engine.evaluate(output, scope.clone(), &at).map_err(|p| definition_problem(kind, name, path, p))? {
            if !object.is_object() {
                return Err(definition_problem(kind, name, path, Problem::new(at, "expected the output to be an object")));
            }
            out.push((output_name.clone(), object));
        }
    }
    Ok(out)
}

pub fn render_component(
    platform: &Platform,
    definition: &CustomComponent,
    name: &str,
    properties: &Map<String, Value>,
    ctx: &RenderContext,
    path: &str,
) -> Result<ComponentOutput, Vec<Problem>> {
    let parameters = read_parameters(&definition.parameters, properties, path)?;
    let scope = scope(parameters, ctx, None);
    let kind = "ComponentDefinition";
    let workload = match definition.template.get("workload") {
        Some(template) => platform
            .engine
            .evaluate(template, scope.clone(), "spec.template.workload")
            .map_err(|p| definition_problem(kind, name, path, p))?,
        None => None,
    };
    if let Some(workload) = &workload
        && !workload.is_object()
    {
        return Err(definition_problem(kind, name, path, Problem::new("spec.template.workload", "expected the workload to be an object")));
    }
    let outputs = outputs(platform, &definition.template, &scope, kind, name, path)?
        .into_iter()
        .map(|(name, object)| Output { name, object, trait_type: None })
        .collect();
    Ok(ComponentOutput { workload, outputs, references: Vec::new() })
}

#[allow(clippy::too_many_arguments)]
pub fn apply_trait(
    platform: &Platform,
    definition: &CustomTrait,
    name: &str,
    component_type: &str,
    properties: &Map<String, Value>,
    ctx: &RenderContext,
    path: &str,
    component: &mut ComponentOutput,
) -> Result<(), Vec<Problem>> {
    if !definition.applies_to.is_empty() && !definition.applies_to.iter().any(|t| t == component_type || t == "*") {
        let type_path = path.strip_suffix(".properties").unwrap_or(path);
        return Err(vec![Problem::new(
            format!("{type_path}.type"),
            format!("trait {name} does not fit component type {component_type}: it applies to {}", definition.applies_to.join(", ")),
        )]);
    }
    let parameters = read_parameters(&definition.parameters, properties, path)?;
    let scope = scope(parameters, ctx, component.workload.as_ref());
    let kind = "TraitDefinition";
    if let Some(template) = definition.template.get("patch") {
        let Some(workload) = component.workload.as_mut() else {
            return Err(vec![Problem::new(path, format!("trait {name} patches a workload, and component type {component_type} has none"))]);
        };
        if let Some(patch) =
            platform.engine.evaluate(template, scope.clone(), "spec.template.patch").map_err(|p| definition_problem(kind, name, path, p))?
        {
            strategic_merge(workload, &patch);
        }
    }
    for (output_name, object) in outputs(platform, &definition.template, &scope, kind, name, path)? {
        component.outputs.push(Output { name: output_name, object, trait_type: Some(name.to_string()) });
    }
    let _ = json!(null);
    Ok(())
}
