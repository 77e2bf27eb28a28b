//! Bitnami `SealedSecret` (`bitnami.com/v1alpha1`), as `kubeseal` writes it,
//! so a cluster's existing Sealed Secrets controller decrypts what Heimdall seals.
//!
//! Each value of the Secret is sealed on its own, as sealed-secrets'
//! `HybridEncrypt` does: a fresh 32-byte session key encrypts the value with
//! AES-256-GCM (all-zero nonce, no AAD), and RSA-OAEP (SHA-256, MGF1-SHA-256)
//! encrypts the session key to the controller's key, with the scope's label
//! as the OAEP label. The value stored is
//! `u16 big-endian length of the RSA ciphertext || RSA ciphertext || AES-GCM ciphertext and tag`,
//! base64 (standard, padded).
//!
//! The label is what binds a sealed value to where it may be unsealed: the
//! controller derives it from the `SealedSecret`'s own namespace, name and scope
//! annotation, so a value moved to another name or namespace no longer decrypts.
//!
//! | scope | OAEP label | annotation (object and template) |
//! | --- | --- | --- |
//! | strict | `<namespace>/<name>` | none |
//! | namespace-wide | `<namespace>` | `sealedsecrets.bitnami.com/namespace-wide: "true"` |
//! | cluster-wide | empty | `sealedsecrets.bitnami.com/cluster-wide: "true"` |

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRngCore;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, RsaPublicKey};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::{SecretData, SecretsError, fingerprint};

const API_VERSION: &str = "bitnami.com/v1alpha1";
const KIND: &str = "SealedSecret";
const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
const SESSION_KEY_BYTES: usize = 32;
/// Smaller RSA keys are too weak to seal to.
const MIN_KEY_BITS: usize = 2048;
/// The controller's `--key-size` may exceed the 4096 bits the `rsa` crate
/// accepts by default; beyond this a key is more likely garbage than real.
const MAX_KEY_BITS: usize = 16384;
const CERTIFICATE: &str = "sealed-secrets certificate";

/// Where a sealed secret may be unsealed, as `kubeseal --scope` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Only under this name in this namespace.
    #[default]
    Strict,
    /// Under any name in this namespace.
    NamespaceWide,
    /// Under any name in any namespace.
    ClusterWide,
}

impl Scope {
    /// The RSA-OAEP label: sealed-secrets' `EncryptionLabel`.
    fn label(self, namespace: &str, name: &str) -> String {
        match self {
            Scope::Strict => format!("{namespace}/{name}"),
            Scope::NamespaceWide => namespace.to_string(),
            Scope::ClusterWide => String::new(),
        }
    }

    /// The annotation the controller reads the scope from (strict has none).
    fn annotation(self) -> Option<&'static str> {
        match self {
            Scope::Strict => None,
            Scope::NamespaceWide => Some(NAMESPACE_WIDE_ANNOTATION),
            Scope::ClusterWide => Some(CLUSTER_WIDE_ANNOTATION),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }
}

/// A Sealed Secrets controller's certificate (PEM, as `kubeseal --fetch-cert` prints it).
#[derive(Clone, Debug)]
pub struct ControllerCertificate {
    key: RsaPublicKey,
    fingerprint: String,
}

impl ControllerCertificate {
    /// Reads the first `CERTIFICATE` block of `pem`, as `kubeseal --cert` does.
    ///
    /// Errors (`SecretsError::Invalid { what: "sealed-secrets certificate", .. }`)
    /// when the text is not PEM, holds no certificate, the certificate does not
    /// parse, its key is not RSA or has fewer than 2048 bits, or it has expired
    /// (kubeseal refuses expired certificates too) at `now`, in Unix seconds:
    /// the caller's clock, so this crate reads none.
    pub fn from_pem(pem: &str, now: i64) -> Result<Self, SecretsError> {
        let der = first_certificate_der(pem)?;
        let (rest, certificate) =
            x509_parser::parse_x509_certificate(&der).map_err(|error| invalid_certificate(format!("not an X.509 certificate: {error}")))?;
        if !rest.is_empty() {
            return Err(invalid_certificate("trailing bytes after the certificate"));
        }
        let not_after = certificate.validity().not_after;
        if not_after.timestamp() < now {
            return Err(invalid_certificate(format!(
                "the certificate expired on {not_after}; fetch the controller's current one (kubeseal --fetch-cert)"
            )));
        }

        let spki = certificate.public_key();
        let algorithm = &spki.algorithm.algorithm;
        if *algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            let name = x509_parser::objects::oid2sn(algorithm, x509_parser::objects::oid_registry())
                .map_or_else(|_| algorithm.to_id_string(), str::to_string);
            return Err(invalid_certificate(format!("the certificate's key is {name}, not RSA; a Sealed Secrets controller's key is RSA")));
        }
        // Parsed by hand rather than with `DecodePublicKey`, whose 4096-bit cap
        // would refuse controllers started with a larger `--key-size`.
        let pkcs1 = rsa::pkcs1::RsaPublicKey::try_from(spki.subject_public_key.data.as_ref())
            .map_err(|error| invalid_certificate(format!("malformed RSA public key: {error}")))?;
        let key = RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(pkcs1.modulus.as_bytes()),
            BigUint::from_bytes_be(pkcs1.public_exponent.as_bytes()),
            MAX_KEY_BITS,
        )
        .map_err(|error| invalid_certificate(format!("unusable RSA public key: {error}")))?;
        let bits = key.n().bits();
        if bits < MIN_KEY_BITS {
            return Err(invalid_certificate(format!("the certificate's RSA key has {bits} bits; at least {MIN_KEY_BITS} are required")));
        }
        Ok(ControllerCertificate { key, fingerprint: fingerprint(spki.raw) })
    }

    /// [`crate::fingerprint`] of the certificate's SubjectPublicKeyInfo DER:
    /// it names the key, so a renewed certificate for the same key keeps it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn invalid_certificate(message: impl Into<String>) -> SecretsError {
    SecretsError::Invalid { what: CERTIFICATE.to_string(), message: message.into() }
}

