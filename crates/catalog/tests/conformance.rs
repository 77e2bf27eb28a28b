//! Walks the Backstage part of the shared conformance corpus: every entity
//! and template Backstage accepts is accepted (the template skeletons,
//! which hold `${{ values }}` placeholders, are not entities yet), the
//! invalid component is refused at its paths, and the relations Backstage
//! derives appear in both directions.

use std::path::{Path, PathBuf};

use heimdall_catalog::{Catalog, Entity, EntityRef, validate};
use heimdall_model::parse_documents;
use serde_json::Value;

fn backstage() -> PathBuf {
    heimdall_testsupport::conformance_dir().join("backstage")
}

use heimdall_testsupport::yaml_files;

fn documents(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    parse_documents(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}")).into_iter().map(|d| d.value).collect()
}

/// Every entity file of the corpus: the catalog examples and each template's `template.yaml`.
fn entity_files() -> Vec<PathBuf> {
    let mut files = yaml_files(&backstage().join("catalog"));
    files.extend(yaml_files(&backstage().join("templates")).into_iter().filter(|f| f.file_name().is_some_and(|n| n == "template.yaml")));
    files
}

/// One catalog from the corpus's examples folder (the create-app and demo
/// folders are catalogs of their own: they share entities such as user:guest).
fn load() -> Catalog {
    let mut catalog = Catalog::default();
    let mut failures = Vec::new();
    let examples = backstage().join("catalog/examples");
    for file in entity_files().into_iter().filter(|f| f.starts_with(&examples) || f.starts_with(backstage().join("templates"))) {
        let mut entities: Vec<Entity> = Vec::new();
        for (i, document) in documents(&file).iter().enumerate() {
            match validate(document) {
                Ok(entity) => entities.push(entity),
                Err(problems) => failures.push(format!("{}, document {}: {problems:?}", file.display(), i + 1)),
            }
        }
        let change = catalog.replace_source(&file.display().to_string(), entities);
        assert!(change.conflicts.is_empty(), "{}: {:?}", file.display(), change.conflicts);
    }
    assert!(failures.is_empty(), "Backstage accepts these:\n{}", failures.join("\n"));
    catalog
}

#[test]
fn every_backstage_entity_and_template_is_accepted() {
    let mut failures = Vec::new();
    let mut count = 0;
    for file in entity_files() {
        for (i, document) in documents(&file).iter().enumerate() {
            count += 1;
            if let Err(problems) = validate(document) {
                failures.push(format!("{}, document {}: {problems:?}", file.display(), i + 1));
            }
        }
    }
    assert!(failures.is_empty(), "Backstage accepts these:\n{}", failures.join("\n"));
    assert_eq!(count, 67, "every entity document of the corpus (the skeletons excepted)");
    let catalog = load();
    assert!(catalog.len() >= 50, "{} entities", catalog.len());
    let kinds: std::collections::BTreeSet<String> = catalog.references().map(|r| r.kind.clone()).collect();
    for kind in ["api", "component", "domain", "group", "location", "resource", "system", "template", "user"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
}

#[test]
fn the_invalid_component_is_refused_naming_each_field() {
    let file = backstage().join("invalid/invalid-component.yaml");
    let problems = validate(&documents(&file)[0]).expect_err("refused");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["metadata.name", "metadata.tags[1]"]);
    assert!(problems[0].message.contains("\"invalid component\" is not a valid name"), "{problems:?}");
}

fn has(catalog: &Catalog, entity: &str, relation: &str, target: &str) -> bool {
    let reference = EntityRef::parse(entity, None, "default").expect("reference");
    let entity = catalog.get(&reference).unwrap_or_else(|| panic!("no {entity}"));
    entity.relations.iter().any(|r| r.type_ == relation && r.target_ref == target)
}

#[test]
fn relations_are_derived_in_both_directions() {
    let catalog = load();
    let pairs = [
        ("component:petstore", "providesApi", "api:default/petstore"),
        ("api:petstore", "apiProvidedBy", "component:default/petstore"),
        ("component:petstore", "ownedBy", "group:default/team-c"),
        ("group:team-c", "ownerOf", "component:default/petstore"),
        ("group:team-c", "childOf", "group:default/boxoffice"),
        ("group:boxoffice", "parentOf", "group:default/team-c"),
        ("user:breanna.davison", "memberOf", "group:default/team-a"),
        ("group:team-a", "hasMember", "user:default/breanna.davison"),
        ("component:artist-lookup", "dependsOn", "resource:default/artists-db"),
        ("resource:artists-db", "dependencyOf", "component:default/artist-lookup"),
        ("component:artist-lookup", "partOf", "system:default/artist-engagement-portal"),
        ("system:artist-engagement-portal", "hasPart", "component:default/artist-lookup"),
        ("system:artist-engagement-portal", "partOf", "domain:default/artists"),
    ];
    let missing: Vec<String> = pairs.iter().filter(|(e, r, t)| !has(&catalog, e, r, t)).map(|(e, r, t)| format!("{e} {r} {t}")).collect();
    assert!(missing.is_empty(), "missing relations: {missing:?}");
}

