//! The master keys: 256-bit keys in a key file, one of them active. Data
//! keys are wrapped by the active key; older keys stay in the file until
//! nothing is wrapped by them any more, which is what makes rotation safe
//! while the hub serves.
//!
//! The file is YAML (its caller writes it atomically with mode 0600):
//!
//! ```yaml
//! active: mk-3fa9c2d1
//! keys:
//!   mk-3fa9c2d1: <base64 of 32 bytes>
//! ```

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::SecretsError;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    active: String,
    keys: BTreeMap<String, String>,
}

/// The master keys, by id.
#[derive(Clone)]
pub struct Keyring {
    active: String,
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("active", &self.active).field("ids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

fn new_key() -> (String, Zeroizing<[u8; 32]>) {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let mut id = [0u8; 4];
    OsRng.fill_bytes(&mut id);
    (format!("mk-{}", hex::encode(id)), key)
}

fn file_error(origin: &str, message: impl Into<String>) -> SecretsError {
    SecretsError::KeyFile { path: origin.to_string(), message: message.into() }
}

impl Keyring {
    /// A keyring with one new random key.
    pub fn generate() -> Keyring {
        let (id, key) = new_key();
        Keyring { active: id.clone(), keys: [(id, key)].into() }
    }

    /// Reads a key file's text. Any defect is an error naming `origin` (the
    /// file): a hub must not start with keys it cannot trust. Reading and
    /// writing the file is the caller's; this crate does no IO.
    pub fn parse(text: &str, origin: &str) -> Result<Keyring, SecretsError> {
        let file: KeyFile = serde_saphyr::from_str(text)
            .map_err(|_| file_error(origin, "expected YAML with `active: <id>` and `keys: {<id>: <base64 of 32 bytes>}`"))?;
        let mut keys = BTreeMap::new();
        for (id, encoded) in &file.keys {
            let bytes = Zeroizing::new(
                STANDARD.decode(encoded.trim()).map_err(|_| file_error(origin, format!("keys.{id}: expected base64 of 32 bytes")))?,
            );
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| file_error(origin, format!("keys.{id}: expected 32 bytes, found {}", bytes.len())))?;
            keys.insert(id.clone(), Zeroizing::new(key));
        }
        if !keys.contains_key(&file.active) {
            return Err(file_error(origin, format!("active: key {:?} is not under keys", file.active)));
        }
        Ok(Keyring { active: file.active, keys })
    }

    /// The key file's text, for the caller to write readable by its owner only.
    pub fn to_file_text(&self) -> Result<Zeroizing<String>, SecretsError> {
        let file = KeyFile {
            active: self.active.clone(),
            keys: self.keys.iter().map(|(id, key)| (id.clone(), STANDARD.encode(key.as_ref()))).collect(),
        };
        Ok(Zeroizing::new(format!(
            "# Heimdall master keys. Keep this file secret and backed up: without it no stored secret can be read.\n{}",
            serde_saphyr::to_string(&file).map_err(|e| file_error("the key file", format!("cannot serialize: {e}")))?
        )))
    }

    /// The id of the key new data keys are wrapped with.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Adds a new key and makes it the active one; the old keys stay to
    /// unwrap what they wrapped. Returns the new id.
    pub fn rotate(&mut self) -> String {
        let (id, key) = new_key();
        self.keys.insert(id.clone(), key);
        self.active = id.clone();
        id
    }

    /// Forgets a key that no longer wraps anything. The active key stays.
    pub fn retire(&mut self, id: &str) -> bool {
        id != self.active && self.keys.remove(id).is_some()
    }

    pub(crate) fn key(&self, id: &str) -> Result<&[u8; 32], SecretsError> {
        self.keys.get(id).map(|k| &**k).ok_or_else(|| SecretsError::UnknownMasterKey(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_round_trips() {
        let mut keyring = Keyring::generate();
        let first = keyring.active_id().to_string();
        let second = keyring.rotate();
        let loaded = Keyring::parse(&keyring.to_file_text().expect("text"), "master.key").expect("parse");
        assert_eq!(loaded.active_id(), second);
        assert_eq!(loaded.ids().collect::<Vec<_>>().len(), 2);
        assert_eq!(loaded.key(&first).expect("first"), keyring.key(&first).expect("first"));
    }

    #[test]
    fn defective_key_files_are_refused_with_the_reason() {
        for (text, expected) in [
            ("not: [yaml", "expected YAML"),
            ("active: a\nkeys:\n  a: '%%%'\n", "keys.a: expected base64"),
            ("active: a\nkeys:\n  a: AAAA\n", "keys.a: expected 32 bytes, found 3"),
            ("active: b\nkeys:\n  a: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "active: key \"b\" is not under keys"),
        ] {
            let error = Keyring::parse(text, "/data/master.key").expect_err(text).to_string();
            assert!(error.contains(expected) && error.contains("master.key"), "{text}: {error}");
        }
    }

    #[test]
    fn the_active_key_cannot_be_retired() {
        let mut keyring = Keyring::generate();
        let old = keyring.active_id().to_string();
        assert!(!keyring.retire(&old));
        let new = keyring.rotate();
        assert!(keyring.retire(&old));
        assert_eq!(keyring.ids().collect::<Vec<_>>(), vec![new.as_str()]);
    }
}
