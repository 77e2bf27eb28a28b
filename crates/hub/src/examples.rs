//! The example organization, embedded in the binary so `heimdall up` works
//! from any directory, and the reading of manifest files from disk.

use std::path::Path;

use include_dir::{Dir, include_dir};

use crate::HubError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples");

/// A folder with this file is a catalog location (Backstage entities, and
/// templates whose skeletons hold `${{ }}`), read by the catalog, never
/// applied as manifests.
pub const CATALOG_INFO: &str = "catalog-info.yaml";

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

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

/// `(origin, text)` of `path` if it is a file, or of every `.yaml`, `.yml` and
/// `.json` file below it (recursively, in path order) if it is a folder.
pub fn read_manifests(path: &Path) -> Result<Vec<(String, String)>, HubError> {
    let io = |source| HubError::Io { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if metadata.is_dir() {
        let mut pending = vec![path.to_path_buf()];
        while let Some(dir) = pending.pop() {
            if dir.join(CATALOG_INFO).is_file() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).map_err(|source| HubError::Io { path: dir.clone(), source })? {
                let entry = entry.map_err(|source| HubError::Io { path: dir.clone(), source })?;
                let entry_path = entry.path();
                if entry.file_type().map_err(|source| HubError::Io { path: entry_path.clone(), source })?.is_dir() {
                    pending.push(entry_path);
                } else if is_manifest(&entry_path) {
                    files.push(entry_path);
                }
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|source| HubError::Io { path: file.clone(), source })?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}
