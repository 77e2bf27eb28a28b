//! Render benchmarks. Run with `cargo bench -p heimdall-render --bench render`;
//! it prints a Markdown table for BENCHMARKS.md.
//!
//! - one realistic application: 3 components, 6 traits, 3 environments,
//!   rendered with the example platform (org defaults and 4 Rego policies);
//! - a fleet of 10,000 such applications re-rendered one after another on
//!   one core, with and without the policies, and the process's peak memory.

use std::path::Path;
use std::time::{Duration, Instant};

use heimdall_model::{Resource, decode, parse_documents};
use heimdall_render::{Platform, RenderOptions, render};

const FLEET: usize = 10_000;

fn example_platform(with_policies: bool) -> Platform {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform");
    let mut resources = Vec::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read platform") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            for document in parse_documents(&text, &path.display().to_string()).expect("parse") {
                let resource = decode(&document.value, &document.source, "default").expect("valid").resource;
                if with_policies || resource.kind != "Policy" {
                    resources.push(resource);
                }
            }
        }
    }
    Platform::from_resources(&resources).expect("platform compiles")
}

fn application(index: usize) -> Resource {
    let yaml = format!(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: app-{index}
  namespace: team-{team}
spec:
  components:
    - name: api
      type: webservice
      properties:
        image: registry.example.com/team/api:1.{index}
        ports: [{{port: 8080, expose: true}}]
        cpu: 250m
        memory: 256Mi
        env: [{{name: MODE, value: production}}]
        readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}
      traits:
        - type: scaler
          properties: {{replicas: 2}}
        - type: gateway
          properties: {{domain: app-{index}.example.com, http: {{"/": 8080}}}}
        - type: labels
          properties: {{team: team-{team}}}
    - name: worker
      type: worker
      dependsOn: [api]
      properties:
        image: registry.example.com/team/worker:1.{index}
        memory: 512Mi
      traits:
        - type: env
          properties: {{env: {{QUEUE: orders, WORKERS: "4"}}}}
        - type: resource
          properties: {{cpu: 500m, memory: 512Mi}}
    - name: nightly
      type: cron-task
      properties:
        image: registry.example.com/team/report:1.{index}
        schedule: "0 3 * * *"
        memory: 128Mi
      traits:
        - type: annotations
          properties: {{owner: team-{team}}}
  policies:
    - {{name: dev, type: topology, properties: {{environment: dev}}}}
    - {{name: staging, type: topology, properties: {{environment: staging}}}}
    - {{name: prod, type: topology, properties: {{environment: prod}}}}
    - name: prod-scale
      type: override
      properties:
        components: [{{name: api, traits: [{{type: scaler, properties: {{replicas: 4}}}}]}}]
  workflow:
    steps:
      - {{name: dev, type: deploy, properties: {{policies: [dev]}}}}
      - {{name: staging, type: deploy, properties: {{policies: [staging]}}}}
      - {{name: prod, type: deploy, properties: {{policies: [prod, prod-scale]}}}}
"#,
        team = index % 50
    );
    let document = parse_documents(&yaml, "bench.yaml").expect("parse").remove(0);
    decode(&document.value, "bench.yaml", "default").expect("valid").resource
}

/// Median time of `runs` renders of one application.
fn single(platform: &Platform, runs: usize) -> Duration {
    let app = application(7);
    let options = RenderOptions::default();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let rendered = render(&app, "bench.yaml", platform, &options).expect("renders");
            assert_eq!(rendered.targets.len(), 3);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn fleet(platform: &Platform, apps: &[Resource]) -> (Duration, usize) {
    let options = RenderOptions::default();
    let started = Instant::now();
    let mut objects = 0;
    for app in apps {
        let rendered = render(app, "bench.yaml", platform, &options).expect("renders");
        objects += rendered.targets.iter().map(|t| t.objects.len()).sum::<usize>();
    }
    (started.elapsed(), objects)
}

fn main() {
    let with_policies = example_platform(true);
    let without_policies = example_platform(false);
    let one_with = single(&with_policies, 200);
    let one_without = single(&without_policies, 200);
    let apps: Vec<Resource> = (0..FLEET).map(application).collect();
    let (fleet_without, objects) = fleet(&without_policies, &apps);
    let (fleet_with, _) = fleet(&with_policies, &apps);
    let rate = |d: Duration| FLEET as f64 / d.as_secs_f64();
    println!("| Benchmark | Result |");
    println!("| --- | --- |");
    println!(
        "| one application (3 components, 6 traits, 3 environments), median of 200, no policies | {:.2} ms |",
        one_without.as_secs_f64() * 1e3
    );
    println!("| the same with the 4 example Rego policies | {:.2} ms |", one_with.as_secs_f64() * 1e3);
    println!(
        "| fleet of {FLEET} applications ({objects} objects), one core, no policies | {:.1} s, {:.0} apps/s |",
        fleet_without.as_secs_f64(),
        rate(fleet_without)
    );
    println!(
        "| fleet of {FLEET} applications, one core, with the 4 Rego policies | {:.1} s, {:.0} apps/s |",
        fleet_with.as_secs_f64(),
        rate(fleet_with)
    );
    println!(
        "| peak resident memory of the benchmark process (10,000 parsed applications held) | {:.0} MiB |",
        heimdall_testsupport::peak_rss_mib()
    );
}
