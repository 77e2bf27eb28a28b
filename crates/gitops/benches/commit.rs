//! GitOps benchmarks: `cargo bench -p heimdall-gitops --bench commit`.
//!
//! - the initial write of 10,000 applications (5 manifests each, spread
//!   over 50 namespaces) as one commit;
//! - the latency of committing a change to one application in that
//!   repository (median and worst of 200), which must not grow with the
//!   repository because only the path to the changed folder is rewritten.

use std::time::{Duration, Instant};

use heimdall_gitops::{Author, Change, FolderUpdate, Repositories};

const APPS: usize = 10_000;

fn manifests(app: usize, version: usize) -> Vec<(String, Vec<u8>)> {
    ["service", "deployment", "horizontalpodautoscaler", "ingress", "configmap"]
        .iter()
        .map(|kind| {
            let body = format!(
                "apiVersion: v1\nkind: {kind}\nmetadata:\n  name: app-{app}\n  namespace: team-{}\n  labels:\n    app.oam.dev/name: app-{app}\nspec:\n  image: registry.example.com/app-{app}:{version}\n  replicas: 2\n",
                app % 50
            );
            (format!("{kind}-app-{app}.yaml"), body.into_bytes())
        })
        .collect()
}

fn change(message: &str) -> Change {
    Change {
        author: Author { name: "bench".into(), email: "bench@example.com".into() },
        message: message.into(),
        trailers: vec![("Heimdall-Event".into(), "1".into())],
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repos = Repositories::new(dir.path());
    repos.ensure("bench", &change("create")).expect("init");
    // Baseline: the same one-application commits in a repository of ten applications.
    let small = Repositories::new(dir.path().join("small"));
    small.ensure("bench", &change("create")).expect("init");
    let ten: Vec<FolderUpdate> =
        (0..10).map(|app| FolderUpdate { folder: format!("team-{}/app-{app}", app % 50), files: Some(manifests(app, 1)) }).collect();
    small.apply("bench", &ten, &change("ten apps")).expect("commit");
    // Warm up (page cache, allocator) so both measurements start alike.
    for i in 0..50 {
        let update = FolderUpdate { folder: format!("team-{}/app-{}", i % 10, i % 10), files: Some(manifests(i % 10, 1000 + i)) };
        small.apply("bench", &[update], &change("warm up")).expect("commit");
    }
    let mut baseline: Vec<Duration> = (0..200)
        .map(|i| {
            let app = i % 10;
            let update = FolderUpdate { folder: format!("team-{}/app-{app}", app % 50), files: Some(manifests(app, i + 2)) };
            let started = Instant::now();
            small.apply("bench", &[update], &change("one app")).expect("commit");
            started.elapsed()
        })
        .collect();
    baseline.sort();

    let updates: Vec<FolderUpdate> =
        (0..APPS).map(|app| FolderUpdate { folder: format!("team-{}/app-{app}", app % 50), files: Some(manifests(app, 1)) }).collect();
    let started = Instant::now();
    repos.apply("bench", &updates, &change("initial state")).expect("initial commit").expect("a commit");
    let initial = started.elapsed();

    let mut latencies: Vec<Duration> = (0..200)
        .map(|i| {
            let app = (i * 37) % APPS;
            let update = FolderUpdate { folder: format!("team-{}/app-{app}", app % 50), files: Some(manifests(app, i + 2)) };
            let started = Instant::now();
            repos.apply("bench", &[update], &change("one app")).expect("commit").expect("a commit");
            started.elapsed()
        })
        .collect();
    latencies.sort();
    let size: u64 = walk(&dir.path().join("clusters/bench.git"));
    println!("| Benchmark | Result |");
    println!("| --- | --- |");
    println!("| initial write of {APPS} applications (50,000 manifests, 50 namespaces), one commit | {:.2} s |", initial.as_secs_f64());
    println!(
        "| commit of a one-application change in a repository of 10 applications, median of 200 | {:.2} ms |",
        baseline[100].as_secs_f64() * 1e3
    );
    println!(
        "| commit of a one-application change in the repository of {APPS}, median of 200 | {:.2} ms |",
        latencies[100].as_secs_f64() * 1e3
    );
    println!("| the same, slowest of 200 | {:.2} ms |", latencies[199].as_secs_f64() * 1e3);
    println!("| repository size on disk after 201 commits (loose objects) | {:.0} MiB |", size as f64 / (1024.0 * 1024.0));
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| if e.path().is_dir() { walk(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
        .sum()
}
