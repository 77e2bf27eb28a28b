//! A catalog of 100,000 Backstage entities for the benchmarks (catalog
//! queries, portal pages): 80,000 Components over 1,000 Systems and 400
//! owner Groups, 15,000 APIs, 3,000 Resources, the Systems, Groups and
//! 600 Users, related as real catalogs are.

use serde_json::{Value, json};

pub const COMPONENTS: usize = 80_000;
pub const APIS: usize = 15_000;
pub const RESOURCES: usize = 3_000;
pub const SYSTEMS: usize = 1_000;
pub const GROUPS: usize = 400;
pub const USERS: usize = 600;

pub fn document(index: usize) -> Value {
    let team = format!("team-{}", index % GROUPS);
    let system = format!("system-{}", index % SYSTEMS);
    let lifecycle = ["production", "experimental", "deprecated"][index % 3];
    let language = ["java", "go", "rust", "python"][index % 4];
    let type_ = ["service", "website", "library"][index % 3];
    if index < COMPONENTS {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": format!("service-{index}"), "title": format!("Service number {index}"),
                "description": format!("Handles {} for the {system} system", ["orders", "payments", "search", "carts"][index % 4]),
                "tags": [language, "http"], "annotations": {"heimdall.dev/application": format!("shop/service-{index}")}},
            "spec": {"type": type_, "lifecycle": lifecycle, "owner": team, "system": system,
                "providesApis": [format!("api-{}", index % APIS)], "dependsOn": [format!("resource:db-{}", index % RESOURCES)]}})
    } else if index < COMPONENTS + APIS {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": format!("api-{}", index - COMPONENTS)},
            "spec": {"type": "openapi", "lifecycle": lifecycle, "owner": team, "system": system, "definition": "openapi: 3.0.0"}})
    } else if index < COMPONENTS + APIS + RESOURCES {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": {"name": format!("db-{}", index - COMPONENTS - APIS)},
            "spec": {"type": "database", "owner": team, "system": system}})
    } else if index < COMPONENTS + APIS + RESOURCES + SYSTEMS {
        let n = index - COMPONENTS - APIS - RESOURCES;
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": format!("system-{n}")},
            "spec": {"owner": format!("team-{}", n % GROUPS)}})
    } else if index < COMPONENTS + APIS + RESOURCES + SYSTEMS + GROUPS {
        let n = index - COMPONENTS - APIS - RESOURCES - SYSTEMS;
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": format!("team-{n}")},
            "spec": {"type": "team", "children": []}})
    } else {
        let n = index - COMPONENTS - APIS - RESOURCES - SYSTEMS - GROUPS;
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": format!("user-{n}")},
            "spec": {"memberOf": [format!("team-{}", n % GROUPS)]}})
    }
}

/// How many entities [`document`] makes (indexes `0..TOTAL`).
pub const TOTAL: usize = COMPONENTS + APIS + RESOURCES + SYSTEMS + GROUPS + USERS;
