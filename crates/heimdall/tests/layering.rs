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
