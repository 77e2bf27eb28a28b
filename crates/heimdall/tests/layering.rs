//! The crate graph keeps its shape: `heimdall_testsupport::layering::RULES`
//! over this workspace's `cargo metadata`.

use heimdall_testsupport::layering::{Graph, RULES, violations};

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

/// One lock mechanism: production code takes `parking_lot`'s locks, which
/// do not poison, so no crate writes its own recovery from a poisoned lock
/// (tokio's async locks are another tool and stay).
#[test]
fn production_code_takes_locks_that_do_not_poison() {
    let crates = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut found = Vec::new();
    let mut pending: Vec<std::path::PathBuf> = std::fs::read_dir(crates)
        .expect("crates")
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|src| src.is_dir() && !src.starts_with(crates.join("testsupport")))
        .collect();
    assert!(pending.len() > 5, "the crates' sources were not found under {}", crates.display());
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                for (number, line) in text.lines().enumerate() {
                    let std_lock = line.contains("std::sync::Mutex")
                        || line.contains("std::sync::RwLock")
                        || (line.contains("use std::sync::{") && (line.contains("Mutex") || line.contains("RwLock")));
                    if std_lock || line.contains("PoisonError") || line.contains(".into_inner())") && line.contains("lock()") {
                        found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "std locks or hand-written poison recovery (use parking_lot):\n{}", found.join("\n"));
}
