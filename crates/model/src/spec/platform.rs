//! The platform team's kinds (group `platform.heimdall.dev`). Their specs start
//! small; later capabilities add fields here.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::selector::LabelSelectorSpec;
use crate::validation::{check_dns_label, check_labels};

pub const GROUP_VERSION: &str = "platform.heimdall.dev/v1alpha1";

pub use super::tenant::{
    ClusterProvider, ClusterRequest, Isolation, NamespaceMode, NetworkIsolation, PodSecurityLevel, Quota, SubjectKind, TenantMember,
    TenantRole, TenantSpec, VClusterSettings,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which clusters serve this environment.
    #[serde(default)]
    pub cluster_selector: LabelSelectorSpec,
    /// Changes applied to every application deployed here, in the shape of a
    /// KubeVela `override` policy's properties (`components: [...]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub overrides: Option<Value>,
    /// Where secrets come from on clusters that deliver them `external`ly:
    /// the External Secrets Operator store applications read through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store: Option<SecretStoreRef>,
}

/// An External Secrets Operator `SecretStore` or `ClusterSecretStore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretStoreRef {
    pub name: String,
    #[serde(default)]
    pub kind: SecretStoreKind,
    /// Prepended to `<namespace>/<secret>` to make the key in the external
    /// store: `heimdall/` reads `heimdall/shop/web`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_prefix: String,
    /// How often the operator re-reads the external store.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: String,
}

fn default_refresh_interval() -> String {
    "1h".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SecretStoreKind {
    #[default]
    ClusterSecretStore,
    SecretStore,
}

impl SecretStoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretStoreKind::ClusterSecretStore => "ClusterSecretStore",
            SecretStoreKind::SecretStore => "SecretStore",
        }
    }
}

/// How a cluster receives the secrets its applications use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSecrets {
    #[serde(default)]
    pub delivery: SecretDelivery,
    /// For `sealed-secrets`: the controller's certificate and the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secrets: Option<SealedSecretsSettings>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SecretDelivery {
    /// Sealed to the cluster's agent key; the agent applies the Secret.
    #[default]
    Agent,
    /// Bitnami SealedSecrets for the cluster's Sealed Secrets controller.
    SealedSecrets,
    /// ExternalSecrets reading the environment's secret store; no value passes through Heimdall.
    External,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedSecretsSettings {
    /// The controller's certificate, PEM, as `kubeseal --fetch-cert` prints it.
    pub certificate: String,
    #[serde(default)]
    pub scope: SealedSecretsScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SealedSecretsScope {
    #[default]
    Strict,
    NamespaceWide,
    ClusterWide,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How desired state reaches the cluster.
    #[serde(default)]
    pub delivery: Delivery,
    /// An external git remote that receives every commit of the cluster's
    /// repository (for an Argo CD or Flux that reads from there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    /// How secrets reach the cluster (default: sealed to its agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<ClusterSecrets>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mirror {
    /// A URL `git push` understands: `https://...`, `ssh://...`, `file:///...`.
    pub url: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Agent,
    Argocd,
    Flux,
}

/// An absent spec is an empty one for the platform kinds: every field is optional.
fn or_empty(spec: &Value) -> Value {
    if spec.is_null() { Value::Object(Default::default()) } else { spec.clone() }
}

pub(crate) fn validate_environment(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<EnvironmentSpec>(&or_empty(spec), "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            check_labels(&spec.cluster_selector.match_labels, "spec.clusterSelector.matchLabels", &mut problems);
            if let Some(store) = &spec.secret_store
                && let Err(message) = check_dns_label(&store.name)
            {
                problems.push(Problem::new("spec.secretStore.name", message));
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_cluster(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<ClusterSpec>(&or_empty(spec), "spec") {
        Ok(ClusterSpec { mirror: Some(mirror), .. }) if mirror.url.trim().is_empty() || mirror.url.starts_with('-') => {
            vec![Problem::new("spec.mirror.url", "expected a git URL such as https://git.example.com/org/cluster.git")]
        }
        Ok(ClusterSpec { secrets: Some(secrets), .. }) => match (&secrets.delivery, &secrets.sealed_secrets) {
            (SecretDelivery::SealedSecrets, None) => vec![Problem::new(
                "spec.secrets.sealedSecrets.certificate",
                "expected the Sealed Secrets controller's certificate (PEM, from `kubeseal --fetch-cert`) for delivery sealed-secrets",
            )],
            (_, Some(settings)) if !settings.certificate.contains("-----BEGIN CERTIFICATE-----") => {
                vec![Problem::new("spec.secrets.sealedSecrets.certificate", "expected a PEM certificate (-----BEGIN CERTIFICATE-----)")]
            }
            _ => Vec::new(),
        },
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}

/// A component type the platform team adds or overrides without a rebuild.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentDefinitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the component's `properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// `workload` (the main object) and optional `outputs` (more objects by name),
    /// as structured values with `${{ expression }}` placeholders.
    #[schema(value_type = Object)]
    pub template: Value,
}

/// A trait the platform team adds or overrides without a rebuild.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraitDefinitionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Component types this trait may be attached to; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// `patch` (merged into the workload) and/or `outputs` (more objects by name).
    #[schema(value_type = Object)]
    pub template: Value,
}

/// An organization policy in Rego, evaluated on every rendered target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A Rego module whose `deny` (and optionally `warn`) rules produce messages.
    pub rego: String,
    #[serde(default)]
    pub enforcement: Enforcement,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Violations block the change.
    #[default]
    Deny,
    /// Violations are reported, nothing is blocked.
    Warn,
}

/// Organization defaults applied to every rendered workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultsSpec {
    /// Labels added to every rendered object.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Container resources used where a container sets none: `{requests: {cpu, memory}, limits: {cpu, memory}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub resources: Option<Value>,
    /// `restricted` (the default) fills in the Pod Security Standard's restricted
    /// settings where a workload sets none; `none` leaves security contexts alone.
    #[serde(default)]
    pub security_context: SecurityDefaults,
    /// Image pull policy for containers that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Environments an application without a topology policy deploys to.
    #[serde(default)]
    pub environments: Vec<String>,
    /// `warn` turns every policy's violations into warnings, for rolling out new policies.
    #[serde(default)]
    pub policy_enforcement: Enforcement,
    /// What tenants' applications may put in a cluster, per role.
    #[serde(default)]
    pub tenant_objects: crate::spec::tenant::TenantObjects,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecurityDefaults {
    #[default]
    Restricted,
    None,
}

fn validate_object_template(template: &Value, allowed: &[&str], required: &[&str], problems: &mut Vec<Problem>) {
    let Some(object) = template.as_object() else {
        problems.push(Problem::new("spec.template", format!("expected a mapping with {}", allowed.join(" and/or "))));
        return;
    };
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.push(Problem::new(format!("spec.template.{key}"), format!("unknown field: expected {}", allowed.join(" or "))));
        }
    }
    for key in required {
        if !object.contains_key(*key) {
            problems.push(Problem::new(format!("spec.template.{key}"), "required field is missing"));
        }
    }
    if let Some(outputs) = object.get("outputs")
        && !outputs.is_object()
    {
        problems.push(Problem::new("spec.template.outputs", "expected a mapping of output name to object template"));
    }
}

