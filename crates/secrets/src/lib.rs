//! Heimdall's secret cryptography, with no IO of its own.
//!
//! - [`keyring`]: the master keys, loaded from a key file, that wrap data keys.
//! - [`envelope`]: each secret value encrypted at rest under its own data key.
//! - [`agent`]: the `EncryptedSecret` object a cluster's repository carries
//!   for the Heimdall agent: an age file to the agent's X25519 key.
//! - [`sealed_secrets`]: Bitnami's `SealedSecret`, as `kubeseal` writes it.
//!
//! Plaintext lives in [`SecretData`], whose `Debug` never shows values and
//! whose memory is wiped on drop.

pub mod agent;
pub mod envelope;
pub mod keyring;
pub mod sealed_secrets;

use std::collections::BTreeMap;

use zeroize::Zeroizing;

/// Largest value of one key: Kubernetes caps a whole Secret at 1 MiB.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one secret may hold.
pub const MAX_KEYS: usize = 100;

/// What went wrong. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("master key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("master key {0} is not in the key file")]
    UnknownMasterKey(String),
    #[error("cannot decrypt {what}: wrong key or tampered ciphertext")]
    Decrypt { what: String },
    #[error("invalid {what}: {message}")]
    Invalid { what: String, message: String },
    #[error("sealing failed: {0}")]
    Seal(String),
}

/// One Kubernetes Secret's content: name, namespace, type and values.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretData {
    pub namespace: String,
    pub name: String,
    /// `Opaque` unless said otherwise.
    pub type_: String,
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretData")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("type", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// SHA-256 of `bytes`, hex, shortened: how key material is named in annotations.
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let data = SecretData {
            namespace: "shop".into(),
            name: "web".into(),
            type_: "Opaque".into(),
            data: [("DB_PASSWORD".to_string(), Zeroizing::new(b"hunter2".to_vec()))].into(),
        };
        let shown = format!("{data:?}");
        assert!(shown.contains("DB_PASSWORD") && !shown.contains("hunter2"), "{shown}");
    }
}
