//! Entity references, `[kind:][namespace/]name`, as Backstage writes them
//! (`component:default/petstore`, `team-c`, `group:infra/ops`). The kind
//! and namespace fall back to what the field implies (an `owner` is a
//! Group by default) and to the referring entity's namespace.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEFAULT_NAMESPACE: &str = "default";

/// A reference to one entity. Kind, namespace and name compare
/// case-insensitively in Backstage, so they are kept lowercase here and the
/// display form is the one Backstage's `stringifyEntityRef` gives relations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl EntityRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> EntityRef {
        EntityRef { kind: kind.to_ascii_lowercase(), namespace: namespace.to_ascii_lowercase(), name: name.to_ascii_lowercase() }
    }

    /// Parses `text`. `default_kind` applies when the text names none (and
    /// is required then); `default_namespace` when it names no namespace.
    pub fn parse(text: &str, default_kind: Option<&str>, default_namespace: &str) -> Result<EntityRef, String> {
        let text = text.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (Some(kind), rest),
            None => (None, text),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, rest),
        };
        let kind = match kind.or(default_kind) {
            Some(kind) if !kind.is_empty() => kind,
            _ => return Err(format!("{text:?} names no kind: expected kind:[namespace/]name")),
        };
        let namespace = namespace.unwrap_or(default_namespace);
        if namespace.is_empty() || name.is_empty() || name.contains(['/', ':']) {
            return Err(format!("{text:?} is not an entity reference: expected [kind:][namespace/]name"));
        }
        Ok(EntityRef::new(kind, namespace, name))
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_text_leaves_out() {
        assert_eq!(EntityRef::parse("team-c", Some("Group"), "default").map(|r| r.to_string()), Ok("group:default/team-c".into()));
        assert_eq!(EntityRef::parse("user:guest", Some("group"), "acme").map(|r| r.to_string()), Ok("user:acme/guest".into()));
        assert_eq!(
            EntityRef::parse("Component:Infra/Petstore", None, "default").map(|r| r.to_string()),
            Ok("component:infra/petstore".into())
        );
        assert_eq!(EntityRef::parse("backstage/maintainers", Some("group"), "default").map(|r| r.namespace), Ok("backstage".into()));
    }

    #[test]
    fn malformed_references_say_what_was_expected() {
        assert!(EntityRef::parse("petstore", None, "default").expect_err("no kind").contains("names no kind"));
        assert!(EntityRef::parse("component:a/b/c", None, "default").is_err());
        assert!(EntityRef::parse("component:/x", None, "default").is_err());
        assert!(EntityRef::parse("", Some("group"), "default").is_err());
    }
}
