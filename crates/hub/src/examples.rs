//! The example organization, embedded in the binary so `heimdall up` works
//! from any directory, and the catalog folders among examples on disk.
//! Manifest files on disk are read by the caller (`heimdall_cli::files`).

use std::path::Path;

use include_dir::{Dir, include_dir};

use crate::HubError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples");

pub use heimdall_model::manifests::CATALOG_INFO;
use heimdall_model::manifests::is_manifest;

/// `(origin, text)` of every manifest file of the embedded examples, in path order.
pub fn embedded() -> Vec<(String, String)> {
    fn walk(dir: &Dir<'static>, out: &mut Vec<(String, String)>) {
        if dir.get_file(dir.path().join(CATALOG_INFO)).is_some() {
            return;
        }
        for file in dir.files() {
            if is_manifest(file.path())
                && let Some(text) = file.contents_utf8()
            {
                out.push((format!("examples/{}", file.path().display()), text.to_string()));
            }
        }
        for sub in dir.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&EMBEDDED, &mut out);
    out.sort();
    out
}

/// Writes every catalog folder of the embedded examples under `target`
/// (as `target/<path in examples>`) and returns their catalog-info files,
/// for the hub to register as locations.
pub fn write_embedded_catalogs(target: &Path) -> Result<Vec<std::path::PathBuf>, HubError> {
    fn walk(dir: &Dir<'static>, target: &Path, found: &mut Vec<std::path::PathBuf>, inside: bool) -> Result<(), HubError> {
        let inside = inside || dir.get_file(dir.path().join(CATALOG_INFO)).is_some();
        if inside {
            let folder = target.join(dir.path());
            std::fs::create_dir_all(&folder).map_err(|source| HubError::Io { path: folder.clone(), source })?;
            for file in dir.files() {
                let path = target.join(file.path());
                std::fs::write(&path, file.contents()).map_err(|source| HubError::Io { path: path.clone(), source })?;
                if file.path().file_name().is_some_and(|n| n == CATALOG_INFO) && file.path().parent() == Some(dir.path()) {
                    found.push(path);
                }
            }
        }
        for sub in dir.dirs() {
            walk(sub, target, found, inside)?;
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(&EMBEDDED, target, &mut found, false)?;
    // Only the outermost catalog-info of a tree is a root; inner ones are reached through its Location.
    found.sort();
    let roots: Vec<std::path::PathBuf> = found
        .iter()
        .filter(|path| {
            !found.iter().any(|other| other != *path && path.parent().is_some_and(|p| other.parent().is_some_and(|o| p.starts_with(o))))
        })
        .cloned()
        .collect();
    Ok(roots)
}

/// The outermost catalog-info files below `path` (folders the manifest reader skips).
pub fn catalog_roots(path: &Path) -> Vec<std::path::PathBuf> {
    let mut roots = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let info = dir.join(CATALOG_INFO);
        if info.is_file() {
            roots.push(info);
            continue;
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    roots.sort();
    roots
}
