//! `EncryptedSecret`: how a Secret travels to a cluster whose Heimdall agent
//! applies it. The values are an age file (X25519) to the agent's public
//! key, registered when it joined; only that agent's private key opens it.
//! The agent turns the object into a `v1` Secret and applies that; the
//! `EncryptedSecret` itself never reaches the API server.
//!
//! The namespace and name are sealed with the values, and checked on
//! opening, so sealed data copied to another object in the repository is
//! refused (as Sealed Secrets' strict scope does).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{SecretData, SecretsError};

pub const API_VERSION: &str = "secrets.heimdall.dev/v1alpha1";
pub const KIND: &str = "EncryptedSecret";
/// Which agent key the object is sealed to (a fingerprint of the recipient).
pub const RECIPIENT_ANNOTATION: &str = "secrets.heimdall.dev/recipient";

#[derive(Serialize, Deserialize)]
struct Payload {
    namespace: String,
    name: String,
    #[serde(rename = "type")]
    type_: String,
    /// key -> base64 value
    data: BTreeMap<String, String>,
}

impl Drop for Payload {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.data.values_mut() {
            value.zeroize();
        }
    }
}

pub fn is_encrypted_secret(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION) && object.get("kind").and_then(Value::as_str) == Some(KIND)
}

/// The fingerprint of an agent's public key (`age1...`).
pub fn recipient_fingerprint(recipient: &str) -> String {
    crate::fingerprint(recipient.trim().as_bytes())
}

fn invalid(message: impl Into<String>) -> SecretsError {
    SecretsError::Invalid { what: "EncryptedSecret".into(), message: message.into() }
}

/// Seals `secret` to the agent whose public key is `recipient`.
pub fn seal(recipient: &str, secret: &SecretData) -> Result<Value, SecretsError> {
    let parsed: age::x25519::Recipient = recipient.trim().parse().map_err(|_| SecretsError::Invalid {
        what: "agent public key".into(),
        message: "expected an age X25519 recipient (age1...)".into(),
    })?;
    let payload = Payload {
        namespace: secret.namespace.clone(),
        name: secret.name.clone(),
        type_: secret.type_.clone(),
        data: secret.data.iter().map(|(k, v)| (k.clone(), STANDARD.encode(v.as_slice()))).collect(),
    };
    let plaintext = Zeroizing::new(serde_json::to_vec(&payload).map_err(|e| SecretsError::Seal(e.to_string()))?);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&parsed as &dyn age::Recipient)).map_err(|e| SecretsError::Seal(e.to_string()))?;
    let mut armored = Vec::new();
    let seal = || -> std::io::Result<()> {
        let armor = age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)?;
        let mut writer = encryptor.wrap_output(armor)?;
        writer.write_all(&plaintext)?;
        writer.finish()?.finish()?;
        Ok(())
    };
    seal().map_err(|e| SecretsError::Seal(e.to_string()))?;
    let encrypted = String::from_utf8(armored).map_err(|e| SecretsError::Seal(e.to_string()))?;
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": secret.name,
            "namespace": secret.namespace,
            "annotations": {RECIPIENT_ANNOTATION: recipient_fingerprint(recipient)},
        },
        "spec": {
            "type": secret.type_,
            // Names only, for whoever reads the repository.
            "keys": secret.data.keys().collect::<Vec<_>>(),
            "encryptedData": encrypted,
        },
    }))
}

