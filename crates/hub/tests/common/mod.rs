//! A hub on a temporary SQLite store, driven through its router without a socket.

#![allow(dead_code)]

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use heimdall_hub::{AppState, router};
use heimdall_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestHub {
    pub router: Router,
    pub state: AppState,
    pub store: Store,
    /// The admin token.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// A hub with the built-in platform only.
    pub async fn new() -> TestHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("h.db").display())).await.expect("store");
        let token = heimdall_hub::server::ensure_admin_token(&store, dir.path()).await.expect("token").token;
        let state = AppState::new(store.clone(), dir.path().join("git"));
        TestHub { router: router(state.clone()), state, store, token, _dir: dir }
    }

    /// A hub with the example platform loaded: defaults, policies, definitions, environments, clusters.
    pub async fn with_example_platform() -> TestHub {
        TestHub::new().await.load_examples("platform").await
    }

    /// The example platform and the example applications.
    pub async fn with_example_organization() -> TestHub {
        TestHub::with_example_platform().await.load_examples("apps").await
    }

    /// Loads a folder of `examples/` as `heimdall up` loads it.
    async fn load_examples(self, folder: &str) -> TestHub {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(folder);
        heimdall_hub::server::load_manifests(&self.state, heimdall_cli::files::read_manifests(&path).expect("read"))
            .await
            .unwrap_or_else(|e| panic!("examples/{folder} loads: {e:?}"));
        self
    }

    /// The same hub with a changed state (single sign-on, say) behind a new router.
    pub fn with_state(mut self, change: impl FnOnce(&mut AppState)) -> TestHub {
        change(&mut self.state);
        self.router = router(self.state.clone());
        self
    }

    /// Sends a request with `token` (none if `None`) and returns the status and the body as JSON (or text).
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: impl Into<Body>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if !content_type.is_empty() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self.router.clone().oneshot(request.body(body.into()).expect("request")).await.expect("response");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Sends a request as the admin.
    pub async fn call(&self, method: &str, uri: &str, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.call_with(method, uri, content_type, body, Some(&self.token)).await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, "", Body::empty()).await
    }

    pub async fn apply_yaml(&self, yaml: &str, query: &str) -> (StatusCode, Value) {
        self.call("POST", &format!("/api/v1/apply{query}"), "application/yaml", yaml.to_string()).await
    }

    pub async fn application(&self, namespace: &str, name: &str) -> Value {
        self.get(&format!("/api/v1/namespaces/{namespace}/applications/{name}")).await.1
    }
}

impl TestHub {
    /// A new API token with `role` (`tenant:shop:developer`), named `token:<role with - for :>`.
    pub async fn token_for(&self, role: &str) -> String {
        self.named_token(&format!("token:{}", role.replace(':', "-")), role).await
    }

    /// A new API token called `name` with `role`.
    pub async fn named_token(&self, name: &str, role: &str) -> String {
        let token = heimdall_store::generate_token();
        self.store.put_token(name, &token, role, None).await.expect("token");
        token
    }

    /// The commits of a cluster's repository, newest first.
    pub fn commits(&self, cluster: &str) -> Vec<heimdall_gitops::CommitInfo> {
        self.state.repos.log(cluster, 100).unwrap_or_default()
    }
}

/// A one-component web application in namespace `shop`, placed by `topology`
/// (`None` for the platform's default environments).
pub fn web_app(name: &str, image: &str, topology: Option<&str>) -> String {
    let mut yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  components:\n    - name: {name}\n      type: webservice\n      properties:\n        image: {image}\n        memory: 128Mi\n"
    );
    if let Some(topology) = topology {
        yaml.push_str(&format!("  policies:\n    - {{name: where, type: topology, properties: {topology}}}\n"));
    }
    yaml
}