/// The DER of the first `CERTIFICATE` block, skipping other blocks as
/// client-go's `ParseCertsPEM` does.
fn first_certificate_der(pem: &str) -> Result<Vec<u8>, SecretsError> {
    let mut other_labels = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|error| invalid_certificate(format!("not PEM: {error}")))?;
        if block.label == "CERTIFICATE" {
            return Ok(block.contents);
        }
        // Someone may paste the controller's private key: wipe the decoded copy.
        drop(Zeroizing::new(block.contents));
        other_labels.push(block.label);
    }
    if other_labels.is_empty() {
        Err(invalid_certificate("not PEM: expected a -----BEGIN CERTIFICATE----- block, as kubeseal --fetch-cert prints"))
    } else {
        Err(invalid_certificate(format!("no CERTIFICATE block in the PEM (found {})", other_labels.join(", "))))
    }
}

/// The SealedSecret object (serde_json::Value) for `secret`, sealed to `certificate` in `scope`.
/// `secret.type_` goes to spec.template.type.
///
/// The object is the one `kubeseal -o yaml` writes for that Secret, less
/// `creationTimestamp: null`: the scope annotation (if any) on both the
/// object's and the template's metadata, and the template's name and
/// namespace equal to the object's. A cluster-wide secret may have no
/// namespace; then neither metadata has one. An empty `type_` is left out,
/// as kubeseal does (Kubernetes then makes the Secret `Opaque`).
///
/// Errors with `SecretsError::Invalid` for a name, namespace or key
/// Kubernetes would refuse, or a missing namespace outside cluster-wide
/// scope; with `SecretsError::Seal` if encryption fails.
pub fn seal(
    certificate: &ControllerCertificate,
    scope: Scope,
    secret: &SecretData,
    rng: &mut impl CryptoRngCore,
) -> Result<serde_json::Value, SecretsError> {
    check_secret(scope, secret)?;
    let label = scope.label(&secret.namespace, &secret.name);

    let mut encrypted_data = Map::new();
    for (key, value) in &secret.data {
        let sealed = hybrid_encrypt(&certificate.key, value, &label, rng)?;
        encrypted_data.insert(key.clone(), Value::String(STANDARD.encode(sealed)));
    }

    // Keys go in alphabetical order, as kubeseal's YAML has them, whether or
    // not serde_json preserves insertion order.
    let metadata = object_metadata(scope, secret);
    let mut template = Map::new();
    template.insert("metadata".into(), metadata.clone());
    if !secret.type_.is_empty() {
        template.insert("type".into(), Value::String(secret.type_.clone()));
    }
    let mut spec = Map::new();
    spec.insert("encryptedData".into(), Value::Object(encrypted_data));
    spec.insert("template".into(), Value::Object(template));

    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    object.insert("kind".into(), Value::String(KIND.into()));
    object.insert("metadata".into(), metadata);
    object.insert("spec".into(), Value::Object(spec));
    Ok(Value::Object(object))
}

/// Metadata for both the object and its template: kubeseal copies the
/// Secret's metadata, with the scope annotation added, into both.
fn object_metadata(scope: Scope, secret: &SecretData) -> Value {
    let mut metadata = Map::new();
    if let Some(annotation) = scope.annotation() {
        let mut annotations = Map::new();
        annotations.insert(annotation.into(), Value::String("true".into()));
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    metadata.insert("name".into(), Value::String(secret.name.clone()));
    if !secret.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(secret.namespace.clone()));
    }
    Value::Object(metadata)
}

/// Refuses what the controller could not unseal into a Secret. The namespace
/// and name form the label, so a `/` in either would make labels ambiguous.
fn check_secret(scope: Scope, secret: &SecretData) -> Result<(), SecretsError> {
    let invalid = |message: String| SecretsError::Invalid { what: "secret to seal".to_string(), message };
    // Kubernetes names: a DNS subdomain for the Secret, a DNS label for its namespace.
    check_dns_name("secret name", &secret.name, 253, true).map_err(invalid)?;
    if secret.namespace.is_empty() {
        if scope != Scope::ClusterWide {
            // kubeseal's rule too: the label of this scope includes the namespace.
            return Err(invalid(format!("secret {:?}: a {} secret needs a namespace", secret.name, scope.as_str())));
        }
    } else {
        check_dns_name("namespace", &secret.namespace, 63, false).map_err(invalid)?;
    }
    for key in secret.data.keys() {
        let valid = !key.is_empty()
            && key.len() <= 253
            && key != "."
            && key != ".."
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(invalid(format!("secret key {key:?}: expected 1 to 253 letters, digits, '-', '_' and '.', and not '.' or '..'")));
        }
    }
    Ok(())
}

/// Lowercase letters, digits and `-` (and `.` if `dots`), starting and
/// ending alphanumeric, at most `max_len` characters.
fn check_dns_name(what: &str, value: &str, max_len: usize, dots: bool) -> Result<(), String> {
    let valid = !value.is_empty()
        && value.len() <= max_len
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        let dot = if dots { ", '.'" } else { "" };
        Err(format!("{what} {value:?}: expected lowercase letters, digits{dot} and '-', at most {max_len} characters"))
    }
}

/// sealed-secrets' `HybridEncrypt`; the rng is drawn from in the same order
/// (session key, then the OAEP seed).
fn hybrid_encrypt(key: &RsaPublicKey, plaintext: &[u8], label: &str, rng: &mut impl CryptoRngCore) -> Result<Vec<u8>, SecretsError> {
    let mut session_key = Zeroizing::new([0u8; SESSION_KEY_BYTES]);
    rng.fill_bytes(&mut session_key[..]);

    let rsa_ciphertext = key
        .encrypt(rng, Oaep::new_with_label::<sha2::Sha256, _>(label), &session_key[..])
        .map_err(|error| SecretsError::Seal(format!("RSA-OAEP encryption of the session key: {error}")))?;
    let rsa_length =
        u16::try_from(rsa_ciphertext.len()).map_err(|_| SecretsError::Seal("the RSA ciphertext does not fit a 2-byte length".into()))?;

    let cipher = Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(&session_key[..]));
    // The session key encrypts this one value only, so a fixed nonce never
    // repeats under a key; sealed-secrets uses the all-zero one.
    let nonce = aes_gcm::Nonce::default();
    let aes_ciphertext = cipher.encrypt(&nonce, plaintext).map_err(|_| SecretsError::Seal("AES-GCM encryption failed".into()))?;

    let mut sealed = Vec::with_capacity(2 + rsa_ciphertext.len() + aes_ciphertext.len());
    sealed.extend_from_slice(&rsa_length.to_be_bytes());
    sealed.extend_from_slice(&rsa_ciphertext);
    sealed.extend_from_slice(&aes_ciphertext);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{SystemTime, UNIX_EPOCH};

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use rsa::RsaPrivateKey;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    use serde_json::json;

    use super::*;

    /// The test's clock, as the hub passes its own.
    fn now() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
    }

    /// A test-only RSA key (2048 bits, made once with `openssl genpkey` for
    /// these tests; it protects nothing). Embedded because generating an RSA
    /// key in a debug build takes seconds.
    const TEST_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCn7LwVym2KfbAS
