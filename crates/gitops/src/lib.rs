//! The repositories the hub owns: one bare git repository per cluster under
//! `<root>/clusters/<cluster>.git`, holding that cluster's desired state as
//! `<namespace>/<folder>/<kind>-<name>.yaml` with a `kustomization.yaml` in
//! every folder, so `kubectl kustomize`, Argo CD and Flux read it unchanged.
//!
//! Changes arrive as folder updates and become one commit. Only the trees on
//! the path to a changed folder are rewritten (git's own incremental tree
//! update), so a commit costs the same in a repository of ten applications
//! as in one of ten thousand. Writers of one repository are serialized in
//! this process, and the branch moves by compare-and-swap, so writers in
//! another process never lose each other's commits either.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Signature, Tree};

pub mod services;
pub use services::ServiceRepositories;

/// The branch every repository publishes.
pub const BRANCH: &str = "refs/heads/main";
const KUSTOMIZATION: &str = "kustomization.yaml";

#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("repository of cluster {cluster} is missing")]
    Missing { cluster: String },
    #[error("repository of cluster {cluster} is unusable: {message}")]
    Corrupt { cluster: String, message: String },
    #[error("unknown revision {revision:?} in the repository of cluster {cluster}")]
    UnknownRevision { cluster: String, revision: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("repository {repository} already exists")]
    Exists { repository: String },
}

/// Replaces a folder's files (in apply order), or removes the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderUpdate {
    /// `<namespace>/<folder>`.
    pub folder: String,
    /// `(file name, content)`; `None` removes the folder.
    pub files: Option<Vec<(String, Vec<u8>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub author: Author,
    /// The first line says what changed and by whom.
    pub message: String,
    /// `Key: value` lines at the end of the message (audit event id, resource versions).
    pub trailers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub author: Author,
    pub summary: String,
    pub trailers: Vec<(String, String)>,
}

impl CommitInfo {
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A name that becomes one path segment: lowercase letters, digits, `-` and
/// `.`, starting with a letter or digit. Never `..`, never a `/`.
fn check_segment(segment: &str, whole: &str) -> Result<(), GitopsError> {
    let valid = !segment.is_empty()
        && segment.len() <= 253
        && segment.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && segment.as_bytes()[0].is_ascii_alphanumeric()
        && !segment.contains("..");
    if valid {
        Ok(())
    } else {
        Err(GitopsError::InvalidPath {
            path: whole.to_string(),
            reason: format!("{segment:?} must be lowercase letters, digits, '-' or '.', starting with a letter or digit"),
        })
    }
}

fn check_folder(folder: &str) -> Result<(&str, &str), GitopsError> {
    let (namespace, name) = folder
        .split_once('/')
        .ok_or_else(|| GitopsError::InvalidPath { path: folder.to_string(), reason: "expected <namespace>/<folder>".into() })?;
    check_segment(namespace, folder)?;
    check_segment(name, folder)?;
    Ok((namespace, name))
}

fn check_file(name: &str, folder: &str) -> Result<(), GitopsError> {
    check_segment(name, &format!("{folder}/{name}"))?;
    if !name.ends_with(".yaml") || name == KUSTOMIZATION {
        return Err(GitopsError::InvalidPath {
            path: format!("{folder}/{name}"),
            reason: "expected a .yaml file other than kustomization.yaml".into(),
        });
    }
    Ok(())
}

fn kustomization(resources: &[String]) -> Vec<u8> {
    let mut out = String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    if resources.is_empty() {
        out.push_str("resources: []\n");
    } else {
        out.push_str("resources:\n");
        for resource in resources {
            out.push_str(&format!("- {resource}\n"));
        }
    }
    out.into_bytes()
}

/// Names of the sub-trees of `path` in `tree` (`""` for the root).
fn subtrees(repo: &Repository, tree: &Tree, path: &str) -> Result<BTreeSet<String>, GitopsError> {
    let tree = if path.is_empty() {
        tree.clone()
    } else {
        match tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => repo.find_tree(entry.id())?,
            _ => return Ok(BTreeSet::new()),
        }
    };
    Ok(tree.iter().filter(|e| e.kind() == Some(ObjectType::Tree)).filter_map(|e| e.name().map(String::from)).collect())
}

pub struct Repositories {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Each repository's folders at a commit: what the writes of this
    /// process keep current, so asking which folders exist reads no tree.
    /// Keyed by the branch's commit, so a commit of another process (or a
    /// rebuild) is never answered from an old list.
    folder_index: Mutex<FolderIndex>,
}

