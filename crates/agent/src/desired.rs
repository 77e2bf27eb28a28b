//! The desired state of a cluster, read from its repository's files: which
//! objects, in which application folder, with which agent hints, in what order.
//!
//! Pure: no IO. The hints are the annotations the renderer writes
//! (`heimdall.dev/wave`, `gc`, `apply-once`, `shared`, `take-over`,
//! `read-only`, `recreate-fields`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use heimdall_api::labels as well_known;
pub use heimdall_api::labels::MANAGED_BY;

/// Who a write to the cluster is made as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// The agent's own rights: platform content.
    Agent,
    /// A tenant's identity, impersonated: the cluster's RBAC allows it only
    /// what the tenancy renderer bound to it, in the tenant's namespaces.
    Tenant(String),
}

impl Identity {
    /// The Kubernetes user the agent impersonates, if any.
    pub fn impersonates(&self) -> Option<String> {
        match self {
            Identity::Agent => None,
            Identity::Tenant(tenant) => Some(heimdall_api::labels::tenant_identity(tenant)),
        }
    }

    /// The tenant, for the inventory.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Identity::Agent => None,
            Identity::Tenant(tenant) => Some(tenant),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Agent => f.write_str("the agent"),
            Identity::Tenant(tenant) => write!(f, "tenant {tenant}"),
        }
    }
}

/// One object's identity in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn of(object: &Value) -> Option<ObjectRef> {
        Some(ObjectRef {
            api_version: object.get("apiVersion")?.as_str()?.to_string(),
            kind: object.get("kind")?.as_str()?.to_string(),
            namespace: object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string(),
            name: object.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }

    /// `(group, version)`, from `apiVersion`.
    pub fn group_version(&self) -> (&str, &str) {
        self.api_version.split_once('/').unwrap_or(("", &self.api_version))
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// When an object that is no longer desired is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GarbageCollect {
    /// As soon as it leaves the desired state (the default).
    #[default]
    OnAppUpdate,
    /// Only when its whole application folder is gone.
    OnAppDelete,
    Never,
}

/// What the renderer's annotations ask of the agent for one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hints {
    pub wave: i64,
    pub gc: GarbageCollect,
    /// `Some(empty)`: create it if missing, never update it. `Some(paths)`:
    /// keep the live values at these paths (`spec.replicas` under an autoscaler).
    pub apply_once: Option<Vec<String>>,
    /// Adopt an object that exists already (and never delete it).
    pub adopt: bool,
    /// Observe, never write.
    pub read_only: bool,
    /// Fields whose change needs the object deleted and created again.
    pub recreate_fields: Vec<String>,
}

impl Hints {
    pub fn of(object: &Value) -> Hints {
        let annotation = |key: &str| object.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str);
        let list = |value: &str| value.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect::<Vec<_>>();
        Hints {
            wave: annotation(well_known::WAVE).and_then(|w| w.parse().ok()).unwrap_or(0),
            gc: match annotation(well_known::GC) {
                Some("on-app-delete") => GarbageCollect::OnAppDelete,
                Some("never") => GarbageCollect::Never,
                _ => GarbageCollect::OnAppUpdate,
            },
            apply_once: annotation(well_known::APPLY_ONCE).map(|v| if v == "true" { Vec::new() } else { list(v) }),
            adopt: annotation(well_known::TAKE_OVER) == Some("true") || annotation(well_known::SHARED) == Some("true"),
            read_only: annotation(well_known::READ_ONLY) == Some("true"),
            recreate_fields: annotation(well_known::RECREATE_FIELDS).map(list).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub reference: ObjectRef,
    /// The application folder (`<namespace>/<app>`) it belongs to.
    pub folder: String,
    /// Who it is applied (and pruned) as.
    pub identity: Identity,
    pub object: Value,
    pub hints: Hints,
    /// Hash of the object as the repository has it.
    pub digest: String,
}

/// A problem with one file of the repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    pub path: String,
    pub message: String,
}

/// Every object of a cluster's repository, by reference.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub objects: BTreeMap<ObjectRef, DesiredObject>,
    /// Files that could not be read; their folders are not pruned.
    pub errors: Vec<FileError>,
}

