//! The crate graph keeps its shape: `heimdall_testsupport::layering::RULES`
//! over this workspace's `cargo metadata`.

use heimdall_testsupport::layering::{Graph, RULES, rust_sources, violations};

#[test]
fn the_crate_graph_has_no_forbidden_edge() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    // Only this machine's platform: other platforms' crates need not be downloaded.
    let rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().expect("rustc -vV");
    let host =
        String::from_utf8_lossy(&rustc.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(String::from)).expect("host triple");
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--filter-platform", &host, "--manifest-path", manifest])
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let graph = Graph::from_metadata(&metadata).expect("graph");
    let broken = violations(&graph, RULES);
    assert!(broken.is_empty(), "forbidden dependencies:\n{}", broken.join("\n"));
}

/// The production sources of the workspace's crates (or of `only` them):
/// each file's path and its text up to its unit tests.
fn production_sources(only: Option<&[&str]>) -> Vec<(std::path::PathBuf, String)> {
    let crates = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let sources: Vec<std::path::PathBuf> = std::fs::read_dir(crates)
        .expect("crates")
        .flatten()
        .filter(|e| e.file_name() != "testsupport")
        .filter(|e| only.is_none_or(|names| names.iter().any(|n| e.file_name() == *n)))
        .map(|e| e.path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    assert!(sources.len() >= only.map_or(6, <[&str]>::len), "the crates' sources were not found under {}", crates.display());
    sources.iter().flat_map(|src| rust_sources(src).expect("read sources")).collect()
}

/// Lines of `files` that contain one of `words`, as `path:line: text`.
fn lines_naming(files: &[(std::path::PathBuf, String)], words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, code) in files {
        for (number, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if words.iter().any(|w| code.contains(w)) {
                found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    found
}

/// One lock mechanism: production code takes `parking_lot`'s locks, which
/// do not poison, so no crate writes its own recovery from a poisoned lock
/// (tokio's async locks are another tool and stay).
#[test]
fn production_code_takes_locks_that_do_not_poison() {
    let files = production_sources(None);
    let mut found = lines_naming(&files, &["std::sync::Mutex", "std::sync::RwLock", "PoisonError"]);
    for (path, code) in &files {
        for (number, line) in code.lines().enumerate() {
            let grouped = line.contains("use std::sync::{") && (line.contains("Mutex") || line.contains("RwLock"));
            if grouped || (line.contains(".into_inner())") && line.contains("lock()")) {
                found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "std locks or hand-written poison recovery (use parking_lot):\n{}", found.join("\n"));
}

/// The pure crates (the model, the renderer, secrets' cryptography, the
/// catalog and the scaffolder) do no IO and read no clock: files, sockets,
/// processes, the environment and the time come from their callers. The
/// crate rules keep IO crates out; this keeps the standard library's IO out.
#[test]
fn the_pure_crates_do_no_io_and_read_no_clock() {
    let files = production_sources(Some(&["model", "render", "secrets", "catalog", "scaffolder"]));
    let found = lines_naming(
        &files,
        &[
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "std::io::stdin",
            "SystemTime",
            "Instant::now",
            "Utc::now",
            "Local::now",
            "File::",
        ],
    );
    assert!(found.is_empty(), "IO or a clock in a pure crate (take it from the caller):\n{}", found.join("\n"));
}

/// The agent reaches clusters only through the `kube` crate, in one module
/// (`cluster`), and the hub only through `hub`: nothing else in the agent
/// opens a connection or runs a program, so what its tests exercise against
/// the fake API server is what runs against a real one.
#[test]
fn the_agent_reaches_clusters_through_kube_in_one_module() {
    let files = production_sources(Some(&["agent"]));
    let file_of = |line: &String| line.split(':').next().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
    let kube: Vec<String> = lines_naming(&files, &["kube::", "use kube"]).into_iter().filter(|l| file_of(l) != "cluster.rs").collect();
    let http: Vec<String> = lines_naming(&files, &["reqwest", "hyper::"]).into_iter().filter(|l| file_of(l) != "hub.rs").collect();
    let other = lines_naming(&files, &["std::process", "std::net::TcpStream", "tokio::net", "tokio::process"]);
    assert!(kube.is_empty(), "the cluster is reached outside cluster.rs:\n{}", kube.join("\n"));
    assert!(http.is_empty(), "HTTP outside hub.rs:\n{}", http.join("\n"));
    assert!(other.is_empty(), "connections or programs in the agent:\n{}", other.join("\n"));
}

/// The CLI validates no document: it sends documents with their source
/// names and prints what the hub answers, so there is one set of rules. What
/// it checks of its own arguments it checks with the model's functions.
#[test]
fn the_cli_validates_no_document() {
    let files = production_sources(Some(&["cli"]));
    let found = lines_naming(
        &files,
        &["heimdall_model::decode", "model::decode", "validate_spec", "heimdall_render::", "Platform::from_resources"],
    );
    assert!(found.is_empty(), "the CLI validates documents itself (send them to the hub):\n{}", found.join("\n"));
}
