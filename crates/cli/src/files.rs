//! Manifest files on disk, as `heimdall apply -f`, `heimdall render` and
//! `heimdall up --examples` read them.

use std::path::{Path, PathBuf};

use heimdall_model::Document;
use heimdall_model::manifests::{CATALOG_INFO, is_manifest};
use heimdall_model::parse_documents;

#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// `(origin, text)` of `path` if it is a file, or of every `.yaml`, `.yml` and
/// `.json` file below it (recursively, in path order) if it is a folder.
pub fn read_manifests(path: &Path) -> Result<Vec<(String, String)>, FileError> {
    let io = |source| FileError { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if metadata.is_dir() {
        let mut pending = vec![path.to_path_buf()];
        while let Some(dir) = pending.pop() {
            if dir.join(CATALOG_INFO).is_file() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).map_err(|source| FileError { path: dir.clone(), source })? {
                let entry = entry.map_err(|source| FileError { path: dir.clone(), source })?;
                let entry_path = entry.path();
                if entry.file_type().map_err(|source| FileError { path: entry_path.clone(), source })?.is_dir() {
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
            let text = std::fs::read_to_string(&file).map_err(|source| FileError { path: file.clone(), source })?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}

/// Documents of every file, with Score file sources read next to their file.
pub fn read_with_sources(files: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut documents = Vec::new();
    for file in files {
        for (origin, text) in read_manifests(file)? {
            let folder = Path::new(&origin).parent().map(Path::to_path_buf).unwrap_or_default();
            for mut document in parse_documents(&text, &origin).map_err(|e| anyhow::anyhow!("{e}"))? {
                if document.value.get("apiVersion").and_then(|v| v.as_str()) == Some(heimdall_model::spec::score::API_VERSION) {
                    heimdall_model::spec::score::inline_file_sources(&mut document.value, |source| {
                        std::fs::read_to_string(folder.join(source)).map_err(|e| e.to_string())
                    })
                    .map_err(|p| anyhow::anyhow!("{}: {p}", document.source))?;
                }
                documents.push(document);
            }
        }
    }
    Ok(documents)
}
