//! Secrets in the hub: the master keyring (checked at start, rotated on
//! request), the catalog the renderer checks references against, credentials
//! generated for claims, and sealing each target's secrets for its cluster at
//! delivery. Writing values is [`crate::secret_values`]'s.
//!
//! Plaintext exists only inside [`Secrets::open_value`]'s callers here, for
//! the moment it takes to seal it for a cluster; it is never logged, never
//! returned, and never written anywhere but into a sealed object.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use heimdall_model::spec::platform::{SealedSecretsScope, SecretDelivery};
use heimdall_model::{Resource, ResourceKey};
use heimdall_render::{SecretCatalog, SecretUse};
use heimdall_secrets::keyring::Keyring;
use heimdall_secrets::{SecretData, SecretsError, envelope};
use heimdall_store::{ListQuery, SECRET_KIND, SecretValue, Store, StoreError, StoredValue};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::HubError;
use crate::state::AppState;

/// On a sealed object: the secret versions it carries.
pub const VERSIONS_ANNOTATION: &str = "secrets.heimdall.dev/versions";

/// The master keys and where they live.
pub struct Secrets {
    keyring: ArcSwap<Keyring>,
    key_file: Option<PathBuf>,
    rotation: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("key_file", &self.key_file).finish()
    }
}

impl Default for Secrets {
    /// A keyring in memory only (tests; a hub process uses [`Secrets::open`]).
    fn default() -> Self {
        Secrets { keyring: ArcSwap::from_pointee(Keyring::generate()), key_file: None, rotation: Default::default() }
    }
}

fn key_file_error(path: &Path, message: impl std::fmt::Display) -> HubError {
    HubError::Config(format!("master key file {}: {message}", path.display()))
}

impl Secrets {
    /// Loads the key file (creating it when the store holds no secret yet)
    /// and proves it opens what the store holds: one value per master key
    /// id in use. A wrong or missing key file stops the hub here, loudly,
    /// instead of failing every delivery later.
    pub async fn open(path: &Path, store: &Store) -> Result<Secrets, HubError> {
        let usage = store.master_key_usage().await?;
        let keyring = if path.exists() || usage.is_empty() {
            let (keyring, created) = key_file::load_or_create(path).map_err(|e| HubError::Config(e.to_string()))?;
            if created {
                tracing::info!(file = %path.display(), "master key created; back it up: without it no stored secret can be read");
            }
            keyring
        } else {
            return Err(key_file_error(path, "is missing, and the store holds secrets sealed with master keys; restore the key file"));
        };
        for (id, count) in &usage {
            if !keyring.contains(id) {
                return Err(key_file_error(
                    path,
                    format!(
                        "{count} stored secret value(s) are wrapped by master key {id}, which this file does not have: wrong key file?"
                    ),
                ));
            }
            for value in store.secret_values_wrapped_by(id, 1).await? {
                envelope::verify(&keyring, &envelope_of(&value.value), &value.context()).map_err(|_| {
                    key_file_error(path, format!("master key {id} in this file does not open the stored secrets: wrong key file?"))
                })?;
            }
        }
        Ok(Secrets { keyring: ArcSwap::from_pointee(keyring), key_file: Some(path.to_path_buf()), rotation: Default::default() })
    }

    fn keyring(&self) -> Arc<Keyring> {
        self.keyring.load_full()
    }

    pub(crate) fn seal_value(&self, value: &[u8], context: &str) -> Result<StoredValue, SecretsError> {
        let sealed = envelope::seal(&self.keyring(), value, context)?;
        Ok(StoredValue { master_key_id: sealed.master_key_id, wrapped_key: sealed.wrapped_key, ciphertext: sealed.ciphertext })
    }

