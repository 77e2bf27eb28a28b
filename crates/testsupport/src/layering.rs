//! The crate graph's rules, checked over `cargo metadata` (rust-analyzer's
//! tidy tests are the model): which crates may never reach which others
//! through normal dependencies, directly or transitively. A forbidden edge
//! is reported with the path that brings it in, so the fix is obvious.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Normal (not dev, not build) dependencies between packages, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The graph of `cargo metadata --format-version 1` output.
    pub fn from_metadata(metadata: &Value) -> Result<Graph, String> {
        let names: BTreeMap<&str, &str> = metadata["packages"]
            .as_array()
            .ok_or("metadata has no packages[]")?
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
            .collect();
        let nodes = metadata["resolve"]["nodes"].as_array().ok_or("metadata has no resolve.nodes[] (run it with dependencies)")?;
        let mut graph = Graph::default();
        for node in nodes {
            let from = node["id"].as_str().and_then(|id| names.get(id)).ok_or("a node without a package")?;
            for dep in node["deps"].as_array().into_iter().flatten() {
                let normal = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
                if let Some(to) = dep["pkg"].as_str().and_then(|id| names.get(id))
                    && normal
                {
                    graph.edges.entry(from.to_string()).or_default().insert(to.to_string());
                }
            }
            graph.edges.entry(from.to_string()).or_default();
        }
        Ok(graph)
    }

    /// A graph from `(from, to)` edges, for tests of the rules themselves.
    pub fn from_edges<'a>(edges: impl IntoIterator<Item = (&'a str, &'a str)>) -> Graph {
        let mut graph = Graph::default();
        for (from, to) in edges {
            graph.edges.entry(from.to_string()).or_default().insert(to.to_string());
            graph.edges.entry(to.to_string()).or_default();
        }
        graph
    }

    pub fn contains(&self, package: &str) -> bool {
        self.edges.contains_key(package)
    }

    /// The graph without `node` and its edges.
    pub fn without(&self, node: &str) -> Graph {
        let mut graph = self.clone();
        graph.edges.remove(node);
        for targets in graph.edges.values_mut() {
            targets.remove(node);
        }
        graph
    }

    /// The nodes `from` has an edge to.
    pub fn edges_from(&self, from: &str) -> impl Iterator<Item = &str> {
        self.edges.get(from).into_iter().flatten().map(String::as_str)
    }

    /// Every set of nodes that reach each other (strongly connected components
    /// of more than one node), each sorted, in order of their first node.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        // Two nodes are in one cycle when each reaches the other; graphs here are
        // a few dozen nodes, so a reachability set per node is plenty fast.
        let reach: BTreeMap<&str, BTreeSet<&str>> = self
            .edges
            .keys()
            .map(|from| {
                let mut seen = BTreeSet::new();
                let mut pending: Vec<&str> = self.edges[from].iter().map(String::as_str).collect();
                while let Some(at) = pending.pop() {
                    if seen.insert(at) {
                        pending.extend(self.edges.get(at).into_iter().flatten().map(String::as_str));
                    }
                }
                (from.as_str(), seen)
            })
            .collect();
        let mut placed = BTreeSet::new();
        let mut cycles = Vec::new();
        for (from, reached) in &reach {
            if placed.contains(from) {
                continue;
            }
            let members: Vec<String> =
                reach.keys().filter(|to| reached.contains(*to) && reach[*to].contains(from)).map(|to| to.to_string()).collect();
            if members.len() > 1 {
                placed.extend(members.iter().map(|m| reach.get_key_value(m.as_str()).map(|(k, _)| *k).unwrap_or_default()));
                cycles.push(members);
            }
        }
        cycles
    }

    /// The shortest chain of normal dependencies from `from` to `to`.
    pub fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(at) = queue.pop_front() {
            if at == to {
                let mut path = vec![to.to_string()];
                let mut cursor = to;
                while let Some(&before) = previous.get(cursor) {
                    path.push(before.to_string());
                    cursor = before;
                }
                path.reverse();
                return Some(path);
            }
            for next in self.edges.get(at).into_iter().flatten() {
                if seen.insert(next.as_str()) {
                    previous.insert(next.as_str(), at);
                    queue.push_back(next.as_str());
                }
            }
        }
        None
    }
}

