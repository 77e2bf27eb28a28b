//! Single sign-on with any OpenID Connect provider (Keycloak, Dex, Okta,
//! Entra ID, Google...): discovery, ID/access token verification against
//! the provider's JWKS, and the authorization-code exchange the portal's
//! sign-in uses.
//!
//! Keys are cached; a token signed with an unknown `kid` refreshes them,
//! at most once per `jwksRefreshSeconds`, so forged tokens with made-up key
//! ids cannot make the hub hammer the provider.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use heimdall_api::auth::Discovery;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

/// The hub's identity-provider settings (`oidc:` in the hub's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; `/.well-known/openid-configuration` is read from it.
    pub issuer: String,
    /// The confidential client the portal signs in with.
    pub client_id: String,
    /// Its secret (or `HEIMDALL_OIDC_CLIENT_SECRET`). Never logged.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// The public client `heimdall login` uses (device flow and loopback
    /// redirect); defaults to `clientId`.
    #[serde(default)]
    pub cli_client_id: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim with the person's name in the audit trail.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim with the person's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// More accepted audiences, besides the two client ids.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Identity-provider groups whose members are platform admins.
    #[serde(default)]
    pub platform_admin_groups: Vec<String>,
    /// Seconds between key refreshes for unknown key ids.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_seconds: u64,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// How long a portal session lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups", "offline_access"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_jwks_refresh() -> u64 {
    30
}
fn default_skew() -> u64 {
    60
}
fn default_session_hours() -> u64 {
    8
}

impl OidcConfig {
    pub fn cli_client_id(&self) -> &str {
        self.cli_client_id.as_deref().unwrap_or(&self.client_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    #[error("the identity provider answered badly: {0}")]
    Provider(String),
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signed with {0:?}, which Heimdall does not accept")]
    Algorithm(String),
    #[error("token signed with an unknown key {0:?}")]
    UnknownKey(String),
    #[error("token refused: {0}")]
    Invalid(String),
}

/// A verified person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub subject: String,
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Only a verified email may grant a tenant role: with providers where
    /// people set their own address, an unverified one proves nothing.
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

/// Algorithms a provider may sign with. Never `none`, never a shared-secret
/// HMAC (which would let anyone holding the public key forge tokens).
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    discovery: RwLock<Option<Discovery>>,
    keys: RwLock<Keys>,
    refreshing: Mutex<()>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.config.issuer).finish()
    }
}

/// A token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Oidc {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Oidc { config, http, discovery: RwLock::new(None), keys: RwLock::new(Keys::default()), refreshing: Mutex::new(()) }
    }

    /// The provider's endpoints, read once (and again after a failure).
    pub async fn discovery(&self) -> Result<Discovery, OidcError> {
        if let Some(discovery) = self.discovery.read().await.clone() {
            return Ok(discovery);
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Provider(format!("discovery names issuer {:?}, not {:?}", discovery.issuer, self.config.issuer)));
        }
        *self.discovery.write().await = Some(discovery.clone());
        Ok(discovery)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self.http.get(url).send().await.map_err(|e| OidcError::Unreachable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Provider(format!("{url} answered {}", response.status())));
        }
        response.json().await.map_err(|e| OidcError::Provider(format!("{url}: {e}")))
    }

    async fn refresh_keys(&self, wanted: &str) -> Result<(), OidcError> {
        let _one_at_a_time = self.refreshing.lock().await;
        {
            let keys = self.keys.read().await;
            if keys.by_kid.contains_key(wanted) {
                return Ok(());
            }
            let interval = Duration::from_secs(self.config.jwks_refresh_seconds);
            if keys.fetched.is_some_and(|at| at.elapsed() < interval) {
                return Err(OidcError::UnknownKey(wanted.to_string()));
            }
        }
        let discovery = self.discovery().await?;
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            let algorithm =
                jwk.common.key_algorithm.and_then(|a| format!("{a:?}").parse::<Algorithm>().ok()).unwrap_or(match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                    _ => Algorithm::RS256,
                });
            by_kid.insert(kid, (key, algorithm));
        }
        tracing::info!(keys = by_kid.len(), issuer = %self.config.issuer, "identity provider keys loaded");
        *self.keys.write().await = Keys { by_kid, fetched: Some(Instant::now()) };
        Ok(())
    }

    /// Verifies a bearer ID or access token (a JWT) and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        self.verify_with_nonce(token, None).await
    }

    /// Verifies, and for a sign-in also checks the `nonce` it was asked for.
    pub async fn verify_with_nonce(&self, token: &str, nonce: Option<&str>) -> Result<Identity, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => OidcError::Algorithm("none or unknown".into()),
            _ => OidcError::Malformed(e.to_string()),
        })?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(OidcError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.clone().unwrap_or_default();
        if !self.keys.read().await.by_kid.contains_key(&kid) {
            self.refresh_keys(&kid).await?;
        }
        let keys = self.keys.read().await;
        let (key, algorithm) = keys.by_kid.get(&kid).ok_or_else(|| OidcError::UnknownKey(kid.clone()))?;
        if *algorithm != header.alg {
            return Err(OidcError::Algorithm(format!("{:?} with a {algorithm:?} key", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.config.issuer.trim_end_matches('/'), &format!("{}/", self.config.issuer.trim_end_matches('/'))]);
        let mut audiences = vec![self.config.client_id.clone(), self.config.cli_client_id().to_string()];
        audiences.extend(self.config.audiences.iter().cloned());
        validation.set_audience(&audiences);
        validation.leeway = self.config.clock_skew_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
            .map_err(|e| OidcError::Invalid(e.to_string()))?
            .claims;
        if let Some(nonce) = nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
        {
            return Err(OidcError::Invalid("the nonce does not match the sign-in".into()));
        }
        self.identity(&claims)
    }

    fn identity(&self, claims: &serde_json::Map<String, Value>) -> Result<Identity, OidcError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(String::from);
        let subject = text("sub").ok_or_else(|| OidcError::Invalid("no sub claim".into()))?;
        let username = text(&self.config.username_claim).or_else(|| text("email")).unwrap_or_else(|| subject.clone());
        let groups = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(groups)) => groups.iter().filter_map(Value::as_str).map(String::from).collect(),
            Some(Value::String(group)) => vec![group.clone()],
            _ => Vec::new(),
        };
        let email_verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
        Ok(Identity { subject, username, email: text("email"), email_verified, display_name: text("name"), groups })
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<TokenResponse, OidcError> {
        let discovery = self.discovery().await?;
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri), ("code_verifier", verifier)];
        let response = self
            .http
            .post(&discovery.token_endpoint)
            .basic_auth(&self.config.client_id, self.config.client_secret.as_deref())
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            // The provider's error code only: its description may echo the request.
            return Err(OidcError::Provider(format!("token endpoint answered {status} {}", body["error"].as_str().unwrap_or(""))));
        }
        response.json().await.map_err(|e| OidcError::Provider(e.to_string()))
    }
}
