//! The example organization, embedded in the binary so `heimdall up` works
//! from any directory, and the reading of manifest files from disk.

use std::path::Path;

use include_dir::{Dir, include_dir};

use crate::HubError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples");

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// `(origin, text)` of every manifest file of the embedded examples, in path order.
pub fn embedded() -> Vec<(String, String)> {
    fn walk(dir: &Dir<'static>, out: &mut Vec<(String, String)>) {
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

/// `(origin, text)` of `path` if it is a file, or of every `.yaml`, `.yml` and
/// `.json` file below it (recursively, in path order) if it is a folder.
pub fn read_manifests(path: &Path) -> Result<Vec<(String, String)>, HubError> {
    let io = |source| HubError::Io { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if metadata.is_dir() {
        let mut pending = vec![path.to_path_buf()];
        while let Some(dir) = pending.pop() {
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
