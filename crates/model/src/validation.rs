//! Name and label rules, as the Kubernetes API server enforces them, so that
//! whatever Heimdall accepts can later be applied to a real cluster unchanged.

use std::collections::BTreeMap;

use crate::problem::{Problem, join_path};

const DNS_LABEL_MAX: usize = 63;
const DNS_SUBDOMAIN_MAX: usize = 253;

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, at most 63.
pub fn check_dns_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > DNS_LABEL_MAX {
        return Err(format!("must be at most {DNS_LABEL_MAX} characters, got {}", value.len()));
    }
    let bytes = value.as_bytes();
    let valid_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    if !bytes.iter().all(|&c| valid_char(c)) || bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Err(format!(
            "{value:?} is not a DNS label: expected lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. \"my-app\")"
        ));
    }
    Ok(())
}

/// RFC 1123 subdomain: dot-separated DNS labels, at most 253 characters.
pub fn check_dns_subdomain(value: &str) -> Result<(), String> {
    if value.len() > DNS_SUBDOMAIN_MAX {
        return Err(format!("must be at most {DNS_SUBDOMAIN_MAX} characters"));
    }
    if value.split('.').all(|part| check_dns_label(part).is_ok()) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a DNS subdomain: expected dot-separated lowercase labels (e.g. \"example.com\")"))
    }
}

/// The name part of a qualified name or a label value: alphanumerics, '-', '_', '.',
/// starting and ending alphanumeric, at most 63 characters.
fn is_label_token(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= DNS_LABEL_MAX
        && bytes.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// A label or annotation key: an optional DNS-subdomain prefix and '/', then a name.
/// A key of a Secret's (or ConfigMap's) `data`, as Kubernetes checks it:
/// letters, digits, `-`, `_` and `.`, at most 253 characters, not `.` or `..`.
pub fn check_secret_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err(format!("secret key {key:?}: expected 1 to 253 characters"));
    }
    if key == "." || key == ".." {
        return Err(format!("secret key {key:?}: may not be '.' or '..'"));
    }
    if let Some(bad) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("secret key {key:?}: {bad:?} is not allowed; use letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|e| format!("prefix of key {key:?}: {e}"))?;
    }
    if is_label_token(name) {
        Ok(())
    } else {
        Err(format!(
            "key {key:?} is not a qualified name: expected [prefix/]name where name is at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_token(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is invalid: expected at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

/// Checks label keys and values, reporting each problem under `path`.
pub fn check_labels(labels: &BTreeMap<String, String>, path: &str, problems: &mut Vec<Problem>) {
    for (key, value) in labels {
        let entry = join_path(path, &format!("[{key:?}]"));
        if let Err(e) = check_qualified_name(key) {
            problems.push(Problem::new(&entry, e));
        }
        if let Err(e) = check_label_value(value) {
            problems.push(Problem::new(&entry, e));
        }
    }
}

/// Annotation keys follow the label-key rules; values are free text up to 256 KiB in total.
pub fn check_annotations(annotations: &BTreeMap<String, String>, path: &str, problems: &mut Vec<Problem>) {
    const MAX_TOTAL: usize = 256 * 1024;
    let mut total = 0;
    for (key, value) in annotations {
        total += key.len() + value.len();
        if let Err(e) = check_qualified_name(key) {
            problems.push(Problem::new(join_path(path, &format!("[{key:?}]")), e));
        }
    }
    if total > MAX_TOTAL {
        problems.push(Problem::new(path, format!("annotations may hold at most {MAX_TOTAL} bytes in total, got {total}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_follow_kubernetes_rules() {
        for good in ["DB_PASSWORD", "tls.crt", "a-b", "config.yaml", "_x"] {
            assert!(check_secret_key(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(254)] {
            assert!(check_secret_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert!(check_dns_label("web").is_ok());
        assert!(check_dns_label("a-1").is_ok());
        assert!(check_dns_label("Web").is_err());
        assert!(check_dns_label("-web").is_err());
        assert!(check_dns_label("web-").is_err());
        assert!(check_dns_label("my app").is_err());
        assert!(check_dns_label("a.b").is_err());
        assert!(check_dns_label(&"a".repeat(64)).is_err());
        assert!(check_dns_label("").is_err());
    }

    #[test]
    fn qualified_names_and_values() {
        assert!(check_qualified_name("app.kubernetes.io/name").is_ok());
        assert!(check_qualified_name("env").is_ok());
        assert!(check_qualified_name("Env_1.x").is_ok());
        assert!(check_qualified_name("Bad.Prefix/name").is_err());
        assert!(check_qualified_name("a/b/c").is_err());
        assert!(check_qualified_name("").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("eu-west_1.a").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value("-x").is_err());
    }
}
