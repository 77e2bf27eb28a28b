//! The hub's configuration: a YAML file (`heimdall hub --config FILE`), then
//! environment variables on top, then defaults.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::HubError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...`; default `sqlite://<dataDir>/heimdall.db`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Where the hub keeps its files (SQLite database, git repositories, keys).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Serve HTTPS with this certificate and key (PEM).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub log_format: LogFormat,
    /// A cluster whose agent sends no heartbeat for this long is `Unreachable`.
    #[serde(default = "default_unreachable_after")]
    pub agent_unreachable_after_seconds: u64,
    /// The URL people and agents reach the hub at; default `http(s)://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Single sign-on with an OpenID Connect provider.
    #[serde(default)]
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// The master key file of secrets at rest; default `<dataDir>/master.key`
    /// (created on first start). Several replicas share one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// What catalog URLs the hub may fetch: public addresses only, unless allowed here.
    #[serde(default)]
    pub catalog: crate::fetch::FetchPolicy,
}

fn default_unreachable_after() -> u64 {
    90
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".heimdall")
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            database_url: None,
            data_dir: default_data_dir(),
            tls: None,
            log_format: LogFormat::default(),
            agent_unreachable_after_seconds: default_unreachable_after(),
            public_url: None,
            oidc: None,
            master_key_file: None,
            catalog: Default::default(),
        }
    }
}

/// Environment variables that override the file, and the field each sets.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("HEIMDALL_LISTEN", "listen"),
    ("HEIMDALL_DATABASE_URL", "databaseUrl"),
    ("HEIMDALL_DATA_DIR", "dataDir"),
    ("HEIMDALL_MASTER_KEY_FILE", "masterKeyFile"),
    ("HEIMDALL_TLS_CERT_FILE", "tls.certFile"),
    ("HEIMDALL_TLS_KEY_FILE", "tls.keyFile"),
    ("HEIMDALL_LOG_FORMAT", "logFormat"),
    ("HEIMDALL_PUBLIC_URL", "publicUrl"),
    ("HEIMDALL_OIDC_ISSUER", "oidc.issuer"),
    ("HEIMDALL_OIDC_CLIENT_ID", "oidc.clientId"),
    ("HEIMDALL_OIDC_CLIENT_SECRET", "oidc.clientSecret"),
];

impl HubConfig {
    /// Reads `file` (if any), then applies `env` (normally `std::env::var`).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<HubConfig, HubError> {
        let origin = file.map_or_else(|| "environment".to_string(), |f| f.display().to_string());
        let mut value = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| HubError::Io { path: path.to_path_buf(), source })?;
                let mut documents = heimdall_model::parse_documents(&text, &origin).map_err(|e| HubError::Config(e.to_string()))?;
                match documents.len() {
                    0 => serde_json::json!({}),
                    1 => documents.remove(0).value,
                    n => return Err(HubError::Config(format!("{origin}: expected one YAML document, got {n}"))),
                }
            }
            None => serde_json::json!({}),
        };
        let Some(object) = value.as_object_mut() else {
            return Err(HubError::Config(format!("{origin}: expected a mapping of settings")));
        };
        for (variable, field) in ENVIRONMENT {
            let Some(setting) = env(variable) else { continue };
            match field.split_once('.') {
                Some((parent, child)) => {
                    let parent = object.entry(parent.to_string()).or_insert_with(|| serde_json::json!({}));
                    if let Some(parent) = parent.as_object_mut() {
                        parent.insert(child.to_string(), setting.into());
                    }
                }
                None => {
                    object.insert(field.to_string(), setting.into());
                }
            }
        }
        heimdall_model::spec::deserialize_at::<HubConfig>(&value, "").map_err(|problem| HubError::Config(format!("{origin}: {problem}")))
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("{}://{}", if self.tls.is_some() { "https" } else { "http" }, self.listen),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("heimdall.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hub.yaml");
        std::fs::write(&file, "listen: 0.0.0.0:9000\ndataDir: /var/lib/heimdall\ntls:\n  certFile: /c.pem\n  keyFile: /k.pem\n")
            .expect("write");
        let env = |name: &str| (name == "HEIMDALL_DATABASE_URL").then(|| "postgres://db/heimdall".to_string());
        let config = HubConfig::load(Some(&file), env).expect("valid");
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.database_url(), "postgres://db/heimdall");
        assert_eq!(config.tls.as_ref().map(|t| t.cert_file.clone()), Some(PathBuf::from("/c.pem")));
        assert_eq!(config.log_format, LogFormat::Text);

        let defaults = HubConfig::load(None, |_| None).expect("valid");
        assert_eq!(defaults.database_url(), "sqlite://.heimdall/heimdall.db");
    }

    #[test]
    fn mistakes_name_the_file_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hub.yaml");
        std::fs::write(&file, "listen: x\nlogFormat: xml\n").expect("write");
        let err = HubConfig::load(Some(&file), |_| None).expect_err("invalid").to_string();
        assert!(err.contains("hub.yaml") && err.contains("logFormat"), "{err}");
        std::fs::write(&file, "lisen: x\n").expect("write");
        let err = HubConfig::load(Some(&file), |_| None).expect_err("invalid").to_string();
        assert!(err.contains("lisen"), "{err}");
    }
}
