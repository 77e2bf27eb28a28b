//! Agent benchmarks against the test-only fake API server. Run with
//! `cargo bench -p heimdall-agent --bench apply`; it prints a Markdown table
//! for BENCHMARKS.md.
//!
//! - the first apply of 1,000 objects (100 applications of a Deployment,
//!   a Service, a ConfigMap, a ServiceAccount... ten objects each), with 16
//!   requests in flight as the agent does by default;
//! - a quiet pass over the same 1,000 objects (the drift check): one LIST per
//!   kind and no writes;
//! - one changed application among the 100.
//!
//! Each is timed several times (the first apply on fresh servers) and
//! reported as the median with the range: one sample of a ~100 ms pass on a
//! shared machine is not a measurement.
//!
//! The fake server answers in microseconds, but it runs in this process: its
//! LIST answers (cloning and serializing every listed object) count too, about
//! a third of a quiet pass. The rest is the agent's own cost (YAML, JSON,
//! diffing, HTTP).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use heimdall_agent::cluster::Cluster;
use heimdall_agent::sync::Inventory;
use heimdall_testsupport::fake_kube::FakeKube;
use serde_json::{Value, json};

const APPS: usize = 100;

fn objects(app: usize, image: &str) -> Vec<Value> {
    let name = format!("app-{app}");
    let labels = json!({"app.kubernetes.io/managed-by": "heimdall", "heimdall.dev/app": name});
    // Namespace `bench` has no Tenant: the platform team's, applied with the agent's own rights, as the renderer marks it.
    let meta = |kind: &str, suffix: &str| {
        json!({"name": format!("{name}{suffix}"), "namespace": "bench", "labels": labels,
        "annotations": {"heimdall.dev/source": kind, "heimdall.dev/apply-as": "platform"}})
    };
    let mut out = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("Deployment", ""), "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "heimdall.dev/app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("Service", ""), "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("ServiceAccount", "")}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("PodDisruptionBudget", ""), "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}),
    ];
    for i in 0..6 {
        out.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("ConfigMap", &format!("-config-{i}")), "data": {"key": "value".repeat(20)}}));
    }
    out
}

fn files(image_of: impl Fn(usize) -> String) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for app in 0..APPS {
        for (i, object) in objects(app, &image_of(app)).iter().enumerate() {
            files.insert(format!("bench/app-{app}/{i:02}.yaml"), serde_saphyr::to_string(object).expect("yaml"));
        }
    }
    files
}

/// Fresh servers the first apply is measured on; each also times the passes below.
const SAMPLES: usize = 5;
/// Quiet passes and one-change passes timed on each server.
const PASSES: usize = 5;

/// `median (min–max)` of `times`, in milliseconds.
fn spread(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let desired = files(|_| "registry.example.com/app:1".to_string());
    let changed = files(|app| if app == 7 { "registry.example.com/app:2".into() } else { "registry.example.com/app:1".into() });
    let count = desired.len();
    let (mut firsts, mut quiets, mut ones) = (Vec::new(), Vec::new(), Vec::new());
    let mut quiet_lists = 0;
    // One sample of a pass of ~100 ms on a shared machine swings by half or more
    // (a scheduler hiccup, another build): each pass is timed several times and
    // the median reported, with the range.
    for _ in 0..SAMPLES {
        let fake = FakeKube::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, fake.kubeconfig()).expect("kubeconfig");
        let cluster = Cluster::connect(Some(&kubeconfig)).await.expect("connect");
        let mut inventory = Inventory::default();

        let started = Instant::now();
        let first = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 16).await;
        firsts.push(started.elapsed());
        assert_eq!(first.applied.len(), count, "{first:?}");

        for _ in 0..PASSES {
            let lists = fake.requests("list");
            let started = Instant::now();
            let quiet = heimdall_agent::sync_once(&cluster, &desired, &mut inventory, 16).await;
            quiets.push(started.elapsed());
            assert!(quiet.applied.is_empty());
            quiet_lists = fake.requests("list") - lists;
        }

        // Back and forth: each pass finds application 7 changed.
        for pass in 0..PASSES {
            let files = if pass % 2 == 0 { &changed } else { &desired };
            let started = Instant::now();
            let one = heimdall_agent::sync_once(&cluster, files, &mut inventory, 16).await;
            ones.push(started.elapsed());
            assert_eq!(one.applied.len(), 1);
        }
    }

    let (first, first_min, first_max) = spread(&mut firsts);
    let (quiet, quiet_min, quiet_max) = spread(&mut quiets);
    let (one, one_min, one_max) = spread(&mut ones);
    println!(
        "| Agent (fake API server, {count} objects, 16 in flight) | Median (min–max) of {} first applies, {} other passes |",
        firsts.len(),
        quiets.len()
    );
    println!("|---|---|");
    println!(
        "| first apply of {count} objects | {first:.0} ms ({:.0} objects/s; {first_min:.0}–{first_max:.0} ms) |",
        count as f64 / (first / 1e3)
    );
    println!("| quiet pass (drift check, {quiet_lists} LISTs, 0 writes) | {quiet:.1} ms ({quiet_min:.1}–{quiet_max:.1} ms) |");
    println!("| one changed application | {one:.1} ms ({one_min:.1}–{one_max:.1} ms) |");
}
