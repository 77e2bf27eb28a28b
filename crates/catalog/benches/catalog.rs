//! Catalog benchmarks. Run with `cargo bench -p heimdall-catalog --bench catalog`;
//! it prints a Markdown table for BENCHMARKS.md.
//!
//! 100,000 entities (80,000 Components over 2,000 Systems and 400 owner
//! Groups, 15,000 APIs, 3,000 Resources, the Groups, Systems and some
//! Users), each validated and ingested from 1,000 sources; then `by-query`
//! style queries (a filter, a filter on a relation, a full-text search,
//! each ordered by name and paged by 20) and facets, p50 and p99 over 200
//! runs each, and the peak memory of the process.

use std::time::{Duration, Instant};

use heimdall_catalog::query::{DEFAULT_TEXT_FIELDS, Filter, Order};
use heimdall_catalog::{Catalog, Entity, Query, validate};
use serde_json::Value;

use heimdall_testsupport::catalog_fixture::{APIS, COMPONENTS, GROUPS, RESOURCES, SYSTEMS, USERS, document};

const SOURCES: usize = 1_000;

/// p50 and p99 of `runs` runs of `work`.
fn percentiles(runs: usize, mut work: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut last = 0;
    for _ in 0..runs {
        let start = Instant::now();
        last = std::hint::black_box(work());
        times.push(start.elapsed());
    }
    times.sort();
    (times[runs / 2], times[runs * 99 / 100], last)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1_000_000.0)
}

fn main() {
    let total = COMPONENTS + APIS + RESOURCES + SYSTEMS + GROUPS + USERS;
    let documents: Vec<Value> = (0..total).map(document).collect();
    let start = Instant::now();
    let entities: Vec<Entity> = documents.iter().map(|d| validate(d).expect("valid")).collect();
    let validated = start.elapsed();
    drop(documents);
    let start = Instant::now();
    let mut catalog = Catalog::default();
    let mut by_source: Vec<Vec<Entity>> = (0..SOURCES).map(|_| Vec::new()).collect();
    for (i, entity) in entities.into_iter().enumerate() {
        by_source[i % SOURCES].push(entity);
    }
    for (i, entities) in by_source.into_iter().enumerate() {
        catalog.replace_source(&format!("url:https://git.example.com/repo-{i}/catalog-info.yaml"), entities);
    }
    let ingested = start.elapsed();
    assert_eq!(catalog.len(), total);

    let paged = |filters: &[&str], text: Option<&str>| Query {
        filter: Filter::parse(filters).expect("filter"),
        text: text.map(|t| (t.to_string(), DEFAULT_TEXT_FIELDS.iter().map(|s| s.to_string()).collect())),
        order: vec![Order::parse("metadata.name,asc").expect("order")],
        offset: 0,
        limit: Some(20),
    };
    let by_type = paged(&["kind=component,spec.type=service,spec.lifecycle=production"], None);
    let by_owner = paged(&["kind=component,relations.ownedBy=group:default/team-7"], None);
    let search = paged(&[], Some("search for the system-42 "));
    let (type_p50, type_p99, type_total) = percentiles(200, || catalog.query(&by_type).total);
    let (owner_p50, owner_p99, owner_total) = percentiles(20, || catalog.query(&by_owner).total);
    let (search_p50, search_p99, search_total) = percentiles(200, || catalog.query(&search).total);
    let facet_paths = vec!["kind".to_string(), "spec.type".to_string(), "spec.lifecycle".to_string(), "metadata.tags".to_string()];
    let all = Filter::default();
    let (facet_p50, facet_p99, _) = percentiles(50, || catalog.facets(&all, &facet_paths).len());
    let reference = heimdall_catalog::EntityRef::new("component", "default", "service-4242");
    let (get_p50, get_p99, _) = percentiles(2000, || catalog.get(&reference).map_or(0, |e| e.relations.len()));

    println!("| Benchmark ({total} entities) | Result |");
    println!("| --- | --- |");
    println!("| validate every entity (Backstage rules, references) | {:.2} s |", validated.as_secs_f64());
    println!("| ingest from {SOURCES} sources (relations both ways) | {:.2} s |", ingested.as_secs_f64());
    println!(
        "| by-query: kind + spec.type + lifecycle, ordered by name, first 20 of {type_total} | p50 {} / p99 {} |",
        ms(type_p50),
        ms(type_p99)
    );
    println!(
        "| by-query: components owned by one group (relation filter), first 20 of {owner_total} | p50 {} / p99 {} |",
        ms(owner_p50),
        ms(owner_p99)
    );
    println!(
        "| full-text search over name, title, description, tags, owner ({search_total} hits) | p50 {} / p99 {} |",
        ms(search_p50),
        ms(search_p99)
    );
    println!(
        "| entity-facets: kind, spec.type, spec.lifecycle, metadata.tags over everything | p50 {} / p99 {} |",
        ms(facet_p50),
        ms(facet_p99)
    );
    println!("| one entity by name with its relations | p50 {} / p99 {} |", us(get_p50), us(get_p99));
    println!("| peak resident memory of the process | {:.0} MiB |", heimdall_testsupport::peak_rss_mib());
}