    fn open_value(&self, value: &SecretValue) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        envelope::open(&self.keyring(), &envelope_of(&value.value), &value.context())
    }

    /// A new active master key; every data key is re-wrapped with it, and
    /// the old keys leave the key file once nothing is wrapped by them. The
    /// file always holds every key some stored value needs, so a crash at
    /// any point loses nothing, and the hub keeps serving throughout.
    pub async fn rotate_master_key(&self, store: &Store) -> Result<Rotation, KeyringError> {
        let _one_at_a_time = self.rotation.lock().await;
        let path = self.key_file.clone();
        let mut next = (*self.keyring()).clone();
        let new_id = next.rotate();
        if let Some(path) = &path {
            key_file::save(&next, path).map_err(KeyringError::KeyFile)?;
        }
        let next = Arc::new(next);
        self.install(next.clone());
        let mut rewrapped = 0usize;
        for old in next.ids().filter(|id| *id != new_id).map(String::from).collect::<Vec<_>>() {
            loop {
                let batch = store.secret_values_wrapped_by(&old, 200).await?;
                if batch.is_empty() {
                    break;
                }
                for value in &batch {
                    let sealed = envelope::rewrap(&next, &envelope_of(&value.value), &value.context())
                        .map_err(|source| KeyringError::Rewrap { context: value.context(), source })?;
                    let stored =
                        StoredValue { master_key_id: sealed.master_key_id, wrapped_key: sealed.wrapped_key, ciphertext: sealed.ciphertext };
                    // A value set meanwhile is already under the new key.
                    if store.rewrap_secret_value(value, &stored).await? {
                        rewrapped += 1;
                    }
                }
            }
        }
        let mut finished = (*next).clone();
        let in_use: Vec<String> = store.master_key_usage().await?.into_iter().map(|(id, _)| id).collect();
        let retired: Vec<String> = next.ids().filter(|id| *id != new_id && !in_use.iter().any(|u| u == id)).map(String::from).collect();
        for id in &retired {
            finished.retire(id);
        }
        if let Some(path) = &path {
            key_file::save(&finished, path).map_err(KeyringError::KeyFile)?;
        }
        self.install(Arc::new(finished));
        tracing::info!(key = %new_id, rewrapped, retired = retired.len(), "master key rotated");
        Ok(Rotation { key_id: new_id, rewrapped, retired })
    }

    fn install(&self, keyring: Arc<Keyring>) {
        self.keyring.store(keyring);
    }
}

/// Why the master key was not rotated. Each is the hub's failure, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot write the master key file: {0}")]
    KeyFile(SecretsError),
    #[error("cannot re-wrap {context}: {source}")]
    Rewrap { context: String, source: SecretsError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn envelope_of(value: &StoredValue) -> envelope::Envelope {
    envelope::Envelope {
        master_key_id: value.master_key_id.clone(),
        wrapped_key: value.wrapped_key.clone(),
        ciphertext: value.ciphertext.clone(),
    }
}

/// The catalog of every stored secret (names, keys, versions).
pub async fn catalog(store: &Store) -> Result<SecretCatalog, StoreError> {
    let mut catalog = SecretCatalog::default();
    for secret in store.list(&ListQuery { kind: SECRET_KIND.into(), ..Default::default() }).await?.items {
        catalog.insert_resource(&secret);
    }
    Ok(catalog)
}

// ---- sealing at delivery ---------------------------------------------------

/// Seals what a target needs for its cluster: the objects to commit in its
/// folder. An object already in the repository for the same versions and
/// the same cluster key is reused byte for byte, so an unchanged secret
/// never makes a commit, and values are decrypted only when something changed.
pub struct Sealer<'a> {
    state: &'a AppState,
    agent_keys: BTreeMap<String, Option<String>>,
    certificates: BTreeMap<String, Option<heimdall_secrets::sealed_secrets::ControllerCertificate>>,
}

