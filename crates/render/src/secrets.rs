//! Secrets in a render: which Secrets a target's pods read, whether they
//! exist, and how each reaches the target's cluster. Values never pass
//! through here: the hub gives a [`SecretCatalog`] of names, keys and
//! versions, and the render says which secrets each target needs
//! ([`SecretUse`]); the hub seals them for the cluster when it delivers.
//!
//! References are found wherever Kubernetes reads a Secret in a pod
//! (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`, `secret` and
//! `projected` volumes), so every component type and trait is covered by one
//! mechanism, whatever rendered the pod.

use std::collections::{BTreeMap, BTreeSet};

use heimdall_model::spec::platform::{SecretDelivery, SecretStoreRef};
use heimdall_model::{Problem, Resource};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::object::{self, Object};
use crate::platform::Platform;

/// On an application, `"true"`: roll its workloads when a secret they read changes.
pub const ROLLOUT_ANNOTATION: &str = "secrets.heimdall.dev/rollout";
/// The pod template annotation that changes with the secret versions a pod reads.
pub const CHECKSUM_ANNOTATION: &str = "secrets.heimdall.dev/checksum";
/// On an application: Secrets (comma-separated) that something else in the
/// cluster provides, which the render must not look for.
pub const UNMANAGED_ANNOTATION: &str = "secrets.heimdall.dev/unmanaged";

/// What exists, without values: `(namespace, name)` -> type and key versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretCatalog {
    secrets: BTreeMap<(String, String), CatalogEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub type_: String,
    /// key -> version
    pub keys: BTreeMap<String, i64>,
}

impl SecretCatalog {
    pub fn insert(&mut self, namespace: &str, name: &str, entry: CatalogEntry) {
        self.secrets.insert((namespace.to_string(), name.to_string()), entry);
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&CatalogEntry> {
        self.secrets.get(&(namespace.to_string(), name.to_string()))
    }

    /// The catalog entry of a stored `Secret` document.
    pub fn insert_resource(&mut self, secret: &Resource) {
        let keys = secret
            .spec
            .get("keys")
            .and_then(Value::as_object)
            .map(|keys| keys.iter().map(|(k, v)| (k.clone(), v.get("version").and_then(Value::as_i64).unwrap_or(0))).collect())
            .unwrap_or_default();
        let type_ = secret.spec.get("type").and_then(Value::as_str).unwrap_or("Opaque").to_string();
        self.insert(secret.metadata.namespace.as_deref().unwrap_or_default(), &secret.metadata.name, CatalogEntry { type_, keys });
    }
}

/// A Secret a target needs delivered, with the versions it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretUse {
    /// Where the Secret is created: the target namespace.
    pub namespace: String,
    /// The hub namespace whose secret it is.
    pub source_namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// key -> version
    pub keys: BTreeMap<String, i64>,
    pub delivery: SecretDelivery,
}

impl SecretUse {
    /// Changes when any key's version changes.
    pub fn versions_digest(&self) -> String {
        let text: String = self.keys.iter().map(|(k, v)| format!("{k}={v};")).collect();
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// One place a pod reads a Secret.
#[derive(Debug, Clone)]
struct Reference {
    name: String,
    /// `None`: every key (envFrom, a volume without items).
    keys: Option<BTreeSet<String>>,
    optional: bool,
    /// `Deployment web: spec.template.spec.containers[0].env[1]`
    at: String,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn item_keys(items: Option<&Value>) -> Option<BTreeSet<String>> {
    items
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|i| i.get("key").and_then(Value::as_str)).map(String::from).collect())
}

/// Every Secret reference in a workload's (or pod's) pod spec.
fn references(object: &Object) -> Vec<Reference> {
    let (spec, base) = if object::kind(object) == "Pod" {
        (object.get("spec").and_then(Value::as_object), "spec".to_string())
    } else {
        let path = object::pod_template_path(object::kind(object)).map(|p| p.join(".")).unwrap_or_default();
        (object::pod_spec(object), format!("{path}.spec"))
    };
    let Some(spec) = spec else { return Vec::new() };
    let what = format!("{} {}", object::kind(object), object::name(object));
    let mut found = Vec::new();
    let mut add = |name: Option<&str>, keys: Option<BTreeSet<String>>, optional: Option<&Value>, at: String| {
        if let Some(name) = name {
            found.push(Reference {
                name: name.to_string(),
                keys,
                optional: optional.and_then(Value::as_bool) == Some(true),
                at: format!("{what}: {at}"),
            });
        }
    };
    for list in ["initContainers", "containers"] {
        for (i, container) in spec.get(list).and_then(Value::as_array).into_iter().flatten().enumerate() {
            for (j, env) in container.get("env").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if let Some(reference) = env.pointer("/valueFrom/secretKeyRef") {
                    let key = str_at(reference, "/key").map(|k| BTreeSet::from([k.to_string()]));
                    add(str_at(reference, "/name"), key, reference.get("optional"), format!("{base}.{list}[{i}].env[{j}]"));
                }
            }
            for (j, source) in container.get("envFrom").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if let Some(reference) = source.get("secretRef") {
                    add(str_at(reference, "/name"), None, reference.get("optional"), format!("{base}.{list}[{i}].envFrom[{j}]"));
                }
            }
        }
    }
    for (i, volume) in spec.get("volumes").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(source) = volume.get("secret") {
            add(str_at(source, "/secretName"), item_keys(source.get("items")), source.get("optional"), format!("{base}.volumes[{i}]"));
        }
        for (j, projected) in volume.pointer("/projected/sources").and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(source) = projected.get("secret") {
                let at = format!("{base}.volumes[{i}].projected.sources[{j}]");
                add(str_at(source, "/name"), item_keys(source.get("items")), source.get("optional"), at);
            }
        }
    }
    found
}

