//! Service repositories: the source repositories the scaffolder creates
//! (`publish:heimdall`), one bare repository per service under
//! `<root>/services/<tenant>/<name>.git`. Each is created whole, in one
//! commit, in a scratch folder that is renamed into place: a failed
//! creation leaves nothing behind, and two creations of one name cannot
//! both succeed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Repository};

use crate::{BRANCH, Change, GitopsError, check_segment, commit};

/// At most this many files in a new repository.
pub const MAX_FILES: usize = 2000;

#[derive(Debug)]
pub struct ServiceRepositories {
    root: PathBuf,
}

/// A path inside a repository: relative, `/`-separated, no `.`/`..`, never `.git`.
fn check_file_path(path: &str) -> Result<(), GitopsError> {
    let invalid = |reason: &str| GitopsError::InvalidPath { path: path.to_string(), reason: reason.to_string() };
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
        return Err(invalid("expected a relative file path"));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(invalid("a path has no empty, '.' or '..' parts"));
        }
        if part.eq_ignore_ascii_case(".git") || part.contains('\0') {
            return Err(invalid("a path never names .git"));
        }
    }
    Ok(())
}

impl ServiceRepositories {
    /// Repositories under `root` (the hub keeps them in `DATA_DIR/git`).
    pub fn new(root: impl Into<PathBuf>) -> ServiceRepositories {
        ServiceRepositories { root: root.into() }
    }

    /// Where `<tenant>/<name>` lives; both are checked path segments without dots.
    pub fn path(&self, tenant: &str, name: &str) -> Result<PathBuf, GitopsError> {
        for segment in [tenant, name] {
            check_segment(segment, &format!("{tenant}/{name}"))?;
            if segment.contains('.') {
                return Err(GitopsError::InvalidPath { path: format!("{tenant}/{name}"), reason: "no dots in a repository name".into() });
            }
        }
        Ok(self.root.join("services").join(tenant).join(format!("{name}.git")))
    }

    pub fn exists(&self, tenant: &str, name: &str) -> bool {
        self.path(tenant, name).is_ok_and(|p| p.join("HEAD").exists())
    }

    /// Creates `<tenant>/<name>` holding `files` in one commit on `main`;
    /// refuses if it exists. Returns the commit.
    pub fn create(&self, tenant: &str, name: &str, files: &BTreeMap<String, Vec<u8>>, change: &Change) -> Result<String, GitopsError> {
        let path = self.path(tenant, name)?;
        if files.is_empty() {
            return Err(GitopsError::InvalidPath {
                path: format!("{tenant}/{name}"),
                reason: "a new repository needs at least one file".into(),
            });
        }
        if files.len() > MAX_FILES {
            return Err(GitopsError::InvalidPath {
                path: format!("{tenant}/{name}"),
                reason: format!("{} files; a new repository holds at most {MAX_FILES}", files.len()),
            });
        }
        for file in files.keys() {
            check_file_path(file)?;
        }
        if path.exists() {
            return Err(GitopsError::Exists { repository: format!("{tenant}/{name}") });
        }
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|source| GitopsError::Io { path: parent.clone(), source })?;
        let scratch = tempfile_dir(&parent, name)?;
        let result = (|| {
            let repo = Repository::init_opts(&scratch, git2::RepositoryInitOptions::new().bare(true).initial_head("main"))?;
            let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
            let mut update = TreeUpdateBuilder::new();
            for (file, content) in files {
                update.upsert(file.as_str(), repo.blob(content)?, FileMode::Blob);
            }
            let tree = repo.find_tree(update.create_updated(&repo, &empty)?)?;
            Ok::<_, GitopsError>(commit(&repo, &tree, None, change)?.to_string())
        })();
        let id = match result {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        // rename(2) onto an existing non-empty folder fails: the first creator wins.
        if let Err(source) = std::fs::rename(&scratch, &path) {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(if path.exists() {
                GitopsError::Exists { repository: format!("{tenant}/{name}") }
            } else {
                GitopsError::Io { path, source }
            });
        }
        Ok(id)
    }