/// Per repository: the commit and the folders of its tree.
type FolderIndex = HashMap<String, (Oid, Arc<FolderSet>)>;

/// The folders of one commit of a repository, by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderSet {
    by_namespace: BTreeMap<String, BTreeSet<String>>,
}

impl FolderSet {
    /// The namespaces that hold at least one folder.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// Whether `<namespace>/<folder>` is one.
    pub fn contains(&self, folder: &str) -> bool {
        folder.split_once('/').is_some_and(|(namespace, name)| self.by_namespace.get(namespace).is_some_and(|names| names.contains(name)))
    }

    /// Every `<namespace>/<folder>`.
    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        self.by_namespace.iter().flat_map(|(namespace, names)| names.iter().map(move |name| format!("{namespace}/{name}")))
    }

    pub fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }

    fn insert(&mut self, folder: &str) {
        if let Some((namespace, name)) = folder.split_once('/') {
            self.by_namespace.entry(namespace.to_string()).or_default().insert(name.to_string());
        }
    }

    fn remove(&mut self, folder: &str) {
        if let Some((namespace, name)) = folder.split_once('/')
            && let Some(names) = self.by_namespace.get_mut(namespace)
        {
            names.remove(name);
            if names.is_empty() {
                self.by_namespace.remove(namespace);
            }
        }
    }
}

impl std::fmt::Debug for Repositories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repositories").field("root", &self.root).finish()
    }
}

fn committer() -> Result<Signature<'static>, git2::Error> {
    Signature::now("Heimdall", "heimdall@localhost")
}

/// How often a commit waits for another process's lock on the branch (about
/// 2 s in all) before it fails: a lock held longer is a crashed writer's.
const MAX_LOCKED_WAITS: u64 = 250;

impl Repositories {
    /// Repositories under `root` (the hub keeps them in `DATA_DIR/git`).
    pub fn new(root: impl Into<PathBuf>) -> Repositories {
        Repositories { root: root.into(), locks: Mutex::new(HashMap::new()), folder_index: Mutex::new(HashMap::new()) }
    }

    /// Where cluster `cluster`'s repository lives; the name is checked so it
    /// can never point outside the root.
    pub fn path(&self, cluster: &str) -> Result<PathBuf, GitopsError> {
        check_segment(cluster, cluster)?;
        if cluster.contains('.') {
            return Err(GitopsError::InvalidPath { path: cluster.into(), reason: "a cluster name has no dots".into() });
        }
        Ok(self.root.join("clusters").join(format!("{cluster}.git")))
    }

    pub fn exists(&self, cluster: &str) -> bool {
        self.path(cluster).is_ok_and(|p| p.join("HEAD").exists())
    }

    /// Clusters with a repository on disk.
    pub fn clusters(&self) -> Vec<String> {
        let mut clusters: Vec<String> = std::fs::read_dir(self.root.join("clusters"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".git").map(String::from))
            .collect();
        clusters.sort();
        clusters
    }

    fn lock(&self, cluster: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock();
        locks.entry(cluster.to_string()).or_default().clone()
    }

    fn open(&self, cluster: &str) -> Result<Repository, GitopsError> {
        let path = self.path(cluster)?;
        if !path.join("HEAD").exists() {
            return Err(GitopsError::Missing { cluster: cluster.into() });
        }
        Repository::open_bare(&path).map_err(|e| GitopsError::Corrupt { cluster: cluster.into(), message: e.message().to_string() })
    }

    /// Creates the repository with an empty, valid kustomization if it does
    /// not exist. Returns whether it was created.
    pub fn ensure(&self, cluster: &str, change: &Change) -> Result<bool, GitopsError> {
        let path = self.path(cluster)?;
        let lock = self.lock(cluster);
        let _guard = lock.lock();
        if path.join("HEAD").exists() {
            return Ok(false);
        }
        std::fs::create_dir_all(&path).map_err(|source| GitopsError::Io { path: path.clone(), source })?;
        let repo = Repository::init_opts(&path, git2::RepositoryInitOptions::new().bare(true).initial_head("main"))?;
        let blob = repo.blob(&kustomization(&[]))?;
        let mut builder = repo.treebuilder(None)?;
        builder.insert(KUSTOMIZATION, blob, FileMode::Blob.into())?;
        let tree = repo.find_tree(builder.write()?)?;
        commit(&repo, &tree, None, change)?;
        Ok(true)
    }

