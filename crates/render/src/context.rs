//! What a component or trait renders with, and what it produces.

use serde::{Deserialize, Serialize};

use crate::object::Object;

/// Everything a definition may know about where it is rendered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderContext {
    pub app_name: String,
    pub app_namespace: String,
    /// The namespace the objects go to in the target cluster.
    pub namespace: String,
    /// The component's name; also the name of its main objects.
    pub name: String,
    pub component_type: String,
    /// `<app>-v<generation>`, as KubeVela's `app.oam.dev/appRevision`.
    pub app_revision: String,
    pub environment: Option<String>,
    pub cluster: String,
}

/// An object a component or trait produces besides the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output's name inside its definition (`service`, `ingress`, ...).
    pub name: String,
    pub object: Object,
    /// The trait that produced it, if not the component itself.
    pub trait_type: Option<String>,
}

/// An existing object a component refers to (`ref-objects`): never applied,
/// only observed by the agent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind (`Deployment`) or resource (`deployments`).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<std::collections::BTreeMap<String, String>>,
}

/// A rendered component before traits, defaults and placement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentOutput {
    /// The main object (Deployment, Job, ...); `None` for `k8s-objects` and `ref-objects`.
    pub workload: Option<Object>,
    pub outputs: Vec<Output>,
    pub references: Vec<ObjectReference>,
}