#[test]
fn a_source_that_drops_an_entity_orphans_it_and_another_source_cannot_take_it() {
    let mut catalog = load();
    let file = backstage().join("catalog/examples/components/petstore-component.yaml");
    let source = file.display().to_string();
    let petstore = EntityRef::parse("component:petstore", None, "default").expect("reference");
    let stolen = validate(&documents(&file)[0]).expect("valid");
    let change = catalog.replace_source("somewhere-else", vec![stolen]);
    assert_eq!(change.conflicts, [(petstore.clone(), source.clone())]);

    let again = catalog.replace_source(&source, vec![validate(&documents(&file)[0]).expect("valid")]);
    assert_eq!((again.unchanged, again.updated.len(), again.added.len()), (1, 0, 0), "reading the same file changes nothing");
    let uid = catalog.get(&petstore).and_then(|e| e.metadata.uid).expect("a uid");
    assert_eq!(catalog.by_uid(&uid), Some(&petstore));

    let change = catalog.replace_source(&source, Vec::new());
    assert_eq!(change.orphaned, std::slice::from_ref(&petstore));
    let orphan = catalog.get(&petstore).expect("still there, flagged");
    assert_eq!(orphan.metadata.annotations.get("backstage.io/orphan").map(String::as_str), Some("true"));
    assert_eq!(catalog.remove_orphans(), std::slice::from_ref(&petstore));
    assert!(catalog.get(&petstore).is_none());
    assert!(!has(&catalog, "api:petstore", "apiProvidedBy", "component:default/petstore"), "inverse relations go with it");
}

fn names(page: &heimdall_catalog::Page) -> Vec<String> {
    page.items.iter().map(|e| e.metadata.name.clone()).collect()
}

#[test]
fn queries_filter_search_order_page_and_count_facets() {
    use heimdall_catalog::query::{DEFAULT_TEXT_FIELDS, Filter, Order};
    use heimdall_catalog::{Page, Query};
    let catalog = load();
    let query = |filters: &[&str], text: Option<&str>| Query {
        filter: Filter::parse(filters).expect("filter"),
        text: text.map(|t| (t.to_lowercase(), DEFAULT_TEXT_FIELDS.iter().map(|s| s.to_string()).collect())),
        order: vec![Order::parse("metadata.name,asc").expect("order")],
        ..Default::default()
    };
    let owned: Page = catalog.query(&query(&["kind=component,relations.ownedBy=group:default/team-c"], None));
    assert!(names(&owned).contains(&"petstore".to_string()), "{:?}", names(&owned));
    assert!(owned.items.iter().all(|e| e.kind == "Component" && e.spec_str("owner") == Some("team-c")), "{:?}", names(&owned));

    let searched = catalog.query(&query(&["kind=component"], Some("PETSTORE")));
    assert_eq!(names(&searched), ["petstore"]);

    let mut all_components = query(&["kind=component"], None);
    let total = catalog.query(&all_components).total;
    all_components.limit = Some(3);
    let first = catalog.query(&all_components);
    all_components.offset = 3;
    let second = catalog.query(&all_components);
    assert_eq!((first.total, first.items.len(), second.items.len()), (total, 3, 3.min(total - 3)));
    let mut sorted = names(&first);
    sorted.extend(names(&second));
    assert!(sorted.windows(2).all(|w| w[0].to_lowercase() <= w[1].to_lowercase()), "{sorted:?}");

    let facets = catalog.facets(&Filter::parse(&["kind=component"]).expect("filter"), &["spec.lifecycle".to_string()]);
    let counted: usize = facets["spec.lifecycle"].iter().map(|f| f.count).sum();
    assert_eq!(counted, total, "every component has one lifecycle: {facets:?}");
}

#[test]
fn the_index_answers_what_a_scan_of_every_entity_answers() {
    use heimdall_catalog::Query;
    use heimdall_catalog::query::{Fields, Filter};
    let mut catalog = load();
    // Change the catalog under the index: drop a source, so relations and ids are reused.
    let file = backstage().join("catalog/examples/acme/team-c-group.yaml");
    catalog.replace_source(&file.display().to_string(), Vec::new());
    catalog.remove_orphans();
    let everything: Vec<heimdall_catalog::Entity> = catalog.references().filter_map(|r| catalog.get(r)).collect();
    for filters in [
        vec!["kind=component"],
        vec!["kind=Component,spec.lifecycle=production"],
        vec!["kind=api", "kind=system"],
        vec!["relations.ownedBy=group:default/team-c"],
        vec!["relations.hasMember"],
        vec!["metadata.tags=java,kind=component"],
        vec!["spec.type=service,spec.type=website"],
        vec!["metadata.annotations.backstage.io/orphan"],
    ] {
        let filter = Filter::parse(&filters).expect("filter");
        let mut scanned: Vec<String> =
            everything.iter().filter(|e| filter.matches(&Fields::of(e))).map(|e| e.entity_ref().to_string()).collect();
        scanned.sort();
        let page = catalog.query(&Query { filter: filter.clone(), ..Default::default() });
        let mut indexed: Vec<String> = page.items.iter().map(|e| e.entity_ref().to_string()).collect();
        indexed.sort();
        assert_eq!(indexed, scanned, "{filters:?}");
        let facets = catalog.facets(&filter, &["kind".to_string()]);
        assert_eq!(facets["kind"].iter().map(|f| f.count).sum::<usize>(), scanned.len(), "{filters:?}");
    }
}