    /// Deletes `<tenant>/<name>` (a task that created it failed later): moved
    /// aside first, so a reader never sees half a repository.
    pub fn remove(&self, tenant: &str, name: &str) -> Result<(), GitopsError> {
        let path = self.path(tenant, name)?;
        if !path.exists() {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        let aside = parent.join(format!(".{name}.removing-{}", std::process::id()));
        std::fs::rename(&path, &aside).map_err(|source| GitopsError::Io { path: path.clone(), source })?;
        std::fs::remove_dir_all(&aside).map_err(|source| GitopsError::Io { path: aside, source })
    }

    /// A file of `main`, if the repository and the file exist.
    pub fn read_file(&self, tenant: &str, name: &str, file: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        check_file_path(file)?;
        let path = self.path(tenant, name)?;
        if !path.join("HEAD").exists() {
            return Ok(None);
        }
        let repo = Repository::open_bare(&path)?;
        let Ok(head) = repo.refname_to_id(BRANCH) else { return Ok(None) };
        let tree = repo.find_commit(head)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(file)) else { return Ok(None) };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        Ok(Some(repo.find_blob(entry.id())?.content().to_vec()))
    }
}

fn tempfile_dir(parent: &Path, name: &str) -> Result<PathBuf, GitopsError> {
    for n in 0..1000u32 {
        let candidate = parent.join(format!(".{name}.creating-{}-{n}", std::process::id()));
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(GitopsError::Io { path: candidate, source }),
        }
    }
    Err(GitopsError::Io { path: parent.to_path_buf(), source: std::io::Error::other("no free scratch folder name") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Author;

    fn change() -> Change {
        Change {
            author: Author { name: "alice".into(), email: "alice@example.com".into() },
            message: "create cart".into(),
            trailers: vec![],
        }
    }

    #[test]
    fn a_repository_is_created_whole_once_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = ServiceRepositories::new(dir.path());
        let files = BTreeMap::from([
            ("catalog-info.yaml".to_string(), b"kind: Component\n".to_vec()),
            ("src/index.js".to_string(), b"console.log(1)\n".to_vec()),
        ]);
        let id = repos.create("shop", "cart", &files, &change()).expect("create");
        assert_eq!(id.len(), 40);
        assert!(repos.exists("shop", "cart"));
        assert_eq!(repos.read_file("shop", "cart", "src/index.js").expect("read"), Some(b"console.log(1)\n".to_vec()));
        assert_eq!(repos.read_file("shop", "cart", "src").expect("a folder is not a file"), None);
        assert_eq!(repos.read_file("shop", "nope", "x").expect("missing repository"), None);
        let again = repos.create("shop", "cart", &files, &change()).expect_err("exists");
        assert!(matches!(again, GitopsError::Exists { .. }), "{again}");
        // Nothing but the repository is left in the tenant's folder.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("services/shop")).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("cart.git")]);
        repos.remove("shop", "cart").expect("remove");
        assert!(!repos.exists("shop", "cart"));
        assert!(std::fs::read_dir(dir.path().join("services/shop")).expect("ls").next().is_none(), "nothing left");
    }

    #[test]
    fn bad_names_and_paths_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = ServiceRepositories::new(dir.path());
        for (tenant, name) in [("shop", "../x"), ("Shop", "cart"), ("shop", "a.b"), ("", "cart")] {
            assert!(repos.path(tenant, name).is_err(), "{tenant}/{name}");
        }
        for file in ["../escape", "/abs", "a/.git/config", "a//b", "dir/"] {
            let files = BTreeMap::from([(file.to_string(), b"x".to_vec())]);
            assert!(repos.create("shop", "cart", &files, &change()).is_err(), "{file}");
        }
        assert!(repos.create("shop", "cart", &BTreeMap::new(), &change()).is_err(), "empty");
        assert!(
            !dir.path().join("services/shop").exists() || std::fs::read_dir(dir.path().join("services/shop")).expect("ls").next().is_none()
        );
    }
}
