//! Locations: where entities are read from (`url:` or `file:` targets),
//! one file's entities and problems, and the further targets its `Location`
//! entities name, resolved against the file they are in. Reading is the
//! caller's; this module only parses and resolves.

use heimdall_model::parse_documents;
use serde::Serialize;

use crate::entity::{Entity, validate};

/// The annotation naming the file an entity was read from (`file:/...`, `url:https://...`).
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";

/// A place a catalog file is read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Url(String),
    File(String),
}

impl Target {
    /// `url` or `file` and the target, as Backstage's location API names them.
    pub fn new(type_: &str, target: &str) -> Result<Target, String> {
        match type_ {
            "url" if target.starts_with("https://") || target.starts_with("http://") => Ok(Target::Url(target.to_string())),
            "url" => Err(format!("a url location needs an http(s) URL, got {target:?}")),
            "file" if target.starts_with('/') => Ok(Target::File(target.to_string())),
            "file" => Err(format!("a file location needs an absolute path, got {target:?}")),
            other => Err(format!("location type {other:?} is not supported: expected url or file")),
        }
    }

    pub fn type_(&self) -> &'static str {
        match self {
            Target::Url(_) => "url",
            Target::File(_) => "file",
        }
    }

    pub fn target(&self) -> &str {
        match self {
            Target::Url(t) | Target::File(t) => t,
        }
    }

    /// A target named inside this file: absolute as given, relative against this file's folder.
    pub fn resolve(&self, relative: &str) -> Result<Target, String> {
        if let Some(rest) = relative.strip_prefix("url:") {
            return Target::new("url", rest);
        }
        if let Some(rest) = relative.strip_prefix("file:") {
            return match self {
                Target::File(_) => self.resolve(rest),
                Target::Url(_) => Err(format!("{relative:?}: a file read from a URL cannot name a file on the hub")),
            };
        }
        if relative.starts_with("https://") || relative.starts_with("http://") {
            return Target::new("url", relative);
        }
        let base = self.target();
        let (prefix, path) = match self {
            // Keep `https://host` apart from the path so `..` cannot climb into it.
            Target::Url(url) => {
                let after_scheme = url.find("://").map_or(0, |i| i + 3);
                let host_end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
                (&url[..host_end], &url[host_end..])
            }
            Target::File(_) => ("", base),
        };
        let mut parts: Vec<&str> = if relative.starts_with('/') { Vec::new() } else { path.split('/').filter(|p| !p.is_empty()).collect() };
        if !relative.starts_with('/') {
            parts.pop();
        }
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("{relative:?} climbs above the root of {base}"));
                    }
                }
                part => parts.push(part),
            }
        }
        let joined = format!("{prefix}/{}", parts.join("/"));
        Ok(match self {
            Target::Url(_) => Target::Url(joined),
            Target::File(_) => Target::File(joined),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.type_(), self.target())
    }
}

/// A problem with one document of one file, for the location's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationError {
    /// `url:https://.../catalog-info.yaml, document 2`
    pub document: String,
    pub path: String,
    pub message: String,
}

/// One file read: its valid entities, its problems and the targets its Location entities name.
#[derive(Debug, Default)]
pub struct FileContents {
    pub entities: Vec<Entity>,
    pub errors: Vec<LocationError>,
    pub targets: Vec<Target>,
}

/// Parses the text of the file at `target`. A document with problems is
/// left out and reported; the others are kept.
pub fn read_file(target: &Target, text: &str) -> FileContents {
    let mut contents = FileContents::default();
    let name = target.to_string();
    let documents = match parse_documents(text, &name) {
        Ok(documents) => documents,
        Err(e) => {
            contents.errors.push(LocationError { document: name, path: String::new(), message: e.to_string() });
            return contents;
        }
    };
    for (i, document) in documents.iter().enumerate() {
        let at = format!("{name}, document {}", i + 1);
        match validate(&document.value) {
            Ok(mut entity) => {
                // Backstage's record of where an entity was read: the scaffolder finds a template's files by it.
                entity.metadata.annotations.entry(MANAGED_BY_LOCATION.to_string()).or_insert_with(|| name.clone());
                if entity.kind == "Location" {
                    let targets = entity.spec_str("target").into_iter().chain(entity.spec_list("targets"));
                    for relative in targets {
                        match target.resolve(relative) {
                            Ok(resolved) => contents.targets.push(resolved),
                            Err(message) => {
                                contents.errors.push(LocationError { document: at.clone(), path: "spec.targets".into(), message })
                            }
                        }
                    }
                }
                contents.entities.push(entity);
            }
            Err(problems) => contents.errors.extend(problems.into_iter().map(|p| LocationError {
                document: at.clone(),
                path: p.path,
                message: p.message,
            })),
        }
    }
    contents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_against_the_file_they_are_named_in() {
        let url = Target::new("url", "https://git.example.com/org/repo/blob/main/catalog/all.yaml").expect("url");
        assert_eq!(
            url.resolve("./systems/a.yaml"),
            Ok(Target::Url("https://git.example.com/org/repo/blob/main/catalog/systems/a.yaml".into()))
        );
        assert_eq!(url.resolve("../b.yaml"), Ok(Target::Url("https://git.example.com/org/repo/blob/main/b.yaml".into())));
        assert_eq!(url.resolve("/top.yaml"), Ok(Target::Url("https://git.example.com/top.yaml".into())));
        assert!(url.resolve("../../../../../../../x.yaml").is_err(), "no climbing past the host");
        assert!(url.resolve("file:/etc/passwd").is_err(), "a URL's file cannot reach the hub's disk");
        let file = Target::new("file", "/srv/catalog/all.yaml").expect("file");
        assert_eq!(file.resolve("./x/y.yaml"), Ok(Target::File("/srv/catalog/x/y.yaml".into())));
        assert_eq!(file.resolve("url:https://e.com/a.yaml"), Ok(Target::Url("https://e.com/a.yaml".into())));
        assert!(Target::new("file", "relative.yaml").is_err());
        assert!(Target::new("github", "x").is_err());
    }

    #[test]
    fn a_file_keeps_its_good_documents_and_reports_the_bad_ones() {
        let target = Target::new("file", "/srv/catalog-info.yaml").expect("file");
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: good}\nspec: {type: service, lifecycle: x, owner: team}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: bad one}\nspec: {type: service, lifecycle: x, owner: team}\n---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: more}\nspec: {targets: [./more.yaml]}\n";
        let contents = read_file(&target, text);
        let names: Vec<&str> = contents.entities.iter().map(|e| e.metadata.name.as_str()).collect();
        assert_eq!(names, ["good", "more"]);
        assert_eq!(contents.errors.len(), 1);
        assert_eq!(contents.errors[0].document, "file:/srv/catalog-info.yaml, document 2");
        assert_eq!(contents.errors[0].path, "metadata.name");
        assert_eq!(contents.targets, [Target::File("/srv/more.yaml".into())]);
        let broken = read_file(&target, "a: [unclosed");
        assert_eq!(broken.errors.len(), 1);
        assert!(broken.entities.is_empty());
    }
}
