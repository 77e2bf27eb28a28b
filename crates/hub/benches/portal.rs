//! The portal's entity page over a catalog of 100,000 entities. Run with
//! `cargo bench -p heimdall-hub --bench portal`; it prints a Markdown table
//! for BENCHMARKS.md.
//!
//! Each run takes one component (of 1,000 spread over the catalog) with
//! its relations from the catalog, builds the page (about, relations
//! graph, three deployments, eight history rows) and renders the HTML:
//! what `GET /catalog/{namespace}/{kind}/{name}` does besides reading the
//! Application from the store.

use std::time::{Duration, Instant};

use askama::Template;
use heimdall_catalog::{Catalog, EntityRef, validate};
use heimdall_hub::auth::{Principal, Role};
use heimdall_hub::portal::view::{AppView, Deployment, HistoryRow};
use heimdall_testsupport::catalog_fixture::{COMPONENTS, TOTAL, document};

fn application(name: &str) -> AppView {
    let deployment = |environment: &str, cluster: &str| Deployment {
        environment: environment.into(),
        cluster: cluster.into(),
        state: "Ready".into(),
        sync: "Synced".into(),
        health: "Healthy".into(),
        revision: "4dc40974d5".into(),
        messages: vec![format!("Deployment shop/{name}: 3 of 3 replicas ready")],
    };
    AppView {
        namespace: "shop".into(),
        name: name.into(),
        phase: "Rendered".into(),
        deployments: vec![deployment("dev", "dev-eu-1"), deployment("staging", "staging-eu-1"), deployment("prod", "prod-eu-1")],
        history: (0..8)
            .map(|i| HistoryRow {
                revision: 1000 - i,
                at: "2026-11-21T12:00:00Z".into(),
                actor: "alice@example.com".into(),
                summary: "update".into(),
            })
            .collect(),
        may_rollback: true,
    }
}

fn main() {
    let mut catalog = Catalog::default();
    let entities = (0..TOTAL).map(|i| validate(&document(i)).expect("valid")).collect();
    catalog.replace_source("url:https://git.example.com/catalog-info.yaml", entities);
    let viewer = Principal { name: "alice@example.com".into(), roles: vec![Role::PlatformAdmin], groups: Vec::new() };
    let names: Vec<EntityRef> =
        (0..1000).map(|i| EntityRef::new("component", "default", &format!("service-{}", i * (COMPONENTS / 1000)))).collect();
    let mut times: Vec<Duration> = Vec::with_capacity(names.len() * 3);
    let mut bytes = 0;
    for _ in 0..3 {
        for reference in &names {
            let start = Instant::now();
            let entity = catalog.get(reference).expect("entity");
            let page =
                heimdall_hub::portal::entity_page(&viewer, &entity, Some(application(&reference.name)), String::new(), String::new());
            let html = page.render().expect("renders");
            times.push(start.elapsed());
            bytes = std::hint::black_box(html.len());
        }
    }
    times.sort();
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1_000_000.0);
    println!("| Benchmark ({TOTAL} entities) | Result |");
    println!("| --- | --- |");
    println!(
        "| entity page: entity and relations from the catalog, page built and rendered ({bytes} bytes of HTML) | p50 {} / p99 {} |",
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100])
    );
}