/// Every `.rs` file under `dir` (recursively, in path order) with its code:
/// the text up to a trailing `#[cfg(test)] mod tests`, where unit tests start.
pub fn rust_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default().to_string();
                files.push((path, code));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The graph of a crate's top-level modules (`src/x.rs` and `src/x/`): an
/// edge for every `crate::x` a module's code names. Comments and the unit
/// tests at a file's end do not count.
pub fn module_graph(src: &Path) -> Result<Graph, String> {
    let mut modules: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, code) in rust_sources(src)? {
        let Ok(relative) = path.strip_prefix(src) else { continue };
        let Some(first) = relative.components().next().and_then(|c| c.as_os_str().to_str()) else { continue };
        let stem = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if stem == "lib" || stem == "main" {
            continue;
        }
        modules.entry(stem).or_default().push(code);
    }
    let mut edges = Vec::new();
    for (module, files) in &modules {
        for code in files {
            for target in crate_paths(code) {
                if modules.contains_key(&target) && &target != module {
                    edges.push((module.clone(), target));
                }
            }
        }
    }
    let mut graph = Graph::from_edges(edges.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    for module in modules.keys() {
        graph.edges.entry(module.clone()).or_default();
    }
    Ok(graph)
}

/// The first path segment after every `crate::` in code (not in comments,
/// not in a trailing `#[cfg(test)] mod tests`), each of a `crate::{a, b::c}`
/// group too.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    let code: String = code.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let identifier = |text: &str| -> String { text.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut found = BTreeSet::new();
    for (index, _) in code.match_indices("crate::") {
        if code[..index].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[index + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group, up to its closing brace.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.insert(identifier(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(identifier(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier(rest));
        }
    }
    found.remove("");
    found
}

/// `from` must never reach any of `forbidden`, because `why`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub from: &'static str,
    pub forbidden: &'static [&'static str],
    pub why: &'static str,
}

/// Every broken rule, as `a → b → c: why`; a rule naming a crate the graph
/// does not have is broken too (a renamed crate must not void its rule).
pub fn violations(graph: &Graph, rules: &[Rule]) -> Vec<String> {
    let mut found = Vec::new();
    for rule in rules {
        if !graph.contains(rule.from) {
            found.push(format!("{}: no such package; update the rule", rule.from));
            continue;
        }
        for target in rule.forbidden {
            if let Some(path) = graph.path(rule.from, target) {
                found.push(format!("{}: {}", path.join(" → "), rule.why));
            }
        }
    }
    found
}