pub fn digest(object: &Value) -> String {
    hex::encode(&Sha256::digest(object.to_string().as_bytes())[..12])
}

/// Who an object of `folder` is applied as. The tenants' own folders are
/// platform content; in any other folder an object is its tenant's (the
/// owner's hub namespace, from the folder name) unless the renderer marked
/// it as the platform's. So an object without a mark, or with a mark the
/// agent does not know, never gets the agent's rights.
pub fn identity_of(folder: &str, object: &Value) -> Result<Identity, String> {
    let (first, rest) = folder.split_once('/').unwrap_or((folder, ""));
    if first == well_known::TENANTS_FOLDER {
        return Ok(Identity::Agent);
    }
    let mark = object.pointer("/metadata/annotations").and_then(|a| a.get(well_known::APPLY_AS)).and_then(Value::as_str);
    match mark {
        Some(well_known::APPLY_AS_PLATFORM) => Ok(Identity::Agent),
        None | Some(well_known::APPLY_AS_TENANT) => {
            let owner = rest.split_once("--").map_or(first, |(namespace, _)| namespace);
            let valid = !owner.is_empty()
                && owner.len() <= 63
                && owner.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !owner.starts_with('-')
                && !owner.ends_with('-');
            if !valid {
                return Err(format!("folder {folder:?} names no tenant"));
            }
            // The renderer labels every object with its tenant: one that says another is not this folder's.
            let labelled = object.pointer("/metadata/labels").and_then(|l| l.get(well_known::TENANT)).and_then(Value::as_str);
            if labelled != Some(owner) {
                return Err(format!("folder {folder:?} is tenant {owner}'s, but the object is labelled heimdall.dev/tenant={labelled:?}"));
            }
            Ok(Identity::Tenant(owner.to_string()))
        }
        Some(other) => Err(format!(
            "{}: {other:?} is neither {} nor {}",
            well_known::APPLY_AS,
            well_known::APPLY_AS_TENANT,
            well_known::APPLY_AS_PLATFORM
        )),
    }
}

/// The folder of a repository path: `shop/web/deployment-web.yaml` -> `shop/web`.
pub fn folder_of(path: &str) -> Option<&str> {
    let (folder, _) = path.rsplit_once('/')?;
    folder.contains('/').then_some(folder)
}

impl Desired {
    /// Reads the repository's files (`path -> YAML`). Kustomizations and
    /// files outside an application folder are not objects.
    pub fn from_files(files: &BTreeMap<String, String>) -> Desired {
        let mut desired = Desired::default();
        for (path, text) in files {
            let Some(folder) = folder_of(path) else { continue };
            if path.ends_with("/kustomization.yaml") {
                continue;
            }
            let object: Value = match serde_saphyr::from_str(text) {
                Ok(value) => value,
                Err(e) => {
                    desired.errors.push(FileError { path: path.clone(), message: format!("not YAML: {e}") });
                    continue;
                }
            };
            let Some(mut reference) = ObjectRef::of(&object) else {
                desired.errors.push(FileError { path: path.clone(), message: "expected apiVersion, kind and metadata.name".into() });
                continue;
            };
            if reference.kind == "Namespace" {
                reference.namespace.clear();
            }
            let identity = match identity_of(folder, &object) {
                Ok(identity) => identity,
                Err(message) => {
                    desired.errors.push(FileError { path: path.clone(), message });
                    continue;
                }
            };
            let hints = Hints::of(&object);
            // Two folders wanting one object: neither may silently take it (and its identity) from the other.
            if let Some(other) = desired.objects.get(&reference)
                && other.folder != folder
                && !(other.hints.adopt && hints.adopt)
            {
                desired.errors.push(FileError {
                    path: path.clone(),
                    message: format!("{reference} is also desired by folder {}; mark both shared to share it", other.folder),
                });
                continue;
            }
            desired.objects.insert(
                reference.clone(),
                DesiredObject { reference, folder: folder.to_string(), identity, digest: digest(&object), object, hints },
            );
        }
        desired
    }

