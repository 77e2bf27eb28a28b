//! Helpers shared by the render tests.

use heimdall_model::{Resource, decode, parse_documents};

/// The resources of a multi-document YAML text (namespace `default` when none is given).
pub fn resources(yaml: &str) -> Vec<Resource> {
    parse_documents(yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|d| decode(&d.value, "test.yaml", "default").unwrap_or_else(|e| panic!("{e}")).resource)
        .collect()
}
