//! The hub's modules keep their layers: the domain (admission, rendering,
//! delivery, reconcile, fleet, claims, secrets, catalog, scaffolder, history,
//! repositories, and the state that holds them) never reaches the HTTP layer
//! (the API handlers, the portal, the OpenAPI document, git smart HTTP, the
//! server start-up): handlers and pages call the domain, never the reverse.

use heimdall_testsupport::layering::{Rule, module_graph, violations};

const HTTP: &[&str] = &["api", "portal", "openapi", "git", "server"];

const DOMAIN: &[&str] = &[
    "admission",
    "rendering",
    "delivery",
    "reconcile",
    "fleet",
    "claims",
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
