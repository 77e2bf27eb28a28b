//! The hub's modules keep their layers: the domain (admission, rendering,
//! delivery, reconcile, fleet, claims, secrets, catalog, scaffolder, history,
//! repositories, and the state that holds them) never reaches the HTTP layer
//! (the API handlers, the portal, the OpenAPI document, git smart HTTP, the
//! server start-up): handlers and pages call the domain, never the reverse.
//! And no two modules reach each other: a cycle makes two concepts one.

use heimdall_testsupport::layering::{Rule, module_graph, violations};

const HTTP: &[&str] = &["api", "portal", "git", "server"];

const DOMAIN: &[&str] = &[
    "actors",
    "auth",
    "admission",
    "rendering",
    "delivery",
    "reconcile",
    "fleet",
    "claims",
    "migrations",
    "secret_values",
    "secrets",
    "catalog",
    "scaffolder",
    "history",
    "repositories",
    "state",
];

#[test]
fn the_domain_never_reaches_the_http_layer() {
    let graph = module_graph(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).expect("module graph");
    let rules: Vec<Rule> = DOMAIN
        .iter()
        .map(|from| Rule {
            from,
            forbidden: HTTP,
            why: "the HTTP layer calls the domain; a domain module needing a handler's logic moves it into the domain",
        })
        .collect();
    let broken = violations(&graph, &rules);
    assert!(broken.is_empty(), "the domain reaches the HTTP layer:\n{}", broken.join("\n"));
}

/// `state` holds a handle of every concept (it is the composition root), so
/// every module reads it and it names every module's type; apart from it,
/// modules reach each other in one direction only.
#[test]
fn the_modules_form_no_cycle() {
    let graph = module_graph(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).expect("module graph").without("state");
    let cycles: Vec<String> = graph
        .cycles()
        .iter()
        .map(|members| {
            let edges: Vec<String> = members
                .iter()
                .flat_map(|from| {
                    graph.edges_from(from).filter(|to| members.iter().any(|m| m == to)).map(move |to| format!("{from} → {to}"))
                })
                .collect();
            format!("{}: {}", members.join(", "), edges.join(", "))
        })
        .collect();
    assert!(cycles.is_empty(), "modules that reach each other (move what both need below both):\n{}", cycles.join("\n"));
}
