//! The spoke cluster, through the `kube` crate only: discovery for arbitrary
//! kinds, server-side apply, get, list, delete. Nothing here knows (or may
//! know) whether the API server is a real one.

use std::path::Path;
use std::sync::Arc;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::desired::{Identity, ObjectRef};

/// The field manager of everything the agent applies.
pub const FIELD_MANAGER: &str = "heimdall";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    /// The API server answered with a failure `Status`.
    #[error("{reason} ({code}): {message}")]
    Api { code: u16, reason: String, message: String },
    #[error("{object} is namespaced but names no metadata.namespace")]
    MissingNamespace { object: String },
    #[error("the cluster does not serve {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("cannot reach the Kubernetes API: {0}")]
    Transport(String),
    #[error("unexpected answer from the Kubernetes API: {0}")]
    Decode(String),
}

impl ClusterError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<kube::Error> for ClusterError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                ClusterError::Api { code: status.code, reason: status.reason.clone(), message: status.message.clone() }
            }
            kube::Error::SerdeError(e) => ClusterError::Decode(e.to_string()),
            other => ClusterError::Transport(other.to_string()),
        }
    }
}

/// A client with a cached discovery, refreshed when a kind is unknown
/// (a CRD was just applied) and never more than needed. Reads are the
/// agent's own; writes are made as an [`Identity`], each with a client
/// that impersonates it (made once, kept).
pub struct Cluster {
    client: Client,
    config: Config,
    impersonating: parking_lot::Mutex<std::collections::HashMap<String, Client>>,
    discovery: RwLock<Option<Arc<Discovery>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// From a kubeconfig file, or the in-cluster service account when `None`.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Cluster, ClusterError> {
        let config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
            }
            None => Config::incluster().map_err(|e| ClusterError::Config(format!("in-cluster configuration: {e}")))?,
        };
        let client = Client::try_from(config.clone()).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Cluster { client, config, impersonating: Default::default(), discovery: RwLock::new(None) })
    }

    /// The client that writes as `identity`.
    fn client_as(&self, identity: &Identity) -> Result<Client, ClusterError> {
        let Some(user) = identity.impersonates() else { return Ok(self.client.clone()) };
        let mut clients = self.impersonating.lock();
        if let Some(client) = clients.get(&user) {
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = None;
        let client = Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?;
        clients.insert(user, client.clone());
        Ok(client)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Forgets the cached discovery, so the next lookup asks the server again.
    pub async fn refresh_discovery(&self) -> Result<(), ClusterError> {
        let discovery = Discovery::new(self.client.clone()).run().await?;
        *self.discovery.write().await = Some(Arc::new(discovery));
        Ok(())
    }

    async fn resolve(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool), ClusterError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        for attempt in 0..2 {
            let cached = self.discovery.read().await.clone();
            let discovery = match cached {
                Some(d) if attempt == 0 => d,
                _ => {
                    self.refresh_discovery().await?;
                    self.discovery.read().await.clone().ok_or_else(|| ClusterError::Decode("empty discovery".into()))?
                }
            };
            if let Some((resource, capabilities)) = discovery.resolve_gvk(&gvk) {
                return Ok((resource, capabilities.scope == Scope::Namespaced));
            }
        }
        Err(ClusterError::UnknownKind { api_version: api_version.to_string(), kind: kind.to_string() })
    }

    async fn api(&self, reference: &ObjectRef, identity: &Identity) -> Result<Api<DynamicObject>, ClusterError> {
        let (resource, namespaced) = self.resolve(&reference.api_version, &reference.kind).await?;
        if namespaced && reference.namespace.is_empty() {
            return Err(ClusterError::MissingNamespace { object: reference.to_string() });
        }
        let client = self.client_as(identity)?;
        Ok(if namespaced { Api::namespaced_with(client, &reference.namespace, &resource) } else { Api::all_with(client, &resource) })
    }

    /// Server-side apply with the agent's field manager, taking over fields
    /// other managers set (the desired state wins), with the agent's own
    /// rights. Returns the live object.
    pub async fn apply(&self, reference: &ObjectRef, object: &Value) -> Result<Value, ClusterError> {
        self.apply_as(&Identity::Agent, reference, object).await
    }

    /// [`Cluster::apply`] as `identity`.
    pub async fn apply_as(&self, identity: &Identity, reference: &ObjectRef, object: &Value) -> Result<Value, ClusterError> {
        let api = self.api(reference, identity).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api.patch(&reference.name, &params, &Patch::Apply(object)).await?;
        to_value(applied, reference)
    }

    pub async fn get(&self, reference: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api(reference, &Identity::Agent).await?;
        api.get_opt(&reference.name).await?.map(|o| to_value(o, reference)).transpose()
    }

    /// Deletes the object with the agent's own rights; `false` if it was already gone.
    pub async fn delete(&self, reference: &ObjectRef) -> Result<bool, ClusterError> {
        self.delete_as(&Identity::Agent, reference).await
    }

    /// [`Cluster::delete`] as `identity`.
    pub async fn delete_as(&self, identity: &Identity, reference: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.api(reference, identity).await?;
        match api.delete(&reference.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object of a kind in all namespaces matching `selector`, with
    /// `apiVersion` and `kind` filled in (list items lack them).
    pub async fn list(&self, api_version: &str, kind: &str, selector: &str) -> Result<Vec<Value>, ClusterError> {
        let (resource, _) = self.resolve(api_version, kind).await?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let list = api.list(&ListParams::default().labels(selector)).await?;
        list.items
            .into_iter()
            .map(|item| {
                let mut value = serde_json::to_value(item).map_err(|e| ClusterError::Decode(e.to_string()))?;
                value["apiVersion"] = Value::from(api_version);
                value["kind"] = Value::from(kind);
                Ok(value)
            })
            .collect()
    }

    /// Kubernetes version, as `v1.33.2`.
    pub async fn version(&self) -> Result<String, ClusterError> {
        Ok(self.client.apiserver_version().await?.git_version)
    }
}

fn to_value(object: DynamicObject, reference: &ObjectRef) -> Result<Value, ClusterError> {
    let mut value = serde_json::to_value(object).map_err(|e| ClusterError::Decode(e.to_string()))?;
    value["apiVersion"] = Value::from(reference.api_version.clone());
    value["kind"] = Value::from(reference.kind.clone());
    Ok(value)
}