/// Heimdall's crate rules. ARCHITECTURE.md's invariants name this list.
pub const RULES: &[Rule] = &[
    Rule {
        from: "heimdall-cli",
        forbidden: &[
            "heimdall-hub",
            "heimdall-store",
            "heimdall-render",
            "heimdall-agent",
            "heimdall-gitops",
            "axum",
            "sqlx",
            "git2",
            "regorus",
        ],
        why: "the CLI talks to a hub over HTTP with heimdall-api's types; commands that run a hub, an agent or the renderer live in the binary crate",
    },
    Rule {
        from: "heimdall-agent",
        forbidden: &["heimdall-hub", "heimdall-store", "heimdall-render", "heimdall-gitops", "axum", "sqlx", "git2", "regorus"],
        why: "the agent speaks the protocol of heimdall-api and compiles nothing of the hub",
    },
    Rule {
        from: "heimdall-api",
        forbidden: &["axum", "hyper", "reqwest", "tokio", "sqlx", "git2", "kube", "regorus"],
        why: "wire types are serde only: no HTTP server or client, no SQL, no runtime",
    },
    Rule {
        from: "heimdall-model",
        forbidden: &["heimdall-api", "axum", "hyper", "reqwest", "tokio", "sqlx", "git2", "kube", "regorus"],
        why: "the model is pure data and validation",
    },
    Rule {
        from: "heimdall-render",
        forbidden: &["heimdall-store", "heimdall-gitops", "heimdall-hub", "axum", "hyper", "reqwest", "tokio", "sqlx", "git2", "kube"],
        why: "the renderer is pure: no IO, no clock, deterministic",
    },
    Rule {
        from: "heimdall-secrets",
        forbidden: &["axum", "hyper", "reqwest", "tokio", "sqlx", "git2", "kube"],
        why: "cryptography without IO: callers read and write key files",
    },
    Rule {
        from: "heimdall-catalog",
        forbidden: &["heimdall-hub", "heimdall-store", "axum", "hyper", "reqwest", "tokio", "sqlx", "git2"],
        why: "the catalog core is pure; the hub feeds it and serves it",
    },
    Rule {
        from: "heimdall-scaffolder",
        forbidden: &["heimdall-hub", "heimdall-store", "axum", "hyper", "reqwest", "tokio", "sqlx", "git2"],
        why: "templates are parsed and expanded without IO; the hub runs their actions",
    },
    Rule { from: "heimdall-hub", forbidden: &["heimdall-cli", "heimdall-agent"], why: "the hub does not link its clients" },
    Rule { from: "heimdall", forbidden: &["heimdall-testsupport"], why: "test support is never production code" },
];

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule { from: "cli", forbidden: &["hub", "sqlx"], why: "clients stay light" };

    #[test]
    fn a_forbidden_edge_is_found_with_the_path_that_brings_it_in() {
        let clean = Graph::from_edges([("cli", "api"), ("api", "model"), ("hub", "sqlx"), ("hub", "api")]);
        assert!(violations(&clean, &[RULE]).is_empty());
        let broken = Graph::from_edges([("cli", "api"), ("api", "wire-helpers"), ("wire-helpers", "hub"), ("hub", "sqlx")]);
        assert_eq!(
            violations(&broken, &[RULE]),
            vec!["cli → api → wire-helpers → hub: clients stay light", "cli → api → wire-helpers → hub → sqlx: clients stay light"]
        );
    }

    #[test]
    fn cycles_are_the_nodes_that_reach_each_other() {
        let acyclic = Graph::from_edges([("api", "core"), ("portal", "core"), ("core", "store")]);
        assert!(acyclic.cycles().is_empty());
        let knotted =
            Graph::from_edges([("api", "core"), ("core", "auth"), ("auth", "portal"), ("portal", "core"), ("x", "y"), ("y", "x")]);
        assert_eq!(knotted.cycles(), vec![vec!["auth", "core", "portal"], vec!["x", "y"]]);
    }

    #[test]
    fn module_references_are_read_from_code_only() {
        let source = "use crate::admission;\nuse crate::{state::AppState, auth};\nuse crate::{\n    catalog::{self, Entity},\n};\n/// See [`crate::api::x`].\nlet x = heimdall_hub::crate_like; // crate::portal\nfn f() { crate::delivery::go() }\n#[cfg(test)]\nmod tests { use crate::server; }\n";
        let found: Vec<String> = crate_paths(source).into_iter().collect();
        assert_eq!(found, vec!["admission", "auth", "catalog", "delivery", "state"]);
    }

    #[test]
    fn dev_dependencies_do_not_count_and_unknown_packages_are_reported() {
        let metadata = serde_json::json!({
            "packages": [{"id": "c", "name": "cli"}, {"id": "h", "name": "hub"}, {"id": "a", "name": "api"}],
            "resolve": {"nodes": [
                {"id": "c", "deps": [{"pkg": "h", "dep_kinds": [{"kind": "dev", "target": null}]}, {"pkg": "a", "dep_kinds": [{"kind": null, "target": null}]}]},
                {"id": "h", "deps": []},
                {"id": "a", "deps": []},
            ]},
        });
        let graph = Graph::from_metadata(&metadata).expect("graph");
        assert!(violations(&graph, &[RULE]).is_empty(), "a test may use the hub");
        let renamed = Rule { from: "client", ..RULE };
        assert_eq!(violations(&graph, &[renamed]), vec!["client: no such package; update the rule"]);
    }
}