impl<'a> Sealer<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Sealer { state, agent_keys: BTreeMap::new(), certificates: BTreeMap::new() }
    }

    async fn agent_key(&mut self, cluster: &str) -> Option<String> {
        if !self.agent_keys.contains_key(cluster) {
            let key = ResourceKey::new("Cluster", "", cluster);
            let found = self
                .state
                .store
                .get(&key)
                .await
                .ok()
                .and_then(|c| heimdall_model::status::status_of::<heimdall_model::status::ClusterStatus>(&c).agent?.public_key);
            self.agent_keys.insert(cluster.to_string(), found);
        }
        self.agent_keys.get(cluster).cloned().flatten()
    }

    fn certificate(&mut self, cluster: &str) -> Option<(heimdall_secrets::sealed_secrets::ControllerCertificate, SealedSecretsScope)> {
        let platform = self.state.rendering.platform();
        let settings = platform.cluster(cluster).and_then(|c| c.secrets.sealed_secrets.clone())?;
        let certificate = self
            .certificates
            .entry(cluster.to_string())
            .or_insert_with(|| {
                heimdall_secrets::sealed_secrets::ControllerCertificate::from_pem(&settings.certificate, chrono::Utc::now().timestamp())
                    .ok()
            })
            .clone()?;
        Some((certificate, settings.scope))
    }

    /// `(file name, content)` for one secret of one target, or `None` when
    /// it cannot be sealed now (the reason is logged; the caller keeps what
    /// the repository has).
    pub async fn seal(
        &mut self,
        cluster: &str,
        existing: &BTreeMap<String, String>,
        secret: &SecretUse,
        labels: &BTreeMap<String, String>,
    ) -> Option<(String, Vec<u8>)> {
        let (file, recipient) = match secret.delivery {
            SecretDelivery::Agent => {
                let Some(key) = self.agent_key(cluster).await else {
                    tracing::warn!(%cluster, secret = %secret.name, "cluster has no agent key yet; its secrets are sealed when the agent joins");
                    return None;
                };
                (format!("encryptedsecret-{}.yaml", secret.name), heimdall_secrets::agent::recipient_fingerprint(&key))
            }
            SecretDelivery::SealedSecrets => {
                let Some((certificate, _)) = self.certificate(cluster) else {
                    tracing::warn!(%cluster, secret = %secret.name, "cluster's sealed-secrets certificate does not parse");
                    return None;
                };
                (format!("sealedsecret-{}.yaml", secret.name), certificate.fingerprint().to_string())
            }
            SecretDelivery::External => return None,
        };
        let versions = secret.versions_digest();
        if let Some(current) = existing.get(&file)
            && let Ok(object) = serde_saphyr::from_str::<Value>(current)
            && object.pointer(&format!("/metadata/annotations/{}", VERSIONS_ANNOTATION.replace('/', "~1"))).and_then(Value::as_str)
                == Some(versions.as_str())
            && object.pointer(&format!("/metadata/annotations/{}", RECIPIENT_ANNOTATION.replace('/', "~1"))).and_then(Value::as_str)
                == Some(recipient.as_str())
            && object.pointer(&format!("/metadata/annotations/{}", wellknown::APPLY_AS.replace('/', "~1"))).and_then(Value::as_str)
                == Some(wellknown::APPLY_AS_PLATFORM)
            && object
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .is_some_and(|l| labels.iter().all(|(k, v)| l.get(k).and_then(Value::as_str) == Some(v)))
        {
            return Some((file, current.clone().into_bytes()));
        }
        let data = match self.values(secret).await {
            Ok(data) => data,
            Err(message) => {
                tracing::error!(%cluster, secret = %format!("{}/{}", secret.source_namespace, secret.name), error = %message, "cannot read the secret's values");
                return None;
            }
        };
        let sealed = match secret.delivery {
            SecretDelivery::Agent => {
                let key = self.agent_key(cluster).await.unwrap_or_default();
                heimdall_secrets::agent::seal(&key, &data)
            }
            _ => {
                let (certificate, scope) = self.certificate(cluster)?;
                let scope = match scope {
                    SealedSecretsScope::Strict => heimdall_secrets::sealed_secrets::Scope::Strict,
                    SealedSecretsScope::NamespaceWide => heimdall_secrets::sealed_secrets::Scope::NamespaceWide,
                    SealedSecretsScope::ClusterWide => heimdall_secrets::sealed_secrets::Scope::ClusterWide,
                };
                heimdall_secrets::sealed_secrets::seal(&certificate, scope, &data, &mut rand_core::OsRng).map(|mut object| {
                    object["metadata"]["annotations"][RECIPIENT_ANNOTATION] = Value::String(recipient.clone());
                    if !labels.is_empty() {
                        object["spec"]["template"]["metadata"]["labels"] = serde_json::json!(labels);
                    }
                    object
                })
            }
        };
        let mut object = match sealed {
            Ok(object) => object,
            Err(e) => {
                tracing::error!(%cluster, secret = %secret.name, error = %e, "cannot seal the secret");
                return None;
            }
        };
        object["metadata"]["annotations"][VERSIONS_ANNOTATION] = Value::String(versions);
        // The hub seals it, so the agent applies it (and the Secret it opens into) with its own rights.
        object["metadata"]["annotations"][wellknown::APPLY_AS] = Value::String(wellknown::APPLY_AS_PLATFORM.into());
        if !labels.is_empty() {
            object["metadata"]["labels"] = serde_json::json!(labels);
        }
        Some((file, serde_saphyr::to_string(&object).unwrap_or_default().into_bytes()))
    }

    async fn values(&self, secret: &SecretUse) -> Result<SecretData, String> {
        let stored = self.state.store.secret_values(&secret.source_namespace, &secret.name).await.map_err(|e| e.to_string())?;
        let mut data = BTreeMap::new();
        for value in &stored {
            data.insert(value.key.clone(), self.state.secrets.open_value(value).map_err(|e| e.to_string())?);
        }
        Ok(SecretData { namespace: secret.namespace.clone(), name: secret.name.clone(), type_: secret.type_.clone(), data })
    }
}

