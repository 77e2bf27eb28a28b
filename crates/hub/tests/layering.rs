//! The hub's modules keep their layers: the domain (admission, rendering,
//! delivery, reconcile, fleet, claims, secrets, catalog, scaffolder, history,
//! repositories, and the state that holds them) never reaches the HTTP layer
//! (the API handlers, the portal, the OpenAPI document, git smart HTTP, the
//! server start-up): handlers and pages call the domain, never the reverse.
//! And no two modules reach each other: a cycle makes two concepts one.

use heimdall_testsupport::layering::{Rule, module_graph, rust_sources, violations};

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

/// Who may do what is decided in `auth`: no other module builds a need from
/// its parts, compares a principal's roles or grants the platform role. What
/// only shows a principal's rights (not deciding anything) is listed here.
#[test]
fn authorization_rules_live_in_auth() {
    const RULE_MAKING: &[&str] = &["Need::Tenant", "Need::PlatformAdmin", "role_in(", "Role::PlatformAdmin", "is_platform_admin()"];
    // (file, the line as it stands, why it decides nothing): a new line needs its own entry.
    const SHOWS_ONLY: &[(&str, &str, &str)] = &[
        ("identity.rs", "roles.push(Role::PlatformAdmin);", "the identity provider's platform-admin groups become the role"),
        (
            "api/sign_in.rs",
            "Json(WhoAmI { name: principal.name.clone(), platform_admin: principal.is_platform_admin(), tenants, groups: principal.groups })",
            "whoami tells the CLI what it is",
        ),
        (
            "portal/view.rs",
            "Nav { user: principal.name.clone(), admin: principal.is_platform_admin(), active }",
            "the menu shows the platform pages",
        ),
        (
            "portal/pages.rs",
            "let filter = if principal.is_platform_admin() || owners.is_empty() {",
            "the catalog page's default filter (the API answers by its own rules)",
        ),
    ];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (path, code) in rust_sources(&src).expect("sources") {
        let file = path.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        if file == "auth.rs" {
            continue;
        }
        for (number, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for rule in RULE_MAKING.iter().filter(|r| line.contains(**r)) {
                if !SHOWS_ONLY.iter().any(|(f, shown, _)| *f == file && *shown == line.trim()) {
                    found.push(format!("{file}:{}: {rule}", number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "authorization decided outside auth (add a rule to auth and call it):\n{}", found.join("\n"));
}

/// The control core names no HTTP type: these modules take and return domain
/// values and their own errors, and the HTTP layer maps them (`error.rs`,
/// `api/*`). A module with submodules is checked file by file. The list
/// only grows; ARCHITECTURE.md says why `auth` is not on it.
#[test]
fn the_core_names_no_http_type() {
    const CORE: &[&str] = &[
        "actors",
        "admission",
        "rejection",
        "rendering",
        "claims",
        "delivery",
        "reconcile",
        "fleet",
        "migrations",
        "history",
        "repositories",
        "secrets",
        "secret_values",
        "catalog",
        "scaffolder",
        "identity",
        "oidc",
        "state",
    ];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let sources = rust_sources(&src).expect("sources");
    for module in CORE {
        let (file, folder) = (src.join(format!("{module}.rs")), src.join(module));
        let files: Vec<&(std::path::PathBuf, String)> =
            sources.iter().filter(|(path, _)| *path == file || path.starts_with(&folder)).collect();
        assert!(!files.is_empty(), "module {module} has no source under {}", src.display());
        for (path, code) in files {
            let file = path.strip_prefix(&src).unwrap_or(path).display().to_string();
            for (number, line) in code.lines().enumerate() {
                let line = line.split("//").next().unwrap_or_default();
                if ["axum", "hyper", "http::", "StatusCode", "IntoResponse", "ApiError"].iter().any(|word| line.contains(word)) {
                    found.push(format!("{file}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "HTTP in the control core (return a domain error; map it in api):\n{}", found.join("\n"));
}