    /// Turns each `EncryptedSecret` into the `v1` Secret it seals, opened
    /// with the agent's keys. One that does not open (sealed to another
    /// cluster, tampered, moved) is an error of its file: the Secret in the
    /// cluster stays as it is and its folder is not pruned.
    pub fn open_secrets(&mut self, identities: &[age::x25519::Identity]) {
        let sealed: Vec<ObjectRef> =
            self.objects.iter().filter(|(_, o)| heimdall_secrets::agent::is_encrypted_secret(&o.object)).map(|(r, _)| r.clone()).collect();
        for reference in sealed {
            let Some(object) = self.objects.remove(&reference) else { continue };
            let path = format!("{}/encryptedsecret-{}.yaml", object.folder, reference.name);
            match heimdall_secrets::agent::open(&object.object, identities) {
                Ok(secret) => {
                    let Some(opened) = ObjectRef::of(&secret) else { continue };
                    let digest = digest(&secret);
                    let hints = Hints::of(&secret);
                    // The Secret is applied as the sealed object it came from was.
                    let identity = object.identity;
                    self.objects.insert(
                        opened.clone(),
                        DesiredObject { reference: opened, folder: object.folder, identity, object: secret, hints, digest },
                    );
                }
                Err(e) => self.errors.push(FileError { path, message: e.to_string() }),
            }
        }
    }

    pub fn folders(&self) -> BTreeSet<&str> {
        self.objects.values().map(|o| o.folder.as_str()).chain(self.errors.iter().filter_map(|e| folder_of(&e.path))).collect()
    }

    /// The objects in apply order, as groups that may be applied in
    /// parallel: CustomResourceDefinitions, then Namespaces, then each wave
    /// of platform content (tenants' scaffolding grants the rights their
    /// applications are applied with), then each wave of tenant content.
    pub fn apply_groups(&self) -> Vec<Vec<&DesiredObject>> {
        let mut groups: BTreeMap<(u8, u8, i64), Vec<&DesiredObject>> = BTreeMap::new();
        for object in self.objects.values().filter(|o| !o.hints.read_only) {
            let identity = u8::from(object.identity != Identity::Agent);
            let phase = match object.reference.kind.as_str() {
                "CustomResourceDefinition" => (0, identity, 0),
                "Namespace" => (1, identity, 0),
                _ => (2, identity, object.hints.wave),
            };
            groups.entry(phase).or_default().push(object);
        }
        groups.into_values().collect()
    }
}

/// Whether every field `desired` sets has the same value in `live`: the
/// server may add fields (defaults, status, metadata) but not change ours.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => is_subset(v, lv),
            None => v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) || v.as_array().is_some_and(|a| a.is_empty()),
        }),
        (Value::Array(d), Value::Array(l)) => d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// Whether `object` differs from `live` in the applied parts the server owns
/// (status is the controllers', not ours).
pub fn drifted(object: &Value, live: &Value) -> bool {
    let mut desired = object.clone();
    if let Some(map) = desired.as_object_mut() {
        map.remove("status");
    }
    !is_subset(&desired, live)
}

/// The value at a dotted path (`spec.replicas`).
pub fn value_at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(object, |v, segment| v.get(segment))
}

