//! Which files are manifests: the one rule `heimdall apply -f DIR`, `heimdall
//! render` and the hub's embedded examples share (reading them is the
//! caller's: the model does no IO).

use std::path::Path;

/// A folder with this file is a catalog location (Backstage entities, and
/// templates whose skeletons hold `${{ }}`), read by the catalog, never
/// applied as manifests.
pub const CATALOG_INFO: &str = "catalog-info.yaml";

/// YAML and JSON files are manifests.
pub fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_files_are_manifests_and_nothing_else() {
        for yes in ["a.yaml", "dir/b.yml", "c.json"] {
            assert!(is_manifest(Path::new(yes)), "{yes}");
        }
        for no in ["README.md", "yaml", "a.yaml.bak", "Dockerfile"] {
            assert!(!is_manifest(Path::new(no)), "{no}");
        }
    }
}