32ylHjHtsYBK7yPi5UrE3vydKNL/R0XJ8VEq97poBmgFKL57ayoeznbXluI0sFeS
F3CF1DE2JKTNnqYknBe4vCC6QClm7Vva2BTclrcb9iKW2JBf8usfebppKQh2Zxn+
4YuHQaIlZ8q/qQpGuYNjMBKCGRydrcrP00YgiARH5huR3KzeEFkppca1cH7RZ44V
Hf75fESM5hRzCa4ELeHGNka2YlQIpeqR3NZtYxvqbYPby2RjxYsexAhDnH1t+RZ8
BD1Go2r4bxXSwyd7cAo0SzRkpvUUqc+mCvL+N/kgdhcBQ9omkP80BePh6E8iaHzu
B5baFhJXAgMBAAECggEAMrprX1HVoZ6ykCD6my7x+lJC5WA0wRhva+XI/lkU1JVd
WdISqR5JK5+z0MssL/CBuui4MgycrToQWkvGbEdbznVna85fdnPJHr+GS32ShEt0
EjpwourMyh+i91rY0oN5z/pf++Cvc8VVrw/HrMaBCze9ogSY3CCytkYRcUfQwzj9
yDblvsHDebPuOubWgdjV/Exjp9FmtRGqPnNfQqbdukfC26YPgLMg5hxO1MuqVBGw
C7KnxCVbg3Sk8rTZO7aT2C/RkPXwOlcAw2aA+xaHC+n9IU++0uQ5LvlnaXiDxNIp
uHYts+RJRb4hR7KYQSiBZ8hSURInkPyytloDgUOkwQKBgQDYNz0na06erkQX5H9a
onm583DyZTuTCCO/11ivOUbUdwz8J2yxV+opBl8eYqLwCbhY10wLbGKavCrDmDsD
16eHa2TGFKBYnL0Hy2C6jeziLgOTQFwHaErPQfdEwosCVGTpA4X6daWvFR/SjvQr
zZRsvpLG4Z3ZYUKekD1syYpZMQKBgQDG0sPrsDAIOOTQkJE02HiMKcnDu80vWvzn
MiNfWEVdCWO42WyV99/gdMaRfYhryJFLhghN9GSeIn3qji0YxnZp64wHB2XZWcqq
6Yr2ov74RcpUXfHrq/i44AlSTuomP9FEvFSH2vciAsJAIUONgc/F8dh2SCctVA/d
WB3g/X9CBwKBgHjpAxjNKE0SdN/LlvBvVZUILwxOUi9Z6Ov6GAz9AcAEx00nGuBd
ooPInV6XmDiVpvJ/i3YD6WxQd7WjprTyXywagWNH25dSJ195eyE4BtVBGBy7a/t0
dglLAWUBSc1GtpubrcuvCLVNIduUt7TbJPpe5CO1vZj3i9KyJLd2SRixAoGABXeC
H5bmmzNFR17SP0u8dM4pWBJv3992mLzOMC7zKU26yjhgPfdk1n0fgJydBamsJRF4
ZPxVT+vO3oYuQ0Ihu2PYo9DWQhWv9ucZBRMSQ61XlN5Iapx96EdwuiylT4vtqyAq
itnAddTxlmXTv65UEjNGKmpteVeYYBOuLqOJvj0CgYEA0gTeG01jfqPsW37v2rEP
SgMYpqelb/vsrtkDW9ZHnGsDb/iyEaJrhIBvDzM9fL0HxipIeEJJIO4+8Mp6T93n
+K1gO/oBpX3QTfmloWE+0gN52KWZ3/klTZtQsY9LAxykAUQsdZgO2UhM763FtJhN
EU2W9AfLgFLiPrfEnz0pjy8=
-----END PRIVATE KEY-----
";

    /// A self-signed certificate for a 1024-bit RSA key (made once with
    /// `openssl req -x509 -newkey rsa:1024`): ring, under rcgen, cannot sign
    /// with so small a key.
    const SMALL_RSA_CERT_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIICBjCCAW+gAwIBAgIUTjddihzMDKIMkwYrn0dMWMG7TzEwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJdG9vLXNtYWxsMCAXDTI2MTEyMTA5Mzc0NFoYDzIxMjYx
MDI4MDkzNzQ0WjAUMRIwEAYDVQQDDAl0b28tc21hbGwwgZ8wDQYJKoZIhvcNAQEB
BQADgY0AMIGJAoGBAMzI7qQmxrxp1xzoAVqOkthzUIuK+MxhOiPHsRNIG5OsWgxm
bT6D1e77Glz+qSFCfn8mKYMtXjsheyAma2+wHs7XakhTa9f0BklcDrJSffLYO8o/
SkEvNApsAuV/abj7Rh13ziFBgFGc+OGu3fhxoDjPfjMv+SFU2n2Pdp+7Oq5TAgMB
AAGjUzBRMB0GA1UdDgQWBBRMSmdZCm6E7rfag/EaCqa2aD4fJjAfBgNVHSMEGDAW
gBRMSmdZCm6E7rfag/EaCqa2aD4fJjAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3
DQEBCwUAA4GBAG/E1oYkM8nZO7rTxk/N+GBYPiaR7vv+KKuNhtFguAlozn6kTNYu
FHd+xNP2NNiVOgRlsYgFkauwKj6d7oNYI5x+2GDNb2/8SYvKgMN3iEy1A7yvkYuY
stcAn4SNNCI9w4TD9ml8yRs0z+D/o7nTQFCxXFz4qZUxX66OwFiB9uOr
-----END CERTIFICATE-----
";

    // A known vector from the public examples of the kseal project (GitHub
    // mikube/kseal, Apache-2.0): `examples/example-key.yaml` is the key Secret
    // of a Sealed Secrets controller (4096 bits) that the project published
    // for its examples, and `examples/decryption/use-arguments/dev-values.yaml`
    // holds values kubeseal sealed to it in strict scope as my-namespace/my-secret;
    // the plaintexts are the ones its README shows unsealed.
    const KSEAL_EXAMPLE_KEY_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIJKQIBAAKCAgEA8uOBPSwFbEzHDRQdIGUr8P/AsX7vf5minjmFEuBLKZ5hIq8+