/// Secrets the target's own objects make: a Secret, an ExternalSecret or
/// SealedSecret, a cert-manager Certificate, a connection secret.
fn provided(objects: &[&Object]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for object in objects {
        let name = object::name(object).to_string();
        match object::kind(object) {
            "Secret" | "SealedSecret" => {
                names.insert(name);
            }
            "ExternalSecret" => {
                names.insert(str_at(object, "/spec/target/name").map_or(name, String::from));
            }
            "Certificate" => names.extend(str_at(object, "/spec/secretName").map(String::from)),
            _ => {}
        }
        names.extend(str_at(object, "/spec/writeConnectionSecretToRef/name").map(String::from));
        names.extend(
            object
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(crate::capability::CONNECTION_SECRET_ANNOTATION))
                .and_then(Value::as_str)
                .map(String::from),
        );
    }
    names
}

/// Everything a target reads of one Secret.
#[derive(Debug)]
struct Wanted {
    keys: BTreeSet<String>,
    /// Some pod reads every key (envFrom, a volume without items).
    every_key: bool,
    /// Where it is first read, and the document path of that object.
    at: String,
    path: String,
    /// Every reference is `optional: true`.
    optional: bool,
}

/// What a target's secrets come to: objects to add (ExternalSecrets) and
/// the Secrets the hub must seal for it.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    pub objects: Vec<Object>,
    pub uses: Vec<SecretUse>,
    /// Generated credentials the catalog does not have yet.
    pub generate: Vec<Generate>,
}

/// Credentials the hub must generate before the target can be delivered:
/// Secret `name` in hub namespace `namespace` with random values in `keys`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Generate {
    pub namespace: String,
    pub name: String,
    pub keys: Vec<String>,
}

pub(crate) struct TargetSecrets<'a> {
    pub platform: &'a Platform,
    pub app: &'a Resource,
    pub catalog: Option<&'a SecretCatalog>,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub environment: Option<&'a str>,
    /// Secrets claim instances need generated (name, keys), read by objects
    /// that are not pods (a provider's password reference).
    pub generated: Vec<crate::capability::GeneratedSecret>,
}