use heimdall_api::labels as wellknown;
use heimdall_api::secrets::Rotation;
use heimdall_secrets::agent::RECIPIENT_ANNOTATION;

/// Stored Secret documents are written through this module only.
pub fn is_secret(resource: &Resource) -> bool {
    resource.kind == SECRET_KIND
}

/// The master key file on disk: read, and written atomically (a temporary
/// file renamed over it) readable by its owner only.
pub mod key_file {
    use std::path::Path;

    use heimdall_secrets::SecretsError;
    use heimdall_secrets::keyring::Keyring;
    use zeroize::Zeroizing;

    fn error(path: &Path, message: String) -> SecretsError {
        SecretsError::KeyFile { path: path.display().to_string(), message }
    }

    pub fn load(path: &Path) -> Result<Keyring, SecretsError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| error(path, format!("cannot read: {e}")))?);
        Keyring::parse(&text, &path.display().to_string())
    }

    pub fn save(keyring: &Keyring, path: &Path) -> Result<(), SecretsError> {
        let text = keyring.to_file_text()?;
        let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(directory).map_err(|e| error(path, format!("cannot create its directory: {e}")))?;
        let temporary = directory.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("master.key")));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut out = options.open(&temporary)?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|e| error(path, format!("cannot write: {e}")))
    }

    /// Loads the key file, or creates it with a new key if there is none.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), SecretsError> {
        if path.exists() {
            return Ok((load(path)?, false));
        }
        let keyring = Keyring::generate();
        save(&keyring, path)?;
        Ok((keyring, true))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_key_file_round_trips_with_owner_only_permissions_and_defects_name_it() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("keys").join("master.key");
            let (mut keyring, created) = load_or_create(&path).expect("create");
            assert!(created);
            let second = keyring.rotate();
            save(&keyring, &path).expect("save");
            let (loaded, created) = load_or_create(&path).expect("load");
            assert!(!created);
            assert_eq!(loaded.active_id(), second);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777, 0o600);
            }
            std::fs::write(&path, "not: [yaml").expect("write");
            let error = load(&path).expect_err("defective").to_string();
            assert!(error.contains(&path.display().to_string()) && error.contains("expected YAML"), "{error}");
        }
    }
}

/// Makes the credentials claims need: a random value (32 letters and
/// digits) for each missing key, sealed and stored like any secret value,
/// then refreshes the catalog. Values never leave the secrets store.
pub async fn generate(state: &AppState, requests: &[heimdall_render::secrets::Generate]) -> Result<(), StoreError> {
    use rand::Rng;
    for request in requests {
        for key in &request.keys {
            let value: zeroize::Zeroizing<Vec<u8>> =
                zeroize::Zeroizing::new(rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).collect());
            let secrets = state.secrets.clone();
            let (namespace, name) = (request.namespace.as_str(), request.name.as_str());
            state
                .store
                .set_secret_value(crate::actors::GENERATOR, namespace, name, key, |version| {
                    secrets
                        .seal_value(&value, &heimdall_store::value_context(namespace, name, key, version))
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .await?;
            tracing::info!(%namespace, %name, %key, "claim credentials generated");
        }
    }
    state.rendering.set_secrets(crate::secrets::catalog(&state.store).await?);
    Ok(())
}
