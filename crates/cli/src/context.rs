//! The client's configuration file: named contexts (hub URL and credentials),
//! like a kubeconfig. `heimdall up` writes the `local` context; `heimdall
//! login` (single sign-on) will write others.

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
            Context { hub: "http://127.0.0.1:8080".into(), token: None, token_file: Some(dir.path().join("admin-token")) },
        );
        config.current_context = Some("local".into());
        config.save(&path).expect("save");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(ClientConfig::load(&path).expect("load"), config);
        std::fs::write(dir.path().join("admin-token"), "hdl_abc\n").expect("write");
        assert_eq!(config.current().expect("current").resolve_token().expect("token").as_deref(), Some("hdl_abc"));
    }
}