fn validate_parameters(parameters: Option<&Value>, problems: &mut Vec<Problem>) {
    if let Some(schema) = parameters
        && !schema.is_object()
    {
        problems.push(Problem::new("spec.parameters", "expected a JSON Schema (a mapping)"));
    }
}

pub(crate) fn validate_component_definition(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<ComponentDefinitionSpec>(spec, "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            validate_parameters(spec.parameters.as_ref(), &mut problems);
            validate_object_template(&spec.template, &["workload", "outputs"], &["workload"], &mut problems);
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_trait_definition(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<TraitDefinitionSpec>(spec, "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            validate_parameters(spec.parameters.as_ref(), &mut problems);
            validate_object_template(&spec.template, &["patch", "outputs"], &[], &mut problems);
            if spec.template.as_object().is_some_and(|t| t.is_empty()) {
                problems.push(Problem::new("spec.template", "expected a patch, outputs, or both"));
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_policy(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<PolicySpec>(spec, "spec") {
        Ok(spec) if spec.rego.trim().is_empty() => vec![Problem::new("spec.rego", "expected a Rego module")],
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}

pub(crate) fn validate_defaults(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<DefaultsSpec>(&or_empty(spec), "spec") {
        Ok(spec) => {
            let mut problems = Vec::new();
            check_labels(&spec.labels, "spec.labels", &mut problems);
            for (i, env) in spec.environments.iter().enumerate() {
                if let Err(e) = check_dns_label(env) {
                    problems.push(Problem::new(format!("spec.environments[{i}]"), e));
                }
            }
            if let Some(policy) = &spec.image_pull_policy
                && !["Always", "IfNotPresent", "Never"].contains(&policy.as_str())
            {
                problems.push(Problem::new("spec.imagePullPolicy", format!("expected Always, IfNotPresent or Never, got {policy:?}")));
            }
            let objects = &spec.tenant_objects;
            crate::spec::tenant::check_kind_rules(&objects.developer, "spec.tenantObjects.developer", &mut problems);
            crate::spec::tenant::check_kind_rules(&objects.owner, "spec.tenantObjects.owner", &mut problems);
            for (i, namespace) in objects.shared_namespaces.iter().enumerate() {
                if let Err(e) = check_dns_label(namespace) {
                    problems.push(Problem::new(format!("spec.tenantObjects.sharedNamespaces[{i}]"), e));
                }
            }
            problems
        }
        Err(problem) => vec![problem],
    }
}

/// Where the software catalog reads entities from: a `catalog-info.yaml`
/// (and the files its Location entities name) at a URL or on the hub's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogLocationSpec {
    /// `url` or `file`.
    #[serde(rename = "type")]
    pub type_: String,
    pub target: String,
}

pub(crate) fn validate_catalog_location(spec: &Value) -> Vec<Problem> {
    match super::deserialize_at::<CatalogLocationSpec>(spec, "spec") {
        Ok(spec) => match spec.type_.as_str() {
            "url" if spec.target.starts_with("https://") || spec.target.starts_with("http://") => Vec::new(),
            "url" => vec![Problem::new("spec.target", "expected an http(s) URL")],
            "file" if spec.target.starts_with('/') => Vec::new(),
            "file" => vec![Problem::new("spec.target", "expected an absolute path on the hub")],
            other => vec![Problem::new("spec.type", format!("expected url or file, got {other:?}"))],
        },
        Err(problem) => vec![problem],
    }
}

/// A person seen at sign-in (written by the hub, for the catalog).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// The name the identity provider gives (`preferred_username`).
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Identity-provider groups, as the provider names them.
    #[serde(default)]
    pub member_of: Vec<String>,
}

/// An identity-provider group seen at sign-in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSpec {
    /// The group's name at the identity provider.
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

pub(crate) fn validate_user(spec: &Value) -> Vec<Problem> {
    super::deserialize_at::<UserSpec>(spec, "spec").err().into_iter().collect()
}

pub(crate) fn validate_group(spec: &Value) -> Vec<Problem> {
    super::deserialize_at::<GroupSpec>(spec, "spec").err().into_iter().collect()
}