impl TargetSecrets<'_> {
    /// `objects` with the path of the document each came from, for errors.
    pub fn resolve(&self, objects: &[(&Object, &str)]) -> Result<Resolution, Vec<Problem>> {
        let own: Vec<&Object> = objects.iter().map(|(o, _)| *o).collect();
        let mut skip = provided(&own);
        let unmanaged = self.app.metadata.annotations.get(UNMANAGED_ANNOTATION);
        skip.extend(unmanaged.into_iter().flat_map(|list| list.split(',')).map(|n| n.trim().to_string()).filter(|n| !n.is_empty()));
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        let app_namespace = self.app.metadata.namespace.as_deref().unwrap_or_default();
        let delivery = self.platform.clusters.get(self.cluster).map(|c| c.secrets.delivery).unwrap_or_default();
        let mut generate = Vec::new();
        for secret in &self.generated {
            if delivery == SecretDelivery::External {
                return Err(vec![Problem::new(
                    "spec",
                    format!(
                        "secret {} is generated by Heimdall, and cluster {} takes secrets only from an external store; choose a composition that does not generate credentials there",
                        secret.name, self.cluster
                    ),
                )]);
            }
            let Some(catalog) = self.catalog else { continue };
            let missing: Vec<String> = secret
                .keys
                .iter()
                .filter(|k| catalog.get(app_namespace, &secret.name).is_none_or(|e| !e.keys.contains_key(*k)))
                .cloned()
                .collect();
            if missing.is_empty() {
                wanted.insert(
                    secret.name.clone(),
                    Wanted {
                        keys: secret.keys.iter().cloned().collect(),
                        every_key: false,
                        at: format!("generated secret {}", secret.name),
                        path: "spec".into(),
                        optional: false,
                    },
                );
            } else {
                // Not there yet: the hub makes it and renders again; nothing reads it until then.
                skip.insert(secret.name.clone());
                generate.push(Generate { namespace: app_namespace.to_string(), name: secret.name.clone(), keys: missing });
            }
        }
        for (object, path) in objects {
            for reference in references(object) {
                if skip.contains(&reference.name) {
                    continue;
                }
                let entry = wanted.entry(reference.name.clone()).or_insert_with(|| Wanted {
                    keys: BTreeSet::new(),
                    every_key: false,
                    at: reference.at.clone(),
                    path: path.to_string(),
                    optional: true,
                });
                match reference.keys {
                    Some(keys) => entry.keys.extend(keys),
                    None => entry.every_key = true,
                }
                entry.optional &= reference.optional;
            }
        }
        let mut resolution = Resolution { generate, ..Default::default() };
        if wanted.is_empty() {
            return Ok(resolution);
        }
        let mut problems = Vec::new();
        if delivery == SecretDelivery::External {
            let store = self.environment.and_then(|e| self.platform.environments.get(e)).and_then(|e| e.secret_store.as_ref());
            let Some(store) = store else {
                let first = wanted.values().next();
                return Err(vec![Problem::new(
                    first.map(|w| w.path.clone()).unwrap_or_default(),
                    format!(
                        "{} reads a secret, and cluster {} takes secrets from an external store, but environment {} names no spec.secretStore",
                        first.map(|w| w.at.as_str()).unwrap_or_default(),
                        self.cluster,
                        self.environment.unwrap_or("(none)")
                    ),
                )]);
            };
            for (name, read) in &wanted {
                resolution.objects.push(external_secret(store, app_namespace, self.namespace, name, read));
            }
            return Ok(resolution);
        }
        // Without a catalog (rendering outside the hub) nothing can be checked or sealed.
        let Some(catalog) = self.catalog else { return Ok(resolution) };
        for (name, Wanted { keys, at, path, optional, .. }) in wanted {
            let Some(entry) = catalog.get(app_namespace, &name) else {
                if !optional {
                    let first_key = keys.iter().next().cloned().unwrap_or_else(|| "KEY".into());
                    problems.push(Problem::new(
                        path,
                        format!(
                            "{at} reads secret {name:?}, which does not exist in namespace {app_namespace}: set it first with `heimdall secret set {app_namespace}/{name} {first_key} --from-literal ...`, or name it in the {UNMANAGED_ANNOTATION} annotation if the cluster has it from elsewhere"
                        ),
                    ));
                }
                continue;
            };
            let missing: Vec<&String> = keys.iter().filter(|k| !entry.keys.contains_key(*k)).collect();
            if !missing.is_empty() && !optional {
                problems.push(Problem::new(
                    path,
                    format!(
                        "{at} reads key{} {} of secret {app_namespace}/{name}, which has only: {}",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                        entry.keys.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                ));
                continue;
            }
            resolution.uses.push(SecretUse {
                namespace: self.namespace.to_string(),
                source_namespace: app_namespace.to_string(),
                name,
                type_: entry.type_.clone(),
                keys: entry.keys.clone(),
                delivery,
            });
        }
        if problems.is_empty() { Ok(resolution) } else { Err(problems) }
    }
}

