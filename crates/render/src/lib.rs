//! Heimdall's renderer: an application in, validated Kubernetes manifests per
//! target cluster out. Pure and deterministic: no IO, no clock, no randomness;
//! the same input gives byte-identical output.
//!
//! ```text
//! Application / Score Workload
//!   -> structure checks (types, traits, dependsOn)      render.rs
//!   -> plan: policies + workflow -> deploy units       plan.rs
//!   -> per target: components + traits                  component.rs, traits.rs, definitions.rs
//!   -> labels, org defaults, policy annotations         render.rs
//!   -> Kubernetes type checks                           validate.rs
//!   -> Rego policies                                    rego.rs
//!   -> sorted targets with revisions
//! ```

pub mod capability;
pub mod component;
pub mod confine;
pub mod context;
mod definitions;
pub mod object;
pub mod params;
pub mod plan;
pub mod platform;
pub mod quantity;
pub mod rego;
mod render;
pub mod score;
pub mod secrets;
pub mod template;
pub mod tenant;
pub mod traits;
pub mod validate;

use heimdall_model::{DocumentError, Resource};

pub use capability::{ClaimCatalog, ClaimInstance, Migration};
pub use platform::Platform;
pub use render::{RenderOptions, Rendered, Target, TargetFinding};
pub use secrets::{SecretCatalog, SecretUse};

/// Renders an Application or a Score Workload. Errors carry `source` (the
/// file or resource the application came from) and a path inside it.
pub fn render(app: &Resource, source: &str, platform: &Platform, options: &RenderOptions) -> Result<Rendered, DocumentError> {
    let result = match app.kind.as_str() {
        "Application" => render::render_application(app, platform, options),
        "Workload" => score::render_workload(app, platform, options),
        "Tenant" => tenant::render_tenant(app, platform),
        "Claim" => capability::render_claim(app, platform, options),
        other => Err(vec![heimdall_model::Problem::new(
            "kind",
            format!("{other} is not something that renders: expected Application, Workload, Claim or Tenant"),
        )]),
    };
    result.map_err(|problems| DocumentError::new(source, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adding a kind that renders is its registry entry plus its renderer:
    /// the hub re-renders, delivers and compiles by the registry, and this
    /// keeps the renderer's dispatch and the registry saying the same.
    #[test]
    fn the_kind_registry_and_the_renderer_agree_on_what_renders() {
        let platform = Platform::from_resources(std::iter::empty::<&Resource>()).expect("an empty platform compiles");
        for info in heimdall_model::kinds::KINDS {
            let namespace = if info.is_namespaced() { serde_json::json!("shop") } else { serde_json::Value::Null };
            let resource: Resource = serde_json::from_value(serde_json::json!({
                "apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "probe", "namespace": namespace}, "spec": {},
            }))
            .expect("a resource");
            let refused = match render(&resource, "probe.yaml", &platform, &RenderOptions::default()) {
                Ok(_) => false,
                Err(error) => error.problems.iter().any(|p| p.message.contains("is not something that renders")),
            };
            assert_eq!(!refused, info.rendering.renders(), "{}: the registry says renders = {}", info.kind, info.rendering.renders());
        }
    }
}