    /// The current commit of the branch, if any.
    pub fn head(&self, cluster: &str) -> Result<Option<String>, GitopsError> {
        let repo = self.open(cluster)?;
        Ok(repo.refname_to_id(BRANCH).ok().map(|id| id.to_string()))
    }

    /// Checks that the repository opens and its branch points at a readable commit and tree.
    pub fn verify(&self, cluster: &str) -> Result<(), GitopsError> {
        let repo = self.open(cluster)?;
        let corrupt = |message: String| GitopsError::Corrupt { cluster: cluster.into(), message };
        let id = repo.refname_to_id(BRANCH).map_err(|e| corrupt(format!("branch main: {}", e.message())))?;
        let commit = repo.find_commit(id).map_err(|e| corrupt(format!("commit {id}: {}", e.message())))?;
        commit.tree().map_err(|e| corrupt(format!("tree of {id}: {}", e.message())))?;
        Ok(())
    }

    /// Moves a broken repository aside (`<cluster>.git.broken-<n>`) so it can be rebuilt.
    pub fn set_aside(&self, cluster: &str) -> Result<Option<PathBuf>, GitopsError> {
        let path = self.path(cluster)?;
        if !path.exists() {
            return Ok(None);
        }
        let lock = self.lock(cluster);
        let _guard = lock.lock();
        let mut n = 1;
        let aside = loop {
            let candidate = path.with_extension(format!("git.broken-{n}"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(&path, &aside).map_err(|source| GitopsError::Io { path: path.clone(), source })?;
        self.folder_index.lock().remove(cluster);
        Ok(Some(aside))
    }

    /// The namespaces of the current tree that hold at least one folder.
    pub fn namespaces(&self, cluster: &str) -> Result<BTreeSet<String>, GitopsError> {
        Ok(self.folder_set(cluster)?.namespaces().map(String::from).collect())
    }

    /// Which of `candidates` (`<namespace>/<folder>`) are folders of the
    /// current tree: looked up in the folder index, which this process's
    /// commits keep current, so a change reads no tree to know what exists.
    pub fn existing_folders(&self, cluster: &str, candidates: impl IntoIterator<Item = String>) -> Result<BTreeSet<String>, GitopsError> {
        let folders = self.folder_set(cluster)?;
        Ok(candidates.into_iter().filter(|candidate| folders.contains(candidate)).collect())
    }

    /// Every `<namespace>/<folder>` in the current tree.
    pub fn folders(&self, cluster: &str) -> Result<BTreeSet<String>, GitopsError> {
        Ok(self.folder_set(cluster)?.iter().collect())
    }

    /// The folders of the branch's commit, by namespace: from the index when
    /// it is of that commit, else read from the tree once and indexed. One
    /// snapshot: what a caller asks of it is of one commit.
    pub fn folder_set(&self, cluster: &str) -> Result<Arc<FolderSet>, GitopsError> {
        let repo = self.open(cluster)?;
        let Ok(id) = repo.refname_to_id(BRANCH) else {
            return Ok(Arc::new(FolderSet::default()));
        };
        if let Some((at, folders)) = self.folder_index.lock().get(cluster)
            && *at == id
        {
            return Ok(folders.clone());
        }
        let tree = repo.find_commit(id)?.tree()?;
        let mut folders = FolderSet::default();
        for namespace in subtrees(&repo, &tree, "")? {
            let names = subtrees(&repo, &tree, &namespace)?;
            if !names.is_empty() {
                folders.by_namespace.insert(namespace, names);
            }
        }
        let folders = Arc::new(folders);
        self.folder_index.lock().insert(cluster.to_string(), (id, folders.clone()));
        Ok(folders)
    }

    /// After this process committed `updates` on `parent`: the index follows, if it was of `parent`.
    fn index_commit(&self, cluster: &str, parent: Option<Oid>, commit: Oid, updates: &[FolderUpdate]) {
        let mut index = self.folder_index.lock();
        let Some((at, folders)) = index.get_mut(cluster) else { return };
        if Some(*at) != parent {
            index.remove(cluster);
            return;
        }
        let folders = Arc::make_mut(folders);
        for update in updates {
            if update.files.is_some() {
                folders.insert(&update.folder);
            } else {
                folders.remove(&update.folder);
            }
        }
        *at = commit;
    }

    /// Applies `updates` as one commit; `None` if the tree did not change.
    pub fn apply(&self, cluster: &str, updates: &[FolderUpdate], change: &Change) -> Result<Option<String>, GitopsError> {
        for update in updates {
            check_folder(&update.folder)?;
            for (name, _) in update.files.iter().flatten() {
                check_file(name, &update.folder)?;
            }
        }
        let lock = self.lock(cluster);
        let _guard = lock.lock();
        let repo = self.open(cluster)?;
        // Another process may move the branch between our read and our write;
        // the compare-and-swap then fails and we start again from its commit.
        // While it swaps, it holds the branch's lock file: we wait a moment.
        let mut waits = 0u64;
        loop {
            let parent = repo.refname_to_id(BRANCH).ok();
            let base = match parent {
                Some(id) => repo.find_commit(id)?.tree()?,
                None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
            };
            let tree_id = updated_tree(&repo, &base, updates)?;
            if tree_id == base.id() {
                return Ok(None);
            }
            let tree = repo.find_tree(tree_id)?;
            match commit(&repo, &tree, parent, change) {
                Ok(id) => {
                    self.index_commit(cluster, parent, id, updates);
                    return Ok(Some(id.to_string()));
                }
                Err(e) if e.code() == git2::ErrorCode::Modified || e.code() == git2::ErrorCode::Exists => continue,
                Err(e) if e.code() == git2::ErrorCode::Locked && waits < MAX_LOCKED_WAITS => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(waits.min(10)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Commits that changed any of `folders`, newest first.
    pub fn history(&self, cluster: &str, folders: &[String], limit: usize) -> Result<Vec<CommitInfo>, GitopsError> {
        let repo = self.open(cluster)?;
        let Ok(head) = repo.refname_to_id(BRANCH) else {
            return Ok(Vec::new());
        };
        let mut walk = repo.revwalk()?;
        walk.push(head)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        let entry_id = |tree: &Tree, folder: &str| tree.get_path(Path::new(folder)).ok().map(|e| e.id());
        let mut out = Vec::new();
        for id in walk {
            let commit = repo.find_commit(id?)?;
            let tree = commit.tree()?;
            let parent_tree = commit.parents().next().map(|p| p.tree()).transpose()?;
            let touched = folders.iter().any(|folder| entry_id(&tree, folder) != parent_tree.as_ref().and_then(|t| entry_id(t, folder)));
            if touched {
                out.push(info(&commit));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Resolves a commit id (or a unique prefix) of this repository.
    pub fn resolve(&self, cluster: &str, revision: &str) -> Result<String, GitopsError> {
        let repo = self.open(cluster)?;
        let unknown = || GitopsError::UnknownRevision { cluster: cluster.into(), revision: revision.into() };
        let object = repo.revparse_single(revision).map_err(|_| unknown())?;
        Ok(object.peel_to_commit().map_err(|_| unknown())?.id().to_string())
    }

    /// The files of `folder` at `commit`, by name.
    pub fn files_at(&self, cluster: &str, commit: &str, folder: &str) -> Result<BTreeMap<String, String>, GitopsError> {
        let repo = self.open(cluster)?;
        let id = Oid::from_str(commit).map_err(|_| GitopsError::UnknownRevision { cluster: cluster.into(), revision: commit.into() })?;
        let tree = repo.find_commit(id)?.tree()?;
        let mut files = BTreeMap::new();
        if let Ok(entry) = tree.get_path(Path::new(folder))
            && entry.kind() == Some(ObjectType::Tree)
        {
            for file in repo.find_tree(entry.id())?.iter() {
                if let (Some(name), Ok(blob)) = (file.name(), repo.find_blob(file.id())) {
                    files.insert(name.to_string(), String::from_utf8_lossy(blob.content()).into_owned());
                }
            }
        }
        Ok(files)
    }

    /// The files of the whole repository at `commit` (`since: None`), or
    /// only those that changed since `since` and the paths removed since.
    /// This is what an agent fetches: the cost follows the change, not the repository.
    pub fn changes(&self, cluster: &str, commit: &str, since: Option<&str>) -> Result<TreeChanges, GitopsError> {
        let repo = self.open(cluster)?;
        let find = |revision: &str| -> Result<Tree<'_>, GitopsError> {
            let unknown = || GitopsError::UnknownRevision { cluster: cluster.into(), revision: revision.into() };
            let id = Oid::from_str(revision).map_err(|_| unknown())?;
            Ok(repo.find_commit(id).map_err(|_| unknown())?.tree()?)
        };
        let new = find(commit)?;
        let old = since.map(find).transpose()?;
        let mut changes = TreeChanges::default();
        let diff = repo.diff_tree_to_tree(old.as_ref(), Some(&new), None)?;
        for delta in diff.deltas() {
            let new_file = delta.new_file();
            let path = |file: &git2::DiffFile<'_>| file.path().map(|p| p.to_string_lossy().into_owned());
            if delta.status() == git2::Delta::Deleted {
                changes.removed.extend(path(&delta.old_file()));
                continue;
            }
            if let (Some(path), Ok(blob)) = (path(&new_file), repo.find_blob(new_file.id())) {
                changes.files.insert(path, String::from_utf8_lossy(blob.content()).into_owned());
            }
        }
        Ok(changes)
    }

    /// A unified diff of `folder` between two commits (`None`: an empty folder).
    pub fn diff_folder(&self, cluster: &str, from: Option<&str>, to: Option<&str>, folder: &str) -> Result<String, GitopsError> {
        let before = match from {
            Some(commit) => self.files_at(cluster, commit, folder)?,
            None => BTreeMap::new(),
        };
        let after = match to {
            Some(commit) => self.files_at(cluster, commit, folder)?,
            None => BTreeMap::new(),
        };
        let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut out = String::new();
        for name in names {
            let (old, new) = (before.get(name), after.get(name));
            if old == new {
                continue;
            }
            let path = format!("{folder}/{name}");
            let mut patch = git2::Patch::from_buffers(
                old.map(String::as_bytes).unwrap_or_default(),
                old.map(|_| Path::new(&path)),
                new.map(String::as_bytes).unwrap_or_default(),
                new.map(|_| Path::new(&path)),
                None,
            )?;
            out.push_str(&String::from_utf8_lossy(&patch.to_buf()?));
        }
        Ok(out)
    }

    /// The commits of the branch, newest first, with their trailers.
    pub fn log(&self, cluster: &str, limit: usize) -> Result<Vec<CommitInfo>, GitopsError> {
        let repo = self.open(cluster)?;
        let Ok(head) = repo.refname_to_id(BRANCH) else {
            return Ok(Vec::new());
        };
        let mut walk = repo.revwalk()?;
        walk.push(head)?;
        let mut out = Vec::new();
        for id in walk.take(limit) {
            out.push(info(&repo.find_commit(id?)?));
        }
        Ok(out)
    }
}

fn updated_tree(repo: &Repository, base: &Tree, updates: &[FolderUpdate]) -> Result<Oid, GitopsError> {
    let mut builder = TreeUpdateBuilder::new();
    let mut namespaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut touched_namespaces = BTreeSet::new();
    for update in updates {
        let (namespace, name) = check_folder(&update.folder)?;
        let folders = match namespaces.entry(namespace.to_string()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(subtrees(repo, base, namespace)?),
        };
        touched_namespaces.insert(namespace.to_string());
        let existing = files_of(repo, base, &update.folder)?;
        match &update.files {
            Some(files) => {
                // The folder is rebuilt whole: a file the update no longer has goes.
                for old in existing.iter().filter(|old| old.as_str() != KUSTOMIZATION && !files.iter().any(|(name, _)| name == *old)) {
                    builder.remove(format!("{}/{old}", update.folder));
                }
                let mut names = Vec::new();
                for (file, content) in files {
                    builder.upsert(format!("{}/{file}", update.folder), repo.blob(content)?, FileMode::Blob);
                    names.push(file.clone());
                }
                builder.upsert(format!("{}/{KUSTOMIZATION}", update.folder), repo.blob(&kustomization(&names))?, FileMode::Blob);
                folders.insert(name.to_string());
            }
            None => {
                if !existing.is_empty() {
                    builder.remove(&update.folder);
                }
                folders.remove(name);
            }
        }
    }
    let mut root_namespaces = subtrees(repo, base, "")?;
    for namespace in touched_namespaces {
        let folders = &namespaces[&namespace];
        if folders.is_empty() {
            if root_namespaces.contains(&namespace) {
                builder.remove(&namespace);
            }
            root_namespaces.remove(&namespace);
        } else {
            let list: Vec<String> = folders.iter().cloned().collect();
            builder.upsert(format!("{namespace}/{KUSTOMIZATION}"), repo.blob(&kustomization(&list))?, FileMode::Blob);
            root_namespaces.insert(namespace);
        }
    }
    let list: Vec<String> = root_namespaces.into_iter().collect();
    builder.upsert(KUSTOMIZATION, repo.blob(&kustomization(&list))?, FileMode::Blob);
    Ok(builder.create_updated(repo, base)?)
}

/// Files of a repository at one commit, or what changed between two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeChanges {
    /// Path -> content.
    pub files: BTreeMap<String, String>,
    pub removed: Vec<String>,
}

/// Names of the files directly in `folder` of `tree`.
fn files_of(repo: &Repository, tree: &Tree, folder: &str) -> Result<Vec<String>, GitopsError> {
    match tree.get_path(Path::new(folder)) {
        Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
            Ok(repo.find_tree(entry.id())?.iter().filter_map(|e| e.name().map(String::from)).collect())
        }
        _ => Ok(Vec::new()),
    }
}

fn commit(repo: &Repository, tree: &Tree, parent: Option<Oid>, change: &Change) -> Result<Oid, git2::Error> {
    let author = Signature::now(&change.author.name, &change.author.email)?;
    let mut message = change.message.clone();
    if !change.trailers.is_empty() {
        message.push_str("\n\n");
        for (key, value) in &change.trailers {
            message.push_str(&format!("{key}: {value}\n"));
        }
    }
    let parents: Vec<git2::Commit> = parent.map(|id| repo.find_commit(id)).transpose()?.into_iter().collect();
    let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
    let id = repo.commit(None, &author, &committer()?, &message, tree, &parent_refs)?;
    match parent {
        Some(current) => repo.reference_matching(BRANCH, id, true, current, "heimdall: commit")?,
        None => repo.reference(BRANCH, id, false, "heimdall: first commit")?,
    };
    Ok(id)
}

fn info(commit: &git2::Commit) -> CommitInfo {
    let message = commit.message().unwrap_or_default();
    let summary = message.lines().next().unwrap_or_default().to_string();
    let trailers = message
        .rsplit("\n\n")
        .next()
        .map(|block| {
            block
                .lines()
                .filter_map(|line| line.split_once(": "))
                .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let author = commit.author();
    CommitInfo {
        id: commit.id().to_string(),
        time: commit.time().seconds(),
        author: Author { name: author.name().unwrap_or_default().to_string(), email: author.email().unwrap_or_default().to_string() },
        summary,
        trailers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn change(message: &str) -> Change {
        Change {
            author: Author { name: "Alice".into(), email: "alice@example.com".into() },
            message: message.into(),
            trailers: vec![("Heimdall-Event".into(), "42".into())],
        }
    }

    fn folder(name: &str, files: &[(&str, &str)]) -> FolderUpdate {
        FolderUpdate { folder: name.into(), files: Some(files.iter().map(|(n, c)| (n.to_string(), c.as_bytes().to_vec())).collect()) }
    }

    const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: fast\n";

    fn git(args: &[&str]) -> String {
        let output = Command::new("git").args(args).output().expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn commits_folders_with_kustomizations_that_kustomize_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        assert!(repos.ensure("dev", &change("create cluster dev")).expect("init"));
        assert!(!repos.ensure("dev", &change("again")).expect("exists"), "ensure is idempotent");
        let id = repos
            .apply("dev", &[folder("shop/web", &[("configmap-settings.yaml", CONFIG)])], &change("apply application shop/web by alice"))
            .expect("apply");
        assert!(id.is_some());
        assert_eq!(repos.folders("dev").expect("folders"), BTreeSet::from(["shop/web".to_string()]));
        let again =
            repos.apply("dev", &[folder("shop/web", &[("configmap-settings.yaml", CONFIG)])], &change("same again")).expect("apply");
        assert_eq!(again, None, "identical content makes no commit");

        let clone = dir.path().join("clone");
        git(&["clone", "-q", repos.path("dev").expect("path").to_str().expect("utf-8"), clone.to_str().expect("utf-8")]);
        let root = std::fs::read_to_string(clone.join("kustomization.yaml")).expect("root");
        assert!(root.contains("- shop"), "{root}");
        let output = Command::new("kubectl")
            .args(["kustomize", clone.to_str().expect("utf-8")])
            .output()
            .expect("kubectl is installed (scripts/test.sh installs it)");
        assert!(output.status.success(), "kustomize: {}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("name: settings"));
        let log = git(&["-C", clone.to_str().expect("utf-8"), "log", "--format=%an <%ae>|%s"]);
        assert!(log.starts_with("Alice <alice@example.com>|apply application shop/web by alice"), "{log}");
    }

    #[test]
    fn removing_the_last_folder_removes_its_namespace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        repos.ensure("dev", &change("create")).expect("init");
        repos
            .apply("dev", &[folder("shop/web", &[("a.yaml", CONFIG)]), folder("shop/api", &[("b.yaml", CONFIG)])], &change("two"))
            .expect("apply");
        repos.apply("dev", &[FolderUpdate { folder: "shop/web".into(), files: None }], &change("remove web")).expect("apply");
        assert_eq!(repos.folders("dev").expect("folders"), BTreeSet::from(["shop/api".to_string()]));
        repos.apply("dev", &[FolderUpdate { folder: "shop/api".into(), files: None }], &change("remove api")).expect("apply");
        assert!(repos.folders("dev").expect("folders").is_empty());
        let head = repos.head("dev").expect("head").expect("commit");
        assert!(repos.files_at("dev", &head, "shop/api").expect("files").is_empty());
    }

    #[test]
    fn paths_cannot_escape_the_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        for cluster in ["../evil", "a/b", "Dev", "", "x.y"] {
            assert!(repos.path(cluster).is_err(), "{cluster:?}");
        }
        repos.ensure("dev", &change("create")).expect("init");
        for (folder_name, file) in [
            ("../shop/web", "a.yaml"),
            ("shop/../../x", "a.yaml"),
            ("shop", "a.yaml"),
            ("shop/web", "../a.yaml"),
            ("shop/web", "kustomization.yaml"),
            ("shop/web/deeper", "a.yaml"),
            ("shop/web", "a.txt"),
        ] {
            let result = repos.apply("dev", &[folder(folder_name, &[(file, CONFIG)])], &change("evil"));
            assert!(matches!(result, Err(GitopsError::InvalidPath { .. })), "{folder_name}/{file}: {result:?}");
        }
        assert!(repos.folders("dev").expect("folders").is_empty(), "nothing was written");
    }

    #[test]
    fn history_finds_the_commits_of_a_folder_with_trailers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        repos.ensure("dev", &change("create")).expect("init");
        repos.apply("dev", &[folder("shop/web", &[("a.yaml", "v: 1\n")])], &change("web v1")).expect("apply");
        repos.apply("dev", &[folder("shop/api", &[("a.yaml", "v: 1\n")])], &change("api v1")).expect("apply");
        repos.apply("dev", &[folder("shop/web", &[("a.yaml", "v: 2\n")])], &change("web v2")).expect("apply");
        let history = repos.history("dev", &["shop/web".to_string()], 10).expect("history");
        let summaries: Vec<&str> = history.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["web v2", "web v1"]);
        assert_eq!(history[0].trailer("Heimdall-Event"), Some("42"));
        assert_eq!(history[0].author.email, "alice@example.com");
        let old = repos.files_at("dev", &history[1].id, "shop/web").expect("files");
        assert_eq!(old["a.yaml"], "v: 1\n");
        assert_eq!(repos.resolve("dev", &history[1].id[..10]).expect("prefix resolves"), history[1].id);
    }

    /// Eight threads write eight folders of one repository, each through
    /// the `Repositories` that `writer` gives it; none is lost.
    fn eight_writers_lose_nothing(dir: &Path, writer: impl Fn() -> Arc<Repositories>) {
        Repositories::new(dir).ensure("dev", &change("create")).expect("init");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let repos = writer();
                std::thread::spawn(move || {
                    repos.apply("dev", &[folder(&format!("ns{}/app{i}", i % 3), &[("a.yaml", CONFIG)])], &change("write")).expect("apply")
                })
            })
            .collect();
        for writer in writers {
            assert!(writer.join().expect("join").is_some());
        }
        let repos = Repositories::new(dir);
        assert_eq!(repos.folders("dev").expect("folders").len(), 8);
        assert_eq!(repos.log("dev", 100).expect("log").len(), 9, "eight commits after the first");
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Arc::new(Repositories::new(dir.path()));
        eight_writers_lose_nothing(dir.path(), || repos.clone());
    }

    #[test]
    fn existing_folders_are_looked_up_not_walked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        repos.ensure("dev", &change("create")).expect("init");
        assert!(repos.existing_folders("dev", ["shop/web".to_string()]).expect("empty").is_empty());
        let folders = [
            folder("shop/web", &[("a.yaml", CONFIG)]),
            folder("pay/shop--web", &[("a.yaml", CONFIG)]),
            folder("pay/api", &[("a.yaml", CONFIG)]),
        ];
        repos.apply("dev", &folders, &change("write")).expect("apply");
        assert_eq!(repos.namespaces("dev").expect("namespaces"), BTreeSet::from(["pay".to_string(), "shop".to_string()]));
        let asked = ["shop/web", "pay/shop--web", "ops/shop--web", "shop/api", "shop"].map(String::from);
        assert_eq!(
            repos.existing_folders("dev", asked).expect("found"),
            BTreeSet::from(["pay/shop--web".to_string(), "shop/web".to_string()]),
            "only folders asked for and present; a file or a namespace is no folder"
        );
    }

    /// The folder index follows this process's commits and never answers
    /// from an old list when another process moved the branch.
    #[test]
    fn the_folder_index_follows_every_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (here, elsewhere) = (Repositories::new(dir.path()), Repositories::new(dir.path()));
        here.ensure("dev", &change("create")).expect("init");
        here.apply("dev", &[folder("shop/web", &[("a.yaml", CONFIG)]), folder("shop/api", &[("a.yaml", CONFIG)])], &change("w"))
            .expect("apply");
        assert_eq!(here.folders("dev").expect("folders").len(), 2);
        here.apply("dev", &[FolderUpdate { folder: "shop/api".into(), files: None }], &change("remove")).expect("remove");
        assert_eq!(here.folders("dev").expect("folders"), BTreeSet::from(["shop/web".to_string()]));
        elsewhere.apply("dev", &[folder("pay/db", &[("a.yaml", CONFIG)])], &change("other process")).expect("apply");
        assert_eq!(
            here.existing_folders("dev", ["pay/db".to_string(), "shop/web".to_string()]).expect("found"),
            BTreeSet::from(["pay/db".to_string(), "shop/web".to_string()]),
            "another process's commit is seen"
        );
        assert_eq!(here.namespaces("dev").expect("namespaces"), BTreeSet::from(["pay".to_string(), "shop".to_string()]));
    }

    /// Two processes (replicas) write one repository, each with its own
    /// in-process lock: the branch moves by compare-and-swap, so no commit
    /// is lost.
    #[test]
    fn writers_in_different_processes_lose_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A Repositories of its own each: the locks of one replica are not the other's.
        eight_writers_lose_nothing(dir.path(), || Arc::new(Repositories::new(dir.path())));
    }

    /// A commit rewrites only the trees on the path to the changed folder:
    /// with another namespace's tree gone from the object store, a change
    /// elsewhere still commits (it never reads that tree), so a commit's
    /// cost does not grow with the repository.
    #[test]
    fn a_commit_reads_only_the_trees_on_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        repos.ensure("dev", &change("create")).expect("init");
        repos
            .apply("dev", &[folder("shop/web", &[("a.yaml", CONFIG)]), folder("pay/api", &[("a.yaml", CONFIG)])], &change("write"))
            .expect("apply");
        let path = repos.path("dev").expect("path");
        let pay_tree = {
            let repository = git2::Repository::open(&path).expect("open");
            let head = repository.head().expect("head").peel_to_tree().expect("tree");
            head.get_name("pay").expect("pay").id()
        };
        let hex = pay_tree.to_string();
        let loose = path.join("objects").join(&hex[..2]).join(&hex[2..]);
        std::fs::remove_file(&loose).expect("the pay tree is a loose object");
        let changed =
            repos.apply("dev", &[folder("shop/web", &[("b.yaml", CONFIG)])], &change("write")).expect("commit without reading pay");
        assert!(changed.is_some());
        let repository = git2::Repository::open(&path).expect("open");
        assert!(repository.find_tree(pay_tree).is_err(), "the repository really lacks the pay tree");
        let head = repository.head().expect("head").peel_to_tree().expect("tree");
        assert_eq!(head.get_name("pay").expect("pay").id(), pay_tree, "the new commit points at the old pay tree, unread");
    }

    #[test]
    fn a_damaged_repository_is_detected_and_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repos = Repositories::new(dir.path());
        repos.ensure("dev", &change("create")).expect("init");
        repos.verify("dev").expect("healthy");
        let path = repos.path("dev").expect("path");
        std::fs::remove_dir_all(path.join("objects")).expect("damage");
        std::fs::create_dir_all(path.join("objects")).expect("empty objects");
        assert!(matches!(repos.verify("dev"), Err(GitopsError::Corrupt { .. })));
        let aside = repos.set_aside("dev").expect("moved").expect("existed");
        assert!(aside.exists() && !repos.exists("dev"));
        assert!(matches!(repos.verify("dev"), Err(GitopsError::Missing { .. })));
        assert!(repos.ensure("dev", &change("rebuild")).expect("rebuilt"));
        repos.verify("dev").expect("healthy again");
    }
}