/// An External Secrets Operator `ExternalSecret` (external-secrets.io/v1)
/// that makes Secret `name` from the store's `<prefix><namespace>/<name>`.
fn external_secret(store: &SecretStoreRef, app_namespace: &str, namespace: &str, name: &str, read: &Wanted) -> Object {
    let remote_key = format!("{}{app_namespace}/{name}", store.key_prefix);
    let mut spec = json!({
        "refreshInterval": store.refresh_interval,
        "secretStoreRef": {"kind": store.kind.as_str(), "name": store.name},
        "target": {"name": name, "creationPolicy": "Owner"},
    });
    if read.every_key {
        spec["dataFrom"] = json!([{"extract": {"key": remote_key}}]);
    } else {
        spec["data"] = Value::Array(
            read.keys.iter().map(|key| json!({"secretKey": key, "remoteRef": {"key": remote_key, "property": key}})).collect(),
        );
    }
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// Stamps each workload's pod template with a checksum of the versions of
/// the secrets it reads, so a new version rolls its pods.
pub(crate) fn stamp_checksums(objects: &mut [Object], uses: &[SecretUse]) {
    let versions: BTreeMap<&str, &SecretUse> = uses.iter().map(|u| (u.name.as_str(), u)).collect();
    for object in objects.iter_mut() {
        let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for reference in references(object) {
            let Some(found) = versions.get(reference.name.as_str()) else { continue };
            let keys = reference.keys.unwrap_or_else(|| found.keys.keys().cloned().collect());
            read.entry(reference.name).or_default().extend(keys);
        }
        if read.is_empty() {
            continue;
        }
        let text: String = read
            .iter()
            .flat_map(|(name, keys)| keys.iter().map(move |key| (name, key)))
            .map(|(name, key)| format!("{name}/{key}={};", versions.get(name.as_str()).and_then(|u| u.keys.get(key)).unwrap_or(&0)))
            .collect();
        let checksum = hex::encode(&Sha256::digest(text.as_bytes())[..16]);
        if let Some(template) = object::pod_template_mut(object) {
            let metadata = template.entry("metadata").or_insert_with(|| json!({}));
            metadata["annotations"][CHECKSUM_ANNOTATION] = json!(checksum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_wherever_a_pod_reads_a_secret() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
                "containers": [{"name": "web", "env": [
                    {"name": "A", "value": "x"},
                    {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "k", "optional": true}}},
                ]}],
                "volumes": [
                    {"name": "tls", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "c"}]}},
                    {"name": "all", "projected": {"sources": [{"secret": {"name": "bundle"}}]}},
                ],
            }}},
        });
        let found: Vec<(String, Option<Vec<String>>, bool, String)> =
            references(&deployment).into_iter().map(|r| (r.name, r.keys.map(|k| k.into_iter().collect()), r.optional, r.at)).collect();
        let at = |p: &str| format!("Deployment web: spec.template.spec.{p}");
        assert_eq!(
            found,
            vec![
                ("init-env".into(), None, false, at("initContainers[0].envFrom[0]")),
                ("db".into(), Some(vec!["password".into()]), false, at("containers[0].env[1]")),
                ("maybe".into(), Some(vec!["k".into()]), true, at("containers[0].env[2]")),
                ("tls".into(), Some(vec!["tls.crt".into()]), false, at("volumes[0]")),
                ("bundle".into(), None, false, at("volumes[1].projected.sources[0]")),
            ]
        );
    }

    #[test]
    fn checksums_change_with_the_versions_a_pod_reads_only() {
        let deployment = || {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [
                       {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}}}})
        };
        let uses = |password: i64, other: i64| {
            vec![SecretUse {
                namespace: "shop".into(),
                source_namespace: "shop".into(),
                name: "db".into(),
                type_: "Opaque".into(),
                keys: [("password".to_string(), password), ("other".to_string(), other)].into(),
                delivery: SecretDelivery::Agent,
            }]
        };
        let checksum = |uses: &[SecretUse]| {
            let mut objects = vec![deployment()];
            stamp_checksums(&mut objects, uses);
            objects[0]["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION].as_str().map(String::from)
        };
        let first = checksum(&uses(1, 1)).expect("stamped");
        assert_eq!(checksum(&uses(1, 2)).as_deref(), Some(first.as_str()), "a key the pod does not read");
        assert_ne!(checksum(&uses(2, 1)).as_deref(), Some(first.as_str()), "the key the pod reads");
        assert_eq!(checksum(&[]), None);
    }
}
