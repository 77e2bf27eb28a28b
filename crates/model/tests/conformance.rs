//! Walks the shared conformance corpus (real files from KubeVela and Score)
//! and checks that every document Heimdall stores is accepted as written.
//! Rendering is checked by the renderer's own conformance test.

use std::path::PathBuf;

use heimdall_model::{decode, parse_documents};

fn corpus() -> PathBuf {
    heimdall_testsupport::conformance_dir()
}

use heimdall_testsupport::yaml_files;

/// Decodes every document of `files` whose apiVersion is one of `api_versions`
/// (others are Kubernetes objects the fixtures expect to exist already) and
/// returns how many were accepted, failing with every rejection.
fn accept_all(files: &[PathBuf], api_versions: &[&str]) -> usize {
    let mut accepted = 0;
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read");
        let documents = parse_documents(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        for document in documents {
            let api_version = document.value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
            if !api_versions.contains(&api_version) {
                continue;
            }
            match decode(&document.value, &document.source, "default") {
                Ok(_) => accepted += 1,
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
    accepted
}

#[test]
fn every_kubevela_application_is_accepted() {
    let root = corpus().join("kubevela");
    let mut files = yaml_files(&root.join("apps"));
    files.extend(yaml_files(&root.join("expected")).into_iter().filter(|f| f.ends_with("app.yaml")));
    let accepted = accept_all(&files, &["core.oam.dev/v1beta1"]);
    assert!(accepted >= 32 + 24, "only {accepted} Applications found: is the corpus complete?");
}

#[test]
fn every_score_workload_is_accepted() {
    let root = corpus().join("score");
    let mut files = yaml_files(&root.join("examples"));
    files.extend(yaml_files(&root.join("spec-samples")));
    let accepted = accept_all(&files, &["score.dev/v1b1"]);
    assert!(accepted >= 36, "only {accepted} Score workloads found: is the corpus complete?");
}