/// Opens an `EncryptedSecret` with the agent's keys (the current one first,
/// then any it held before a rotation) into the `v1` Secret to apply. The
/// Secret keeps the object's labels and annotations.
pub fn open(object: &Value, identities: &[age::x25519::Identity]) -> Result<Value, SecretsError> {
    let field = |path: &str| object.pointer(path).and_then(Value::as_str);
    let (Some(name), Some(namespace)) = (field("/metadata/name"), field("/metadata/namespace")) else {
        return Err(invalid("expected metadata.name and metadata.namespace"));
    };
    let encrypted = field("/spec/encryptedData").ok_or_else(|| invalid("expected spec.encryptedData (an age file)"))?;
    let what = format!("EncryptedSecret {namespace}/{name}");
    let decrypt = || SecretsError::Decrypt { what: what.clone() };
    let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(encrypted.as_bytes())).map_err(|_| decrypt())?;
    let mut reader = decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|_| decrypt())?;
    let mut plaintext = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut plaintext).map_err(|_| decrypt())?;
    let payload: Payload = serde_json::from_slice(&plaintext).map_err(|_| invalid("the sealed content is not a secret payload"))?;
    if payload.namespace != namespace || payload.name != name {
        return Err(invalid(format!(
            "sealed for {}/{}, found in {namespace}/{name}: sealed data may not be moved to another object",
            payload.namespace, payload.name
        )));
    }
    let mut metadata = json!({"name": name, "namespace": namespace});
    for field in ["labels", "annotations"] {
        if let Some(value) = object.pointer(&format!("/metadata/{field}")).and_then(Value::as_object) {
            let mut value = value.clone();
            value.remove(RECIPIENT_ANNOTATION);
            if !value.is_empty() {
                metadata[field] = Value::Object(value);
            }
        }
    }
    Ok(json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": payload.type_, "data": payload.data}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn secret() -> SecretData {
        SecretData {
            namespace: "shop".into(),
            name: "web".into(),
            type_: "Opaque".into(),
            data: [
                ("DB_PASSWORD".to_string(), Zeroizing::new(b"correct horse".to_vec())),
                ("TOKEN".to_string(), Zeroizing::new(vec![0, 159, 146, 150])),
            ]
            .into(),
        }
    }

    #[test]
    fn the_agent_opens_what_was_sealed_to_it_and_nobody_else_does() {
        let agent = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let mut sealed = seal(&agent.to_public().to_string(), &secret()).expect("seal");
        let text = sealed.to_string();
        assert!(!text.contains("correct horse") && !text.contains(&STANDARD.encode("correct horse")), "{text}");
        assert_eq!(sealed["spec"]["keys"], json!(["DB_PASSWORD", "TOKEN"]));
        sealed["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "heimdall"});
        let opened = open(&sealed, std::slice::from_ref(&agent)).expect("open");
        assert_eq!(opened["kind"], "Secret");
        assert_eq!(opened["data"]["DB_PASSWORD"], STANDARD.encode("correct horse"));
        assert_eq!(opened["data"]["TOKEN"], STANDARD.encode([0, 159, 146, 150]));
        assert_eq!(opened["metadata"]["labels"]["app.kubernetes.io/managed-by"], "heimdall");
        assert!(opened["metadata"].get("annotations").is_none(), "the recipient annotation is the sealed object's own");
        let error = open(&sealed, std::slice::from_ref(&other)).expect_err("another cluster's agent");
        assert!(matches!(error, SecretsError::Decrypt { .. }), "{error}");
        // After a key rotation the agent holds both keys for a while.
        open(&sealed, &[other, agent]).expect("old key still held");
    }

    #[test]
    fn sealed_data_cannot_move_to_another_object() {
        let agent = age::x25519::Identity::generate();
        let mut sealed = seal(&agent.to_public().to_string(), &secret()).expect("seal");
        sealed["metadata"]["name"] = json!("admin");
        let error = open(&sealed, &[agent]).expect_err("moved").to_string();
        assert!(error.contains("sealed for shop/web, found in shop/admin"), "{error}");
    }

    #[test]
    fn bad_input_is_named() {
        let agent = age::x25519::Identity::generate();
        assert!(seal("not-a-key", &secret()).expect_err("bad key").to_string().contains("age X25519 recipient"));
        let mut sealed = seal(&agent.to_public().to_string(), &secret()).expect("seal");
        sealed["spec"]["encryptedData"] = json!("-----BEGIN AGE ENCRYPTED FILE-----\ngarbage\n-----END AGE ENCRYPTED FILE-----\n");
        assert!(matches!(open(&sealed, std::slice::from_ref(&agent)), Err(SecretsError::Decrypt { .. })));
        sealed["spec"].as_object_mut().expect("spec").remove("encryptedData");
        assert!(open(&sealed, std::slice::from_ref(&agent)).expect_err("missing").to_string().contains("spec.encryptedData"));
        // Identities print only through secrecy.
        assert!(agent.to_string().expose_secret().starts_with("AGE-SECRET-KEY-"));
    }
}
