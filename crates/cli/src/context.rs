//! The client's configuration file: named contexts (hub URL and credentials),
//! like a kubeconfig. `heimdall up` writes the `local` context; `heimdall
//! login` (single sign-on) writes others, with an [`OidcSession`].

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub hub: String,
    /// A token kept in this file (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Or a file that holds the token, such as `heimdall up`'s admin-token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Or a single sign-on session from `heimdall login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSession>,
}

/// What `heimdall login` keeps to send the ID token and refresh it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcSession {
    pub issuer: String,
    /// The hub's public CLI client (no secret).
    pub client_id: String,
    pub token_endpoint: String,
    pub id_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the ID token expires, in Unix seconds.
    pub expires_at: i64,
}

/// Never shows the tokens, so a debug print cannot leak them.
impl std::fmt::Debug for OidcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSession")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `HEIMDALL_CONFIG`, else `$XDG_CONFIG_HOME/heimdall/config.yaml`, else `~/.config/heimdall/config.yaml`.
pub fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("HEIMDALL_CONFIG") {
        return PathBuf::from(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("heimdall").join("config.yaml")
}

impl ClientConfig {
    pub fn load(path: &Path) -> Result<ClientConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(ClientConfig::default()),
            Ok(text) => serde_saphyr::from_str(&text).with_context(|| format!("reading client config {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading client config {}", path.display())),
        }
    }

    /// Writes the file readable by its owner only: it may hold tokens.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = serde_saphyr::to_string(self).context("serializing client config")?;
        let temporary = path.with_extension("yaml.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn current(&self) -> Option<&Context> {
        self.contexts.get(self.current_context.as_deref()?)
    }
}

/// Serializes read-modify-write of the config file between heimdall
/// processes: a provider that rotates refresh tokens revokes the whole
/// session when an old one is used twice, so two commands must never
/// refresh with the same one. The lock is a file created exclusively next
/// to the config; it goes away on drop.
pub struct ConfigLock {
    path: PathBuf,
}

impl ConfigLock {
    /// A lock older than this was left by a process that died.
    const STALE: std::time::Duration = std::time::Duration::from_secs(30);
    const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

    pub async fn acquire(config: &Path) -> Result<ConfigLock> {
        let mut name = config.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let deadline = std::time::Instant::now() + Self::WAIT;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
                Ok(_) => return Ok(ConfigLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                    if age.is_some_and(|age| age > Self::STALE) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if std::time::Instant::now() > deadline {
                        anyhow::bail!("another heimdall command holds {}; remove it if none is running", path.display());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
    }
}

impl Drop for ConfigLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Context {
    pub fn resolve_token(&self) -> Result<Option<String>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        match &self.token_file {
            Some(file) => {
                let token = std::fs::read_to_string(file).with_context(|| format!("reading token file {}", file.display()))?;
                Ok(Some(token.trim().to_string()))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trips_with_private_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/config.yaml");
        let mut config = ClientConfig::load(&path).expect("missing is empty");
        config.contexts.insert(
            "local".into(),
            Context { hub: "http://127.0.0.1:8080".into(), token_file: Some(dir.path().join("admin-token")), ..Context::default() },
        );
        config.current_context = Some("local".into());
        config.save(&path).expect("save");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(ClientConfig::load(&path).expect("load"), config);
        std::fs::write(dir.path().join("admin-token"), "hdl_abc\n").expect("write");
        assert_eq!(config.current().expect("current").resolve_token().expect("token").as_deref(), Some("hdl_abc"));
    }

    #[test]
    fn sessions_round_trip_and_never_debug_print_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        let session = OidcSession {
            issuer: "https://idp.example.com".into(),
            client_id: "heimdall-cli".into(),
            token_endpoint: "https://idp.example.com/token".into(),
            id_token: "eyJ.secret-id-token.sig".into(),
            refresh_token: Some("secret-refresh-token".into()),
            expires_at: 1_900_000_000,
        };
        let mut config = ClientConfig::default();
        config.contexts.insert("sso".into(), Context { hub: "https://hub.example.com".into(), oidc: Some(session), ..Context::default() });
        config.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("idToken") && text.contains("expiresAt: 1900000000") && !text.contains("tokenFile"), "{text}");
        assert_eq!(ClientConfig::load(&path).expect("load"), config);
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-") && debug.contains("heimdall-cli"), "{debug}");
    }

    #[tokio::test]
    async fn the_lock_excludes_and_is_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        let lock = ConfigLock::acquire(&path).await.expect("lock");
        let lock_file = dir.path().join("config.yaml.lock");
        assert!(lock_file.exists());
        let waiting = tokio::spawn({
            let path = path.clone();
            async move { ConfigLock::acquire(&path).await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a second taker waits");
        drop(lock);
        waiting.await.expect("join").expect("acquired after release");
        assert!(!lock_file.exists());
    }
}