ZR+9Dh5x1EYeWk6labHC2TUcTnFlOLA9T+HVEFLWMmmV6w3AUwYPPLvOtde7mzmS
Na9yNGqqcKnIJ44OD1yJb7XqLoiczywnfDqFD9IvnnC80DkfuePp8FHjyQVkuEsr
rGjNqBtuOJXd5VxmAmNEq+X/Qo4tA/h+naq3DkyHe5j/kHLYnT/2+aokrHloNBxU
54DpHr7zaVdq3+WAgx3dy3k3+b4FEPptImEJhSPFIX22MLnVIokddTduA3eqnoV+
xGVf4OiYgWLyatmNur0Fi2IZVyLyqtlKbtEFire1+jQLhTZypSLr1gum5Ami9cv2
/iPHdDQcas5B7gQGcX6Of9P8acexRmZHLpmlZxD9Hhwk+0i/XB7rzY1o9F7p1fB0
VFhjiSzFeGonEKVzFy2tO/RpHKX6hqwSnDKrZJQcf31r6hZ2K3Jc7mEhZOUqsSxX
4CT/JBl5BWYsBUdOKgw+w9LliltVuc60IgcVUPT2f7OEEZLzjjAR219ZDr6kHkfs
FbuZ8zny+673ujpgciCl7xIgRw5ss68bZTeRrIgEcrGgrZknUnnPcp+G4z03NTqF
tS8cii2gkOnD3TuWis5TaRLNrmXyR6xBgFzeZpkPyqZOJbPzf+JgGbXfhq0CAwEA
AQKCAgEAh8kEEUyw43CwvvEFr3yf6iUwdoo+HhmnvcjuSjU2D9hI+Xj66tGpgWEn
xcJFabsZ4lLMWV3Fq1zdd6mfPS9FS9Djil9YvoV7hW6Xyh48W5B1gzvWL0kcEY2o
Jz/jc6mI1rGm69rJRqZ885z9ngehJ80bbfoctFObFvMBb6Z4L4NiYV001zfn8RkU
r3GpEXZsWN1iIK992pldNSEQt9gealICU+iexwRNcOu3iK/DvOBKjwdft+RrbxLV
RYjnaLAG/kYOHphv4KCIeItnw5Z4GgR7SlPbLLZXHu2EmGkaibm2mtSKoAUEatnd
mEfWukFRaJoPpXJ8NCiHfVfosrcL3wAloAv/0QlOl8a79YXBnLjzCn4dyEbJ6fkh
8WNcUCyUq0wrzILTah0YokruHSGCO5/Z7pGth3Gt8jApzNlKQCAyT/HE+KXFGYgC
Ji8HWUBWc2LWPdqalLsEyRj9+a7lR9jCkUdIimjgiB9dE+BV/lZx4mAspo/4GHnF
utLG9ymLYOB0ee/NALSszyfxkjA6nup4twTlDpJZHgn3WDNfMNjK068CyJJdHpjX
reSv+cD4xq/SKawTWO8yqiUgby3j2fwgGLOPTgnVlqhQQKgfcwT/n7R4JXdb004q
hI4P61R96pVV0Fl2SW5xI2l5szL1QwzqgxJ6bsn/mX7MggL48cECggEBAP4Z34SY
AMfRAs3DOT0il1QbvgIkIZJAm+QyfcQZ+uzG17gMyXGY7OndS8EguR/OoEx2lsxX
PxNkzHxpYAukPeoblAgHeIbVjv5JJGlSRlp+5H0JBOkoleYopBiDs03of+yNrHnV
L6JGEuM7DXjQEhtKjYQDHwlWFWaT3VUkhCs+OT6OfSA0Rzr/4xXAN9byf41DKFZL
FIc0QuXGlPkISC0y/hbyMN2AKxl0Nx36XIXDb53blocpsj786Hcg8XngWJZrmEmF
fjnfAYq63zQVb/5fGt3BIfNtrP9LsDgRWAJ0Fekhb6ynCgmWNhYlydcuLKuLvaUJ
frWBA/bF0XNaXMkCggEBAPS0Llml/Hc+B6OSXsaOre0bT2zc66gxMIa4+77rSgxb
Oq/GwYgbQrqQo9L/eCz4J1v4jtxYWuGRCOtUvOOG2fZnGKP1G5ROTNHERJEtf69O
q9cob/+Ui8wCUfD061jXXFirKhcusJsZtzaKCUi6pRwShpxq5hu9WGphNFxPzyPX
oln4QaMlakycMBk37ZXSv+3jCj3D7WJylcRdu/ZwfxMLVOsgxi92d+KgvB+H+gSy
pRKjfHSuPe04I0KGa0/jKX06911GnuxUkYLTuiP9kKw7hu4atvvIR3GQfPe04ufg
tngbZL4hXgy28kBIXveMxdNtqePz9+PAyX2GZ59VIMUCggEAK6JZxbUsfSOhLaBW
le74uZLCADAgK7M4kekxu5kSg9JpfMuFVCKEnGxJ8/IgmButXzQGFTTuOfBXRQ37
VkRv9WGi+/X8dnr5wSTiQcvFFQkxR19jHn6/rvRPqX4ELl68iOyTL6CyO1V5LNgZ
KiPg2BrnTkIS9FF5/1Fo8pQAtkRLJDjnt74CdVk3r6aAcELYMHPV22utLMKGslp1
foYzjr9w7pPMXF0ECazxQg6aEMZMxnjM0o0QdMyNRte7X8hsrffwAMARuvJWm3IX
niQIRVAjluzxXZH54SUoL5ia2mEA2jXJrYZJrPfEde0rSe498X9fo5WL0rNC8P9r
RjnAMQKCAQEA77vuhOm3M+NTfI8TxxdVkivlXlP5k+fNEM/94weEniJqlnb0d7Gt
aDX4KekbBYOAm/whigIN11tOD7AO9iHRPDO40jh58ovbes78FfcrVsaOV9ZIE26m
nxHO0XBBeeJTmJLoQ5n8b5d8BTSq79PbmmsT8f5QvfB8xIvCzoVp/EVvyxEKzRkE
0VVbUfmXC+dTHW4HRIfE82QrEhx6329LL480fL65Kxq3TRIH/CQtb5jNXDtK3M0v
4k3TTYN/ct6scQHqAjoDzKj1feSMQmJS8EnJYVBO4NFQHRRfOha/Dkj6uySrSBJM
n8xD/XJph8EktoSDos4Ll9fyDsY0ksbFuQKCAQA6MWIz0sJFshfwFQHzJFn+XoJ7
tWiJkDVTNRZvf2frXi6EPk2i3OHTUgB/7JIQXRnDpROvhp+9DFgEM0t7AgsC+Evo
3v7KNnsd5xhVzu0XCfa+LzgiHdxQarFBl5wPrsKtp2StFXo1V/NP47Rq7fmvCNq/
4j3tqqsbuwCzU8ZhWs9G5NfH7PXw7X3Uc9j9/kG3UQvM+41ZqjBuqu0QWSx+cNrY
yAbdHiU6BsVQryMLoCW95OuKA+vXnl67+B2Cvbp/70UTdkSjaD86EwuY/NOC4g0X
mGHCgI2Uob6tBqlMV6xUxtGRhupySIUgcjYXVMOwnyVnogJIhnb1nSMlyoou
-----END RSA PRIVATE KEY-----
";

    /// The controller's certificate from the same key Secret (`tls.crt`),
    /// valid from 2021-01-25 to 2031-01-23.
    const KSEAL_EXAMPLE_CERT_PEM: &str = include_str!("../testdata/kseal-example-cert.pem");

    /// (key, sealed by kubeseal, plaintext)
    const KSEAL_EXAMPLE_VALUES: [(&str, &str, &str); 3] = [
        (
            "db_password",
            "AgAjtavZJhiswjebCMMxAcgD85EtxISgIQbeLOvgk8LK6hbodSUOMrFjAE3WRJjjfsucy8EVb68nT24BQQNGLmpORgE6cDRodFQBGE7rIv1SX4Sv8h1TS8EEmojC0wjzKf8XnjGnHoD9z9bCOm9qLKWrUNmmqf/nQyYMAldILrvh8wX2JqFSLVtEIK19+2GR8hjRnqbCCvTDBi9Q2o1t/uA2nlNkKoYNsrcd/PJHa7Ze2nDuzEz98MblwEp89JzPPRhIGtHJ54/wYWLDTpoXer25PiSRuFV+0rTmSlTxWbG1sqs8mV9Al0K0r4hsT9jgEMYIaWCyMl0tzeGrV0j0eqoUs7VsrOLRDFykrKsK4cqSnJEJ3vFvbIvNHaaxx1ezMhedaq2/jwLfphIEnXqcN/siabddwV3QOjE8jaKYn+Mqt1nHuICQQ5O40wPWIhZiNpAHUMFiRTuARob3ZvCuygsIT5brsW562jyzATZY/Y6YyaCyZUsO1o6rLwOGY1MBP/2lEl1vE6D2wGBXIUfn3zaXM2DI/L3Nn50SbGhcieV+ptORyZFOJzHqYqEsUTKzC1/fKISfhOR1+D85F7/M/PqmSOZAO2G51Ry7p8ztAXOd15J0Nd5C20qw1PkRr4BEe0sMvGooa9P/CYAmuFK2W4HS9zMPkyseGnc/VBfjW65eJAl/IPXKjOiyy0XXLDTwH+jwqLxenr3MwO2XAVaIh9I6BYLSvx28",
            "my-password-for-dev-db",
        ),
        (
            "api_secret",
            "AgCqxB/PsRylTA7o5WNaqxBPC8okab9FhJV0sXN+xVnOEheN2jLipBNh6WfDyTJliRfSKusH7H42VwIH8HJed1DJKl5JkqbwbFH04jxZ3Pz4fUIrfdoEw3jMqdE9xR5uY0rbE/Vo8K6kRJ8AcsGcT1vACrCIbu1z5piHhG48Dv0KT91frB9LURCr/zeBK1Jrnb31cujBYPytRtgB9AKSC/cd9RVp6/o7TQpOEqSiXgcIHjSL+/FfXDtfnCI01qC75hfAHzgyCS6tAhsziHg1kzFvAJgpRefc0ONxATH74LCmA8VWPs692NocoxAm601oswLqHdNo7OZctlgVTz9+Qg8g2xhLA6oIEm9MjW0lVOWjDtpltG8zXrT1Cp3Zi6Qk5tnJxqYFNBxFyy87K94a95uaLeboCzsx+RcjDIrQtZwqUE4jlP0hHjNjHUs/djrP8HMC+irlPK9P48+AuYCMmW44ohz32HQd5Ccl8PDQosqtUPsFVY9nPl+ynk0uRDyyT9EzF5YJc1PxYHCmoS+5Aw0PwCSlXttg7XLXWmeKADEI8jplh1z8ZNbFQJbYwBQgTe3R5F4ccH/kYSZGiaGRchJsCXlAN6wTVjmILr/xpiy3CLJ4LOD+QU+IJ+qzNMnD/iFWtqp1iLCZjPw2zIcljD2sWJmEkLvfrSIQt1LHlMUi/Vg9H+FpYIWS3u7Vh7JHqpp5MB6TAHxtMHOaMN3qUoY85w==",
            "my-dev-api-secret",
        ),
        (
            "secretMessage",
            "AgDo1s9ZnXa+P7nL1iOQuwQQfkVKvibGN915/7J2l5Dv6zRRA9X6vTDRc5f6iEHacI6rHjseWGTnr9UYVAyJMz+goDxjMo04cTUDc4LZhotPm3MQ+ZCleYy1pAnU8aR7+0yf/GdHm+IciQtVYc1KjVUS0hnyEm9SMXXUmzC0bFpxngppVXw4mKqzoGBTni3I1967ohCIWxKv/N/NKJUZxMHp8dVZyMMNL1olmjCvVWi2tkUNS3Rq+rFQ2VUVlQ40XmcPi6DG0TZUXXtnwaMNVJxpwJ0y+mg3+3S+s2v2MLAv87o0GOY4SWJfCR0JDt8lnqtfZFcYIJcwl59MKixc9mc1xCbmbZWwLuQi+cKe7IRlZiiTbh4TXaq0yiXNlYX2DBHJ9aiY3fM1wKJR+YlzOpuXOUTwFg7ozYRTD2No7dGn4sQiIX96wG9xXp9GTHjNinMN1LY8EddDxFY7qy8kBqsBG3K9pJ9LkHjgIktNN/S8LIrx7c8upF6bE9dvPnj6POMdzIiKfjgEbnWF5lcIAz1YHHKZjRoJ8GTlKVFamA2FmXl1K/BKidmqpXGMLaw1c0J3DEYWgWjDmFsns5RVORdXIWFwKHeZxG0y0U56FGS3zf9WgjurGyExaOJxqnqYbqJV+TKUkXkTrc4gMcw22trsHOm2t+4IWuvp7MjB+iieSf/Yuz2w98ckld0PncVIpoYs9P6TUNqoQ62cbpbSM+aG2JLp3rNjLYI=",
            "This is a secret message",
        ),
    ];

    /// 2024-01-01T00:00:00Z, a time the example controller certificate is valid at.
    const JANUARY_2024: i64 = 1_704_067_200;

    const SCOPES: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    fn test_key() -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(TEST_KEY_PEM).expect("the test key parses")
    }

    /// A self-signed certificate (rcgen) for the key in `key_pem` (PKCS#8).
    fn self_signed_pem(key_pem: &str, edit: impl FnOnce(&mut rcgen::CertificateParams)) -> String {
        let key_pair = rcgen::KeyPair::from_pem(key_pem).expect("rcgen reads the key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate parameters");
        edit(&mut params);
        params.self_signed(&key_pair).expect("rcgen signs the certificate").pem()
    }

    fn test_certificate() -> ControllerCertificate {
        ControllerCertificate::from_pem(&self_signed_pem(TEST_KEY_PEM, |_| {}), now()).expect("the test certificate is accepted")
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(2024)
    }

    fn secret_data(namespace: &str, name: &str, values: &[(&str, &[u8])]) -> SecretData {
        SecretData {
            namespace: namespace.into(),
            name: name.into(),
            type_: "Opaque".into(),
            data: values.iter().map(|(key, value)| (key.to_string(), Zeroizing::new(value.to_vec()))).collect(),
        }
    }

    fn test_secret() -> SecretData {
        secret_data(
            "shop",
            "web",
            &[
                ("DB_PASSWORD", b"hunter2"),
                ("config.yaml", b"user: web\npassword: s3cret\n"),
                ("empty", b""),
                ("binary", &[0, 1, 2, 0xfe, 0xff]),
            ],
        )
    }

    fn plaintexts(secret: &SecretData) -> BTreeMap<String, Vec<u8>> {
        secret.data.iter().map(|(key, value)| (key.clone(), value.to_vec())).collect()
    }

    /// sealed-secrets' `HybridDecrypt`, written from its source independently of `seal`.
    fn hybrid_decrypt(key: &RsaPrivateKey, sealed: &[u8], label: &str) -> Result<Vec<u8>, String> {
        let (length, rest) = sealed.split_first_chunk::<2>().ok_or("shorter than the length prefix")?;
        let rsa_length = usize::from(u16::from_be_bytes(*length));
        if rest.len() < rsa_length {
            return Err("shorter than the RSA ciphertext".into());
        }
        let (rsa_ciphertext, aes_ciphertext) = rest.split_at(rsa_length);
        let session_key = Zeroizing::new(
            key.decrypt(Oaep::new_with_label::<sha2::Sha256, _>(label), rsa_ciphertext).map_err(|error| format!("RSA-OAEP: {error}"))?,
        );
        let cipher = Aes256Gcm::new_from_slice(&session_key).map_err(|_| "the session key is not 32 bytes")?;
        cipher.decrypt(&aes_gcm::Nonce::default(), aes_ciphertext).map_err(|_| "AES-GCM: authentication failed".into())
    }

    /// What the controller does (sealed-secrets' `Unseal`): the label comes
    /// from the SealedSecret's own namespace, name and scope annotations.
    fn unseal(key: &RsaPrivateKey, object: &Value) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let metadata = &object["metadata"];
        let namespace = metadata["namespace"].as_str().unwrap_or_default();
        let name = metadata["name"].as_str().unwrap_or_default();
        let annotations = &metadata["annotations"];
        let label = if annotations["sealedsecrets.bitnami.com/cluster-wide"] == "true" {
            String::new()
        } else if annotations["sealedsecrets.bitnami.com/namespace-wide"] == "true" {
            namespace.to_string()
        } else {
            format!("{namespace}/{name}")
        };
        let encrypted = object["spec"]["encryptedData"].as_object().ok_or("no spec.encryptedData")?;
        encrypted
            .iter()
            .map(|(item, value)| {
                let sealed = STANDARD.decode(value.as_str().ok_or("not a string")?).map_err(|error| format!("{item}: {error}"))?;
                Ok((item.clone(), hybrid_decrypt(key, &sealed, &label).map_err(|error| format!("{item}: {error}"))?))
            })
            .collect()
    }

    /// The object as if applied under another namespace and name.
    fn moved(object: &Value, namespace: &str, name: &str) -> Value {
        let mut moved = object.clone();
        for pointer in ["/metadata", "/spec/template/metadata"] {
            let metadata = moved.pointer_mut(pointer).expect("metadata");
            metadata["namespace"] = json!(namespace);
            metadata["name"] = json!(name);
        }
        moved
    }

    fn certificate_error(result: Result<ControllerCertificate, SecretsError>) -> String {
        match result {
            Err(SecretsError::Invalid { what, message }) => {
                assert_eq!(what, "sealed-secrets certificate");
                message
            }
            other => panic!("expected an invalid certificate, got {other:?}"),
        }
    }

    fn seal_error(scope: Scope, secret: &SecretData) -> String {
        match seal(&test_certificate(), scope, secret, &mut rng()) {
            Err(SecretsError::Invalid { message, .. }) => message,
            other => panic!("expected an invalid secret, got {other:?}"),
        }
    }

    #[test]
    fn every_key_round_trips_in_every_scope() {
        let (key, certificate, secret) = (test_key(), test_certificate(), test_secret());
        for scope in SCOPES {
            let object = seal(&certificate, scope, &secret, &mut rng()).expect("seals");
            assert_eq!(unseal(&key, &object), Ok(plaintexts(&secret)), "{scope:?}");
        }
    }

    #[test]
    fn strict_values_unseal_under_their_own_name_and_namespace_only() {
        let (key, certificate, secret) = (test_key(), test_certificate(), test_secret());
        let object = seal(&certificate, Scope::Strict, &secret, &mut rng()).expect("seals");
        assert!(unseal(&key, &object).is_ok());
        assert!(unseal(&key, &moved(&object, "shop", "api")).is_err(), "renamed");
        assert!(unseal(&key, &moved(&object, "staging", "web")).is_err(), "other namespace");

        let sealed = STANDARD.decode(object["spec"]["encryptedData"]["DB_PASSWORD"].as_str().expect("a string")).expect("base64");
        assert_eq!(hybrid_decrypt(&key, &sealed, "shop/web").as_deref(), Ok(&b"hunter2"[..]));
        for wrong in ["shop/api", "staging/web", "shop", ""] {
            assert!(hybrid_decrypt(&key, &sealed, wrong).is_err(), "label {wrong:?}");
        }
    }

    #[test]
    fn wider_scopes_unseal_where_their_scope_allows() {
        let (key, certificate, secret) = (test_key(), test_certificate(), test_secret());

        let namespace_wide = seal(&certificate, Scope::NamespaceWide, &secret, &mut rng()).expect("seals");
        assert_eq!(unseal(&key, &moved(&namespace_wide, "shop", "api")), Ok(plaintexts(&secret)), "renamed");
        assert!(unseal(&key, &moved(&namespace_wide, "staging", "web")).is_err(), "other namespace");

        let cluster_wide = seal(&certificate, Scope::ClusterWide, &secret, &mut rng()).expect("seals");
        assert_eq!(unseal(&key, &moved(&cluster_wide, "staging", "api")), Ok(plaintexts(&secret)), "anywhere");

        // The annotation is what tells the controller the scope: without it,
        // it would take the value for strict and fail.
        for mut object in [namespace_wide, cluster_wide] {
            object["metadata"].as_object_mut().expect("metadata").remove("annotations");
            assert!(unseal(&key, &object).is_err());
        }
    }

    #[test]
    fn scope_annotations_are_on_the_object_and_its_template() {
        let certificate = test_certificate();
        let expected = [
            (Scope::Strict, Value::Null),
            (Scope::NamespaceWide, json!({"sealedsecrets.bitnami.com/namespace-wide": "true"})),
            (Scope::ClusterWide, json!({"sealedsecrets.bitnami.com/cluster-wide": "true"})),
        ];
        for (scope, annotations) in expected {
            let object = seal(&certificate, scope, &test_secret(), &mut rng()).expect("seals");
            assert_eq!(object["metadata"]["annotations"], annotations, "{scope:?}");
            assert_eq!(object["spec"]["template"]["metadata"]["annotations"], annotations, "{scope:?}");
        }
    }

    #[test]
    fn the_object_has_the_shape_kubeseal_writes() {
        let secret = secret_data("mynamespace", "mysecret", &[("foo", b"bar"), ("baz", b"qux")]);
        let mut object = seal(&test_certificate(), Scope::Strict, &secret, &mut rng()).expect("seals");

        for (item, value) in object["spec"]["encryptedData"].as_object_mut().expect("encryptedData") {
            let encoded = value.as_str().expect("a string");
            let sealed = STANDARD.decode(encoded).expect("standard, padded base64");
            // A 2048-bit key gives 256 bytes of RSA ciphertext; AES-GCM adds a 16-byte tag.
            assert_eq!(sealed[..2], [1, 0], "{item}");
            assert_eq!(sealed.len(), 2 + 256 + 3 + 16, "{item}");
            *value = json!("<sealed>");
        }
        let expected = json!({
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "mysecret", "namespace": "mynamespace"},
            "spec": {
                "encryptedData": {"baz": "<sealed>", "foo": "<sealed>"},
                "template": {
                    "metadata": {"name": "mysecret", "namespace": "mynamespace"},
                    "type": "Opaque",
                },
            },
        });
        assert_eq!(object, expected);

        let keys: Vec<&str> = object.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"], "kubeseal's key order");
    }

    #[test]
    fn cluster_wide_secrets_may_have_no_namespace() {
        let secret = secret_data("", "shared", &[("token", b"t0k3n")]);
        let object = seal(&test_certificate(), Scope::ClusterWide, &secret, &mut rng()).expect("seals");
        let metadata = json!({"annotations": {"sealedsecrets.bitnami.com/cluster-wide": "true"}, "name": "shared"});
        assert_eq!(object["metadata"], metadata);
        assert_eq!(object["spec"]["template"]["metadata"], metadata);
        assert_eq!(unseal(&test_key(), &moved(&object, "anywhere", "shared")), Ok(plaintexts(&secret)));

        for scope in [Scope::Strict, Scope::NamespaceWide] {
            assert!(seal_error(scope, &secret).contains("needs a namespace"), "{scope:?}");
        }
    }

    #[test]
    fn an_empty_type_is_left_out_as_kubeseal_does() {
        let mut secret = test_secret();
        secret.type_ = String::new();
        let object = seal(&test_certificate(), Scope::Strict, &secret, &mut rng()).expect("seals");
        assert_eq!(object["spec"]["template"].get("type"), None);

        secret.type_ = "kubernetes.io/basic-auth".into();
        let object = seal(&test_certificate(), Scope::Strict, &secret, &mut rng()).expect("seals");
        assert_eq!(object["spec"]["template"]["type"], "kubernetes.io/basic-auth");
    }

    #[test]
    fn every_value_gets_its_own_session_key() {
        let secret = secret_data("shop", "web", &[("a", b"same"), ("b", b"same")]);
        let certificate = test_certificate();
        let mut rng = rng();
        let first = seal(&certificate, Scope::Strict, &secret, &mut rng).expect("seals");
        let second = seal(&certificate, Scope::Strict, &secret, &mut rng).expect("seals");
        let data = &first["spec"]["encryptedData"];
        assert_ne!(data["a"], data["b"]);
        assert_ne!(first, second);
    }

    #[test]
    fn sealing_is_stable_for_a_seeded_rng() {
        let certificate = test_certificate();
        let secret = secret_data("shop", "web", &[("DB_PASSWORD", b"hunter2"), ("api-token", b"t0k3n")]);
        let sealed = |rng: &mut ChaCha20Rng| -> Vec<Value> {
            SCOPES.iter().map(|scope| seal(&certificate, *scope, &secret, rng).expect("seals")).collect()
        };
        let objects = sealed(&mut rng());
        assert_eq!(objects, sealed(&mut rng()));
        insta::assert_yaml_snapshot!(objects);
    }

    #[test]
    fn the_fingerprint_names_the_public_key() {
        let spki = test_key().to_public_key().to_public_key_der().expect("SPKI DER");
        let first = test_certificate();
        let renewed = ControllerCertificate::from_pem(
            &self_signed_pem(TEST_KEY_PEM, |params| {
                params.not_after = rcgen::date_time_ymd(2100, 1, 1);
            }),
            now(),
        )
        .expect("accepted");
        let other = ControllerCertificate::from_pem(KSEAL_EXAMPLE_CERT_PEM, JANUARY_2024).expect("accepted");
        assert_eq!(first.fingerprint(), fingerprint(spki.as_bytes()));
        assert_eq!(first.fingerprint(), renewed.fingerprint());
        assert_ne!(first.fingerprint(), other.fingerprint());
    }

    #[test]
    fn text_that_is_not_pem_is_refused() {
        for text in ["", "hello", "MIIErjCCApagAwIBAgIRAMM0KcjW76Asx9ZWpJqmd"] {
            let message = certificate_error(ControllerCertificate::from_pem(text, now()));
            assert!(message.starts_with("not PEM"), "{text:?}: {message}");
        }
    }

    #[test]
    fn pem_without_a_certificate_is_refused_without_echoing_it() {
        let message = certificate_error(ControllerCertificate::from_pem(TEST_KEY_PEM, now()));
        assert!(message.contains("no CERTIFICATE block") && message.contains("PRIVATE KEY"), "{message}");
        assert!(!message.contains("MIIE"), "{message}");
    }

    #[test]
    fn a_malformed_certificate_is_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
        let message = certificate_error(ControllerCertificate::from_pem(pem, now()));
        assert!(message.starts_with("not an X.509 certificate"), "{message}");
    }

    #[test]
    fn an_ec_certificate_is_refused() {
        let key_pair = rcgen::KeyPair::generate().expect("an ECDSA P-256 key");
        let pem = self_signed_pem(&key_pair.serialize_pem(), |_| {});
        let message = certificate_error(ControllerCertificate::from_pem(&pem, now()));
        assert!(message.contains("not RSA"), "{message}");
    }

    #[test]
    fn a_1024_bit_rsa_certificate_is_refused() {
        let message = certificate_error(ControllerCertificate::from_pem(SMALL_RSA_CERT_PEM, now()));
        assert!(message.contains("1024 bits") && message.contains("at least 2048"), "{message}");
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let pem = self_signed_pem(TEST_KEY_PEM, |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let message = certificate_error(ControllerCertificate::from_pem(&pem, now()));
        assert!(message.contains("expired"), "{message}");
    }

    #[test]
    fn invalid_names_namespaces_and_keys_are_refused() {
        let cases = [
            (secret_data("shop", "Web", &[("a", b"1")]), "secret name"),
            (secret_data("shop", "a/b", &[("a", b"1")]), "secret name"),
            (secret_data("a/b", "web", &[("a", b"1")]), "namespace"),
            (secret_data("a.b", "web", &[("a", b"1")]), "namespace"),
            (secret_data("shop", "web", &[("a/b", b"1")]), "secret key"),
            (secret_data("shop", "web", &[("..", b"1")]), "secret key"),
        ];
        for (secret, expected) in cases {
            let message = seal_error(Scope::Strict, &secret);
            assert!(message.starts_with(expected), "{message}");
        }
    }

    #[test]
    fn scopes_are_named_as_kubeseal_names_them() {
        for (scope, name) in [(Scope::Strict, "strict"), (Scope::NamespaceWide, "namespace-wide"), (Scope::ClusterWide, "cluster-wide")] {
            assert_eq!(serde_json::to_value(scope).expect("serializes"), json!(name));
            assert_eq!(serde_json::from_value::<Scope>(json!(name)).expect("deserializes"), scope);
        }
        assert_eq!(Scope::default(), Scope::Strict);
    }

    #[test]
    fn values_kubeseal_sealed_unseal_with_the_controller_key() {
        let key = RsaPrivateKey::from_pkcs1_pem(KSEAL_EXAMPLE_KEY_PEM).expect("the example key parses");
        for (item, sealed, plaintext) in KSEAL_EXAMPLE_VALUES {
            let sealed = STANDARD.decode(sealed).expect("base64");
            assert_eq!(hybrid_decrypt(&key, &sealed, "my-namespace/my-secret").as_deref(), Ok(plaintext.as_bytes()), "{item}");
        }
        let (_, sealed, _) = KSEAL_EXAMPLE_VALUES[0];
        let sealed = STANDARD.decode(sealed).expect("base64");
        assert!(hybrid_decrypt(&key, &sealed, "my-namespace/other-secret").is_err(), "strict scope");
    }

    #[test]
    fn values_sealed_to_a_real_controller_certificate_unseal_with_its_key() {
        let key = RsaPrivateKey::from_pkcs1_pem(KSEAL_EXAMPLE_KEY_PEM).expect("the example key parses");
        let certificate = ControllerCertificate::from_pem(KSEAL_EXAMPLE_CERT_PEM, JANUARY_2024).expect("a controller's certificate");
        assert_eq!(certificate.key, key.to_public_key());

        let secret = secret_data("my-namespace", "my-secret", &[("db_password", b"my-password-for-dev-db")]);
        let object = seal(&certificate, Scope::Strict, &secret, &mut rng()).expect("seals");
        assert_eq!(unseal(&key, &object), Ok(plaintexts(&secret)));
        let sealed = STANDARD.decode(object["spec"]["encryptedData"]["db_password"].as_str().expect("a string")).expect("base64");
        assert_eq!(sealed[..2], [2, 0], "a 4096-bit key's 512-byte RSA ciphertext, as kubeseal's values start (\"AgA\")");

        // The certificate runs out on 2031-01-23.
        let message = certificate_error(ControllerCertificate::from_pem(KSEAL_EXAMPLE_CERT_PEM, JANUARY_2024 + 8 * 366 * 86_400));
        assert!(message.contains("expired"), "{message}");
    }
}