/// Sets the value at a dotted path, creating maps on the way.
pub fn set_at(object: &mut Value, path: &str, value: Value) {
    let mut current = object;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Default::default());
        }
        let map = current.as_object_mut().expect("made an object");
        if i + 1 == segments.len() {
            map.insert(segment.to_string(), value);
            return;
        }
        current = map.entry(segment.to_string()).or_insert_with(|| Value::Object(Default::default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
    }

    #[test]
    fn reads_objects_by_folder_and_skips_kustomizations() {
        let desired = Desired::from_files(&files(&[
            ("kustomization.yaml", "resources: [shop]"),
            ("shop/kustomization.yaml", "resources: [web]"),
            ("shop/web/kustomization.yaml", "resources: [deployment-web.yaml]"),
            (
                "shop/web/deployment-web.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop, labels: {heimdall.dev/tenant: shop}}\n",
            ),
            (
                "shop/web/namespace-shop.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: shop, labels: {heimdall.dev/tenant: shop}}\n",
            ),
            ("shop/web/broken.yaml", "kind: [\n"),
        ]));
        let refs: Vec<String> = desired.objects.keys().map(ToString::to_string).collect();
        assert_eq!(refs, vec!["Deployment shop/web", "Namespace shop"]);
        assert!(desired.objects.values().all(|o| o.folder == "shop/web"));
        assert_eq!(desired.errors.len(), 1);
        assert_eq!(desired.errors[0].path, "shop/web/broken.yaml");
        assert!(desired.folders().contains("shop/web"));
    }

    #[test]
    fn two_folders_cannot_both_want_one_object_unless_both_share_it() {
        let object = |annotations: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: shop, annotations: {{heimdall.dev/apply-as: platform{annotations}}}}}\n"
            )
        };
        let taken = Desired::from_files(&files(&[("shop/a/configmap-c.yaml", &object("")), ("shop/b/configmap-c.yaml", &object(""))]));
        assert_eq!(taken.objects.values().map(|o| o.folder.as_str()).collect::<Vec<_>>(), ["shop/a"]);
        assert_eq!(taken.errors.len(), 1);
        assert!(taken.errors[0].message.contains("also desired by folder shop/a"), "{:?}", taken.errors);
        let shared = object(", heimdall.dev/shared: \"true\"");
        let both = Desired::from_files(&files(&[("shop/a/configmap-c.yaml", &shared), ("shop/b/configmap-c.yaml", &shared)]));
        assert!(both.errors.is_empty());
    }

    #[test]
    fn apply_groups_put_crds_then_namespaces_then_waves() {
        let object = |kind: &str, name: &str, wave: Option<i64>| {
            let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "shop", "labels": {"heimdall.dev/tenant": "shop"}}});
            if let Some(w) = wave {
                o["metadata"]["annotations"] = json!({"heimdall.dev/wave": w.to_string()});
            }
            serde_saphyr::to_string(&o).expect("yaml")
        };
        let desired = Desired::from_files(&files(&[
            ("shop/a/late.yaml", &object("ConfigMap", "late", Some(2))),
            ("shop/a/early.yaml", &object("ConfigMap", "early", Some(-1))),
            ("shop/a/plain.yaml", &object("ConfigMap", "plain", None)),
            ("shop/a/ns.yaml", &object("Namespace", "shop", None)),
            ("shop/a/crd.yaml", &object("CustomResourceDefinition", "dbs.example.com", None)),
        ]));
        let order: Vec<Vec<&str>> = desired.apply_groups().iter().map(|g| g.iter().map(|o| o.reference.name.as_str()).collect()).collect();
        assert_eq!(order, vec![vec!["dbs.example.com"], vec!["shop"], vec!["early"], vec!["plain"], vec!["late"]]);
    }

    #[test]
    fn hints_come_from_annotations() {
        let object = json!({"metadata": {"annotations": {
            "heimdall.dev/gc": "never", "heimdall.dev/apply-once": "spec.replicas, spec.paused",
            "heimdall.dev/take-over": "true", "heimdall.dev/wave": "3",
        }}});
        let hints = Hints::of(&object);
        assert_eq!(hints.gc, GarbageCollect::Never);
        assert_eq!(hints.apply_once, Some(vec!["spec.replicas".to_string(), "spec.paused".to_string()]));
        assert!(hints.adopt && !hints.read_only);
        assert_eq!(hints.wave, 3);
        assert_eq!(Hints::of(&json!({})), Hints::default());
    }

    #[test]
    fn drift_ignores_server_additions_but_sees_changed_values() {
        let desired =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a:1"}]}}}, "status": {"x": 1}});
        let live = json!({"metadata": {"uid": "u"}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a:1", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert!(!drifted(&desired, &live));
        let mut changed = live.clone();
        changed["spec"]["replicas"] = json!(5);
        assert!(drifted(&desired, &changed));
        let mut removed = live;
        removed["spec"]["template"]["spec"]["containers"] = json!([]);
        assert!(drifted(&desired, &removed));
    }

    #[test]
    fn dotted_paths_read_and_write() {
        let mut object = json!({"spec": {"replicas": 2}});
        assert_eq!(value_at(&object, "spec.replicas"), Some(&json!(2)));
        set_at(&mut object, "spec.strategy.type", json!("Recreate"));
        assert_eq!(object["spec"]["strategy"]["type"], json!("Recreate"));
    }
}
