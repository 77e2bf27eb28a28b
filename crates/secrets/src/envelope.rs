//! Envelope encryption at rest: every secret value has its own random data
//! key; the value is sealed with it (ChaCha20-Poly1305), and the data key is
//! sealed with a master key from the [`Keyring`]. Rotating the master key
//! re-wraps data keys only; values are never re-encrypted.
//!
//! Both layers carry associated data: the value is bound to its `context`
//! (`namespace/name/key/version`) and the data key to its context and
//! master key id, so a ciphertext moved to another row, or a row edited in
//! the database, fails to open instead of yielding another secret's value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::SecretsError;
use crate::keyring::Keyring;

const NONCE: usize = 12;

/// One value as stored: all fields are safe to store and log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The master key that wraps the data key.
    pub master_key_id: String,
    /// base64(nonce || data key sealed by the master key)
    pub wrapped_key: String,
    /// base64(nonce || value sealed by the data key)
    pub ciphertext: String,
}

fn seal_with(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
    let mut nonce = [0u8; NONCE];
    OsRng.fill_bytes(&mut nonce);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .map_err(|_| SecretsError::Seal("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(STANDARD.encode(out))
}

fn open_with(key: &[u8; 32], sealed: &str, aad: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let decrypt = || SecretsError::Decrypt { what: what.to_string() };
    let bytes = STANDARD.decode(sealed).map_err(|_| decrypt())?;
    if bytes.len() < NONCE {
        return Err(decrypt());
    }
    let (nonce, body) = bytes.split_at(NONCE);
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| decrypt())
}

fn key_aad(context: &str, master_key_id: &str) -> Vec<u8> {
    format!("heimdall data key\n{context}\n{master_key_id}").into_bytes()
}

fn unwrap_key(keyring: &Keyring, envelope: &Envelope, context: &str) -> Result<Zeroizing<[u8; 32]>, SecretsError> {
    let master = keyring.key(&envelope.master_key_id)?;
    let what = format!("the data key of {context}");
    let data_key = open_with(master, &envelope.wrapped_key, &key_aad(context, &envelope.master_key_id), &what)?;
    let key: [u8; 32] = data_key.as_slice().try_into().map_err(|_| SecretsError::Decrypt { what })?;
    Ok(Zeroizing::new(key))
}

/// Encrypts `plaintext` for storage under a fresh data key and the active master key.
pub fn seal(keyring: &Keyring, plaintext: &[u8], context: &str) -> Result<Envelope, SecretsError> {
    let mut data_key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(data_key.as_mut());
    let master_key_id = keyring.active_id().to_string();
    let wrapped_key = seal_with(keyring.key(&master_key_id)?, data_key.as_ref(), &key_aad(context, &master_key_id))?;
    let ciphertext = seal_with(&data_key, plaintext, context.as_bytes())?;
    Ok(Envelope { master_key_id, wrapped_key, ciphertext })
}

/// Decrypts a stored value. Fails on an unknown master key, a wrong key, a
/// wrong context and any change to the stored bytes.
pub fn open(keyring: &Keyring, envelope: &Envelope, context: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let data_key = unwrap_key(keyring, envelope, context)?;
    open_with(&data_key, &envelope.ciphertext, context.as_bytes(), &format!("the value of {context}"))
}

/// The same value with its data key wrapped by the active master key. The
/// value's ciphertext is untouched.
pub fn rewrap(keyring: &Keyring, envelope: &Envelope, context: &str) -> Result<Envelope, SecretsError> {
    let data_key = unwrap_key(keyring, envelope, context)?;
    let master_key_id = keyring.active_id().to_string();
    let wrapped_key = seal_with(keyring.key(&master_key_id)?, data_key.as_ref(), &key_aad(context, &master_key_id))?;
    Ok(Envelope { master_key_id, wrapped_key, ciphertext: envelope.ciphertext.clone() })
}

/// Whether the keyring can unwrap this envelope's data key: the check a hub
/// makes at start so that a wrong key file fails loudly, not later.
pub fn verify(keyring: &Keyring, envelope: &Envelope, context: &str) -> Result<(), SecretsError> {
    unwrap_key(keyring, envelope, context).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &str = "shop/web/DB_PASSWORD/1";

    #[test]
    fn values_round_trip_and_never_appear_in_the_envelope() {
        let keyring = Keyring::generate();
        let envelope = seal(&keyring, b"hunter2-hunter2", CONTEXT).expect("seal");
        assert_eq!(open(&keyring, &envelope, CONTEXT).expect("open").as_slice(), b"hunter2-hunter2");
        let stored = serde_json::to_string(&envelope).expect("json");
        assert!(!stored.contains("hunter2"));
        assert!(!stored.contains(&STANDARD.encode(b"hunter2-hunter2")));
        // Two seals of one value differ: fresh data key and nonces each time.
        assert_ne!(seal(&keyring, b"hunter2-hunter2", CONTEXT).expect("seal").ciphertext, envelope.ciphertext);
    }

    #[test]
    fn tampering_and_misplacement_are_rejected() {
        let keyring = Keyring::generate();
        let envelope = seal(&keyring, b"value", CONTEXT).expect("seal");
        let flip = |text: &str| {
            let mut bytes = STANDARD.decode(text).expect("base64");
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            STANDARD.encode(bytes)
        };
        let tampered_value = Envelope { ciphertext: flip(&envelope.ciphertext), ..envelope.clone() };
        let tampered_key = Envelope { wrapped_key: flip(&envelope.wrapped_key), ..envelope.clone() };
        for (case, result) in [
            ("value", open(&keyring, &tampered_value, CONTEXT)),
            ("data key", open(&keyring, &tampered_key, CONTEXT)),
            ("other context", open(&keyring, &envelope, "shop/web/DB_PASSWORD/2")),
            ("truncated", open(&keyring, &Envelope { ciphertext: "AAAA".into(), ..envelope.clone() }, CONTEXT)),
            ("other keyring", open(&Keyring::generate(), &envelope, CONTEXT)),
        ] {
            let error = result.expect_err(case);
            assert!(matches!(error, SecretsError::Decrypt { .. } | SecretsError::UnknownMasterKey(_)), "{case}: {error}");
        }
    }

    #[test]
    fn rotation_rewraps_data_keys_and_loses_nothing() {
        let mut keyring = Keyring::generate();
        let old_id = keyring.active_id().to_string();
        let envelope = seal(&keyring, b"value", CONTEXT).expect("seal");
        let new_id = keyring.rotate();
        let rewrapped = rewrap(&keyring, &envelope, CONTEXT).expect("rewrap");
        assert_eq!(rewrapped.master_key_id, new_id);
        assert_eq!(rewrapped.ciphertext, envelope.ciphertext);
        assert!(keyring.retire(&old_id));
        assert_eq!(open(&keyring, &rewrapped, CONTEXT).expect("open").as_slice(), b"value");
        assert!(matches!(open(&keyring, &envelope, CONTEXT), Err(SecretsError::UnknownMasterKey(id)) if id == old_id));
        verify(&keyring, &rewrapped, CONTEXT).expect("verify");
    }
}
