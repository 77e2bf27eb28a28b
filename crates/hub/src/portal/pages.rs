//! The portal's pages: each reads what the API would give the viewer and
//! fills a view. Access is decided by [`crate::auth`] with the need of the
//! API route the page mirrors.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use heimdall_catalog::{Entity, EntityRef, Query as CatalogQuery};
use heimdall_model::status::{self, AppStatus, ClusterStatus};
use heimdall_model::{Resource, ResourceKey};
use heimdall_store::{AuditQuery, ListQuery};
use serde_json::{Map, Value, json};

use super::view::{self, Link, Nav};
use super::{Viewer, not_found};
use crate::auth::{self, Principal, route_need};
use crate::state::AppState;

fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Whether the viewer may do what the API route would let them do.
fn allowed(principal: &Principal, method: Method, route: &str, pairs: &[(&str, &str)]) -> bool {
    auth::require(principal, &route_need(&method, route, &params(pairs))).is_ok()
}

fn denied(principal: &Principal, error: crate::error::ApiError) -> Response {
    view::error_page(Some(principal), error.status_code(), &error.message)
}

fn text(value: &Value, pointer: &str) -> String {
    value.pointer(pointer).map(|v| v.as_str().map_or_else(|| v.to_string(), String::from)).unwrap_or_default()
}

/// A URL as a link target, or nothing (the label is shown as text) when
/// following it could run code in the portal (`javascript:`, `data:`).
fn safe_href(url: &str) -> String {
    if heimdall_catalog::is_safe_url(url) { url.to_string() } else { String::new() }
}

fn entity_href(reference: &EntityRef) -> String {
    format!("/catalog/{}/{}/{}", reference.namespace, reference.kind, reference.name)
}

fn row(entity: &Entity) -> view::EntityRow {
    view::EntityRow {
        kind: entity.kind.clone(),
        name: entity.metadata.name.clone(),
        namespace: entity.metadata.namespace.clone(),
        title: entity.metadata.title.clone().unwrap_or_default(),
        description: entity.metadata.description.clone().unwrap_or_default(),
        owner: entity.spec_str("owner").unwrap_or_default().to_string(),
        type_: entity.spec_str("type").unwrap_or_default().to_string(),
        lifecycle: entity.spec_str("lifecycle").unwrap_or_default().to_string(),
        tags: entity.metadata.tags.clone(),
        href: entity_href(&entity.entity_ref()),
    }
}

fn template_cards(state: &AppState) -> Vec<view::TemplateCard> {
    let query = CatalogQuery {
        filter: heimdall_catalog::query::Filter::parse(&["kind=template"]).unwrap_or_default(),
        order: vec![heimdall_catalog::query::Order { field: "metadata.name".into(), descending: false }],
        limit: Some(200),
        ..Default::default()
    };
    state
        .catalog
        .read(|catalog| catalog.query(&query))
        .items
        .iter()
        .map(|t| view::TemplateCard {
            title: t.metadata.title.clone().unwrap_or_else(|| t.metadata.name.clone()),
            description: t.metadata.description.clone().unwrap_or_default(),
            type_: t.spec_str("type").unwrap_or_default().to_string(),
            tags: t.metadata.tags.clone(),
            href: format!("/create/{}/{}", t.metadata.namespace, t.metadata.name),
        })
        .collect()
}

pub async fn home(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    let (counts, apps) = state.catalog.read(|catalog| {
        let facets = catalog.facets(&Default::default(), &["kind".to_string()]);
        let counts: Vec<(String, usize)> = facets.get("kind").into_iter().flatten().map(|f| (f.value.clone(), f.count)).collect();
        // "Your" services: components owned by the viewer's tenants (everything for the platform team).
        let owners: Vec<String> = principal
            .roles
            .iter()
            .filter_map(|r| match r {
                auth::Role::Tenant { tenant, .. } => Some(format!("spec.owner=group:default/{tenant}")),
                _ => None,
            })
            .collect();
        let filter = if principal.is_platform_admin() || owners.is_empty() {
            vec!["kind=component".to_string()]
        } else {
            owners.iter().map(|o| format!("kind=component,{o}")).collect()
        };
        let query = CatalogQuery {
            filter: heimdall_catalog::query::Filter::parse(&filter).unwrap_or_default(),
            order: vec![heimdall_catalog::query::Order { field: "metadata.name".into(), descending: false }],
            limit: Some(12),
            ..Default::default()
        };
        (counts, catalog.query(&query).items.iter().map(row).collect())
    });
    view::render(&view::Home {
        nav: Nav::of(&principal, "home"),
        counts,
        apps,
        templates: template_cards(&state).into_iter().take(3).collect(),
    })
}

const FACETS: &[(&str, &str, &str)] = &[
    ("kind", "Kind", "kind"),
    ("type", "Type", "spec.type"),
    ("owner", "Owner", "spec.owner"),
    ("lifecycle", "Lifecycle", "spec.lifecycle"),
    ("tag", "Tags", "metadata.tags"),
];
const PAGE: usize = 50;

/// `GET /catalog?q=&kind=&type=&owner=&lifecycle=&tag=&offset=`: filters and facets; htmx gets the results only.
pub async fn catalog(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let selected =
        |param: &str| -> Vec<String> { query.iter().filter(|(k, v)| k == param && !v.is_empty()).map(|(_, v)| v.to_lowercase()).collect() };
    let q = query.iter().find(|(k, _)| k == "q").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let offset: usize = query.iter().find(|(k, _)| k == "offset").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let conditions: Vec<String> =
        FACETS.iter().flat_map(|(param, _, field)| selected(param).into_iter().map(move |value| format!("{field}={value}"))).collect();
    let filter = if conditions.is_empty() { Vec::new() } else { vec![conditions.join(",")] };
    let filter = heimdall_catalog::query::Filter::parse(&filter).unwrap_or_default();
    let text_fields: Vec<String> = heimdall_catalog::query::DEFAULT_TEXT_FIELDS.iter().map(|f| f.to_string()).collect();
    let catalog_query = CatalogQuery {
        filter: filter.clone(),
        text: (!q.is_empty()).then(|| (q.to_lowercase(), text_fields)),
        order: vec![heimdall_catalog::query::Order { field: "metadata.name".into(), descending: false }],
        offset,
        limit: Some(PAGE),
    };
    let facet_fields: Vec<String> = FACETS.iter().map(|(_, _, field)| field.to_string()).collect();
    let (page, facet_counts) = state.catalog.read(|catalog| (catalog.query(&catalog_query), catalog.facets(&filter, &facet_fields)));
    let rows: Vec<view::EntityRow> = page.items.iter().map(row).collect();
    let more = (offset + rows.len() < page.total).then(|| {
        let mut next: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "offset").cloned().collect();
        next.push(("offset".into(), (offset + PAGE).to_string()));
        format!("/catalog?{}", next.iter().map(|(k, v)| format!("{k}={}", view::url_encode(v))).collect::<Vec<_>>().join("&"))
    });
    if headers.contains_key("hx-request") {
        return view::render(&view::CatalogResults { rows, total: page.total, more });
    }
    let facets = FACETS
        .iter()
        .map(|(param, title, field)| {
            let chosen = selected(param);
            let mut options: Vec<view::FacetOption> = facet_counts
                .get(*field)
                .into_iter()
                .flatten()
                .map(|f| view::FacetOption { value: f.value.clone(), count: f.count, selected: chosen.contains(&f.value.to_lowercase()) })
                .collect();
            options.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            options.truncate(30);
            view::FacetGroup { param, title, options }
        })
        .collect();
    view::render(&view::Catalog { nav: Nav::of(&principal, "catalog"), q, facets, rows, total: page.total, more })
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
}

/// `GET /catalog/{namespace}/{kind}/{name}`: the entity, its relations, and its Application's deployments.
pub async fn entity(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Query(notice): Query<Notice>,
) -> Response {
    let reference = EntityRef::new(&kind, &namespace, &name);
    let Some(entity) = state.catalog.read(|catalog| catalog.get(&reference)) else {
        return not_found(&principal, &format!("no entity {reference} in the catalog"));
    };
    let application = match crate::catalog::application_of(&entity) {
        Some(link) => application_view(&state, &principal, link).await,
        None => Ok(None),
    };
    let (application, application_note) = match application {
        Ok(app) => (app, String::new()),
        Err(note) => (None, note),
    };
    view::render(&entity_page(&principal, &entity, application, application_note, notice.notice.unwrap_or_default()))
}

/// The entity page from what was read (pure: the benchmark renders it).
pub fn entity_page(
    principal: &Principal,
    entity: &Entity,
    application: Option<view::AppView>,
    application_note: String,
    notice: String,
) -> view::EntityPage {
    let reference = entity.entity_ref();
    let link_to = |target: &str, kind: &str| -> Option<Link> {
        let target = EntityRef::parse(target, Some(kind), &entity.metadata.namespace).ok()?;
        Some(Link { label: target.to_string(), href: entity_href(&target) })
    };
    let mut facts = Vec::new();
    for (label, field, kind) in [("Owner", "owner", "group"), ("System", "system", "system"), ("Domain", "domain", "domain")] {
        if let Some(link) = entity.spec_str(field).and_then(|t| link_to(t, kind)) {
            facts.push((label.to_string(), link));
        }
    }
    for (label, field) in [("Type", "type"), ("Lifecycle", "lifecycle")] {
        if let Some(value) = entity.spec_str(field) {
            facts.push((label.to_string(), Link { label: value.to_string(), href: String::new() }));
        }
    }
    let relations: Vec<view::RelationRow> = entity
        .relations
        .iter()
        .map(|r| {
            let href = EntityRef::parse(&r.target_ref, None, "default").map(|t| entity_href(&t)).unwrap_or_default();
            view::RelationRow { type_: r.type_.clone(), target: r.target_ref.clone(), href }
        })
        .collect();
    let apis = |relation: &str| -> Vec<Link> {
        relations.iter().filter(|r| r.type_ == relation).map(|r| Link { label: r.target.clone(), href: r.href.clone() }).collect()
    };
    view::EntityPage {
        nav: Nav::of(principal, "catalog"),
        kind: entity.kind.clone(),
        namespace: entity.metadata.namespace.clone(),
        name: entity.metadata.name.clone(),
        title: entity.metadata.title.clone().unwrap_or_else(|| entity.metadata.name.clone()),
        description: entity.metadata.description.clone().unwrap_or_default(),
        facts,
        tags: entity.metadata.tags.clone(),
        links: entity
            .metadata
            .links
            .iter()
            .map(|l| Link { label: l.title.clone().unwrap_or_else(|| l.url.clone()), href: safe_href(&l.url) })
            .collect(),
        graph: view::relation_graph(&reference.to_string(), &relations),
        provides: apis("providesApi"),
        consumes: apis("consumesApi"),
        relations,
        application,
        application_note,
        notice,
    }
}

/// The deployments and recent history of `Application/<namespace>/<name>`, if the viewer may read it.
async fn application_view(
    state: &AppState,
    principal: &Principal,
    (kind, namespace, name): (&str, &str, &str),
) -> Result<Option<view::AppView>, String> {
    if !allowed(
        principal,
        Method::GET,
        "/api/v1/namespaces/{namespace}/{plural}/{name}",
        &[("namespace", namespace), ("plural", "applications")],
    ) {
        return Err(format!("You have no role in tenant {namespace}: its deployments are not shown."));
    }
    let app = match state.store.get(&ResourceKey::new(kind, namespace, name)).await {
        Ok(app) => app,
        Err(_) => return Err(format!("{kind} {namespace}/{name} is not on this hub (yet).")),
    };
    let status: AppStatus = status::status_of(&app);
    let mut deployments = Vec::new();
    for target in status.targets.iter().flatten() {
        let reported = status.clusters.get(&target.cluster).cloned().unwrap_or_default();
        deployments.push(view::Deployment {
            environment: target.environment.clone().unwrap_or_default(),
            cluster: target.cluster.clone(),
            state: target.state.clone(),
            sync: reported.sync,
            health: reported.health,
            revision: reported.revision.unwrap_or_default().chars().take(10).collect(),
            messages: target.messages.iter().chain(&reported.messages).cloned().collect(),
        });
    }
    let history = if kind == "Application" {
        let found = crate::history::history(state, namespace, name, Some(8)).await;
        found
            .map(|h| {
                h.items
                    .into_iter()
                    .map(|r| view::HistoryRow { revision: r.revision, at: r.at, actor: r.actor, summary: r.summary })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let may_rollback = kind == "Application"
        && allowed(principal, Method::POST, "/api/v1/namespaces/{namespace}/applications/{name}/rollback", &[("namespace", namespace)]);
    Ok(Some(view::AppView {
        namespace: namespace.to_string(),
        name: name.to_string(),
        phase: status.phase.unwrap_or_default(),
        deployments,
        history,
        may_rollback,
    }))
}

#[derive(Debug, serde::Deserialize)]
pub struct RollbackForm {
    revision: String,
}

/// `POST /catalog/.../rollback`: the API's rollback, as the viewer.
pub async fn rollback(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let reference = EntityRef::new(&kind, &namespace, &name);
    let Some(entity) = state.catalog.read(|catalog| catalog.get(&reference)) else {
        return not_found(&principal, &format!("no entity {reference}"));
    };
    let Some(("Application", app_namespace, app_name)) = crate::catalog::application_of(&entity) else {
        return not_found(&principal, "this entity runs no Application to roll back");
    };
    let need = route_need(
        &Method::POST,
        "/api/v1/namespaces/{namespace}/applications/{name}/rollback",
        &params(&[("namespace", app_namespace), ("name", app_name)]),
    );
    if let Err(error) = auth::require(&principal, &need) {
        return denied(&principal, error.into());
    }
    let result = crate::history::rollback(&state, &principal, app_namespace, app_name, &form.revision).await;
    let notice = match result {
        Ok(_) => format!("Rolled back to revision {}.", form.revision),
        Err(error) => format!("Rollback refused: {}", crate::error::ApiError::from(error).message),
    };
    Redirect::to(&format!("{}?notice={}", entity_href(&reference), view::url_encode(&notice))).into_response()
}

pub async fn templates(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    view::render(&view::Templates { nav: Nav::of(&principal, "create"), cards: template_cards(&state) })
}

/// The wizard's fields from the template's JSON Schema pages, with the values and errors of a refused try.
fn form_pages(
    template: &heimdall_scaffolder::Template,
    values: &Map<String, Value>,
    errors: &BTreeMap<String, String>,
    tenants: &[String],
) -> Vec<view::FormPage> {
    template
        .pages
        .iter()
        .enumerate()
        .map(|(i, page)| {
            let required: Vec<&str> =
                page.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let fields = page
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, property)| {
                    let kind = property.get("type").and_then(Value::as_str).unwrap_or("string");
                    let mut options: Vec<String> = property
                        .get("enum")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                        .collect();
                    // Backstage's OwnerPicker: the tenants the viewer may create for.
                    if options.is_empty() && property.get("ui:field").and_then(Value::as_str) == Some("OwnerPicker") {
                        options = tenants.to_vec();
                    }
                    let value = values
                        .get(name)
                        .or_else(|| property.get("default"))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                        .unwrap_or_default();
                    view::Field {
                        name: name.clone(),
                        title: property.get("title").and_then(Value::as_str).unwrap_or(name).to_string(),
                        description: property.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
                        input: if !options.is_empty() {
                            "select"
                        } else {
                            match kind {
                                "integer" | "number" => "number",
                                "boolean" => "checkbox",
                                _ => "text",
                            }
                        },
                        required: required.contains(&name.as_str()),
                        value,
                        options,
                        pattern: property.get("pattern").and_then(Value::as_str).unwrap_or_default().to_string(),
                        error: errors.get(name).cloned().unwrap_or_default(),
                    }
                })
                .collect();
            view::FormPage {
                title: page.get("title").and_then(Value::as_str).map_or_else(|| format!("Step {}", i + 1), String::from),
                description: page.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
                fields,
            }
        })
        .collect()
}

/// Tenants the viewer may create services for (developer or more).
async fn creatable_tenants(state: &AppState, principal: &Principal) -> Vec<String> {
    let tenants = state.store.list(&ListQuery { kind: "Tenant".into(), ..Default::default() }).await.map(|l| l.items).unwrap_or_default();
    tenants
        .into_iter()
        .map(|t| t.metadata.name)
        .filter(|t| {
            allowed(principal, Method::POST, "/api/v1/namespaces/{namespace}/{plural}", &[("namespace", t), ("plural", "applications")])
        })
        .collect()
}

/// The wizard of a template, with the values and errors of a refused try.
async fn wizard_page(
    state: &AppState,
    principal: &Principal,
    (entity, template): &(Entity, heimdall_scaffolder::Template),
    values: &Map<String, Value>,
    errors: &BTreeMap<String, String>,
    error: String,
) -> view::Wizard {
    let tenants = creatable_tenants(state, principal).await;
    view::Wizard {
        nav: Nav::of(principal, "create"),
        title: entity.metadata.title.clone().unwrap_or(template.name.clone()),
        description: entity.metadata.description.clone().unwrap_or_default(),
        action: format!("/create/{}/{}", entity.metadata.namespace, entity.metadata.name),
        pages: form_pages(template, values, errors, &tenants),
        error,
    }
}

pub async fn wizard(State(state): State<AppState>, Viewer(principal): Viewer, Path((namespace, name)): Path<(String, String)>) -> Response {
    let found = match crate::scaffolder::template(&state, &format!("template:{namespace}/{name}")) {
        Ok(found) => found,
        Err(error) => return denied(&principal, error.into()),
    };
    view::render(&wizard_page(&state, &principal, &found, &Map::new(), &BTreeMap::new(), String::new()).await)
}

/// `POST /create/{namespace}/{name}`: the form's values typed by the schema, then a task; refused values come back on the form.
pub async fn start_task(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path((namespace, name)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let found = match crate::scaffolder::template(&state, &format!("template:{namespace}/{name}")) {
        Ok(found) => found,
        Err(error) => return denied(&principal, error.into()),
    };
    let types: HashMap<String, String> = found
        .1
        .pages
        .iter()
        .filter_map(|p| p.get("properties").and_then(Value::as_object))
        .flatten()
        .map(|(k, p)| (k.clone(), p.get("type").and_then(Value::as_str).unwrap_or("string").to_string()))
        .collect();
    let mut values = Map::new();
    let mut errors = BTreeMap::new();
    for (key, raw) in &form {
        let Some(kind) = types.get(key) else { continue };
        let value = match kind.as_str() {
            _ if raw.is_empty() => continue,
            "integer" => raw.parse::<i64>().map(|n| json!(n)).map_err(|_| "expected a whole number"),
            "number" => raw.parse::<f64>().map(|n| json!(n)).map_err(|_| "expected a number"),
            "boolean" => Ok(json!(raw == "on" || raw == "true")),
            _ => Ok(json!(raw)),
        };
        match value {
            Ok(value) => {
                values.insert(key.clone(), value);
            }
            Err(message) => {
                errors.insert(key.clone(), message.to_string());
            }
        }
    }
    let refused = async |errors: BTreeMap<String, String>, message: String| {
        let page = wizard_page(&state, &principal, &found, &values, &errors, message).await;
        (StatusCode::UNPROCESSABLE_ENTITY, view::render(&page)).into_response()
    };
    if !errors.is_empty() {
        return refused(errors, "Some values are not right: see the fields below.".into()).await;
    }
    match crate::scaffolder::start(&state, &principal, &format!("template:{namespace}/{name}"), &values) {
        Ok(id) => Redirect::to(&format!("/tasks/{id}")).into_response(),
        Err(error) => {
            let error = crate::error::ApiError::from(error);
            let errors: BTreeMap<String, String> =
                error.details.iter().map(|d| (d.path.strip_prefix("values.").unwrap_or(&d.path).to_string(), d.message.clone())).collect();
            refused(errors, error.0.message).await
        }
    }
}

fn task_view(state: &AppState, principal: &Principal, id: &str) -> Option<(view::TaskLog, String)> {
    let task = state.tasks.get(id).filter(|t| auth::may_see_task(principal, &t.created_by))?;
    let log = task
        .events
        .iter()
        .filter(|e| e.type_ == "log")
        .map(|e| view::LogRow { step: text(&e.body, "/stepId"), message: text(&e.body, "/message") })
        .collect();
    let output = task.output.clone().unwrap_or_default();
    let links = output
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let label = text(l, "/title");
            if let Some(url) = l.get("url").and_then(Value::as_str) {
                return Some(Link { label, href: safe_href(url) });
            }
            let reference = EntityRef::parse(l.get("entityRef")?.as_str()?, None, "default").ok()?;
            Some(Link { label, href: entity_href(&reference) })
        })
        .collect();
    let texts =
        output.get("text").and_then(Value::as_array).into_iter().flatten().map(|t| (text(t, "/title"), text(t, "/content"))).collect();
    let error = task.events.iter().rev().find(|e| e.type_ == "completion").map(|e| text(&e.body, "/error/message")).unwrap_or_default();
    let template = text(&task.spec, "/templateInfo/entityRef");
    let status = serde_json::to_value(task.status).ok().and_then(|s| s.as_str().map(String::from)).unwrap_or_default();
    Some((view::TaskLog { id: task.id.clone(), status, log, done: task.status.is_done(), links, texts, error }, template))
}

pub async fn task(State(state): State<AppState>, Viewer(principal): Viewer, Path(id): Path<String>) -> Response {
    let Some((log, template)) = task_view(&state, &principal, &id) else { return not_found(&principal, &format!("no task {id}")) };
    view::render(&view::TaskPage { nav: Nav::of(&principal, "create"), template, done: log.done, log: view::fragment(&log) })
}

/// `GET /tasks/{id}/log`: the log alone, for htmx to poll.
pub async fn task_log(State(state): State<AppState>, Viewer(principal): Viewer, Path(id): Path<String>) -> Response {
    match task_view(&state, &principal, &id) {
        Some((log, _)) => view::render(&log),
        None => not_found(&principal, &format!("no task {id}")),
    }
}

pub async fn clusters(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    let clusters = match state.store.list(&ListQuery { kind: "Cluster".into(), ..Default::default() }).await {
        Ok(list) => list.items,
        Err(e) => return denied(&principal, e.into()),
    };
    let rows = clusters
        .iter()
        .filter(|c| principal.may_read(c))
        .map(|cluster| {
            let agent = status::status_of::<ClusterStatus>(cluster).agent.unwrap_or_default();
            let drift = agent.drift.as_ref().map_or_else(String::new, |d| match d {
                Value::Array(items) => format!("{} object(s)", items.len()),
                Value::Object(map) => map.get("objects").map_or_else(|| format!("{} object(s)", map.len()), |v| v.to_string()),
                other => other.to_string(),
            });
            let apps = state.repos.folder_set(&cluster.metadata.name).map(|f| f.len()).unwrap_or(0);
            view::ClusterRow {
                name: cluster.metadata.name.clone(),
                labels: cluster.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                delivery: cluster.spec.get("delivery").and_then(Value::as_str).unwrap_or("agent").to_string(),
                connection: agent.connection.clone().unwrap_or_else(|| "Never connected".into()),
                last_heartbeat: agent.last_heartbeat.clone().unwrap_or_default(),
                version: agent.facts.as_ref().map(|facts| text(facts, "/kubernetesVersion")).unwrap_or_default(),
                sync: agent.sync.clone().unwrap_or_default(),
                apps,
                drift,
            }
        })
        .collect();
    view::render(&view::Clusters { nav: Nav::of(&principal, "clusters"), rows })
}

async fn list(state: &AppState, kind: &str, namespace: Option<&str>) -> Result<Vec<Resource>, crate::error::ApiError> {
    Ok(state.store.list(&ListQuery { kind: kind.into(), namespace: namespace.map(String::from), ..Default::default() }).await?.items)
}

pub async fn tenants(State(state): State<AppState>, Viewer(principal): Viewer) -> Response {
    let (tenants, apps) = match (list(&state, "Tenant", None).await, list(&state, "Application", None).await) {
        (Ok(t), Ok(a)) => (t, a),
        (Err(e), _) | (_, Err(e)) => return denied(&principal, e),
    };
    let rows = tenants
        .iter()
        .filter(|t| principal.may_read(t))
        .map(|tenant| {
            let name = &tenant.metadata.name;
            view::TenantRow {
                name: name.clone(),
                display: tenant.spec.get("displayName").and_then(Value::as_str).unwrap_or(name).to_string(),
                environments: tenant
                    .spec
                    .get("environments")
                    .and_then(Value::as_array)
                    .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                members: tenant.spec.get("members").and_then(Value::as_array).map_or(0, Vec::len),
                apps: apps.iter().filter(|a| a.metadata.namespace.as_deref() == Some(name)).count(),
            }
        })
        .collect();
    view::render(&view::Tenants { nav: Nav::of(&principal, "tenants"), rows })
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TenantNotice {
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

pub async fn tenant(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(name): Path<String>,
    Query(notice): Query<TenantNotice>,
) -> Response {
    let need = route_need(&Method::GET, "/api/v1/{plural}/{name}", &params(&[("plural", "tenants"), ("name", &name)]));
    if let Err(error) = auth::require(&principal, &need) {
        return denied(&principal, error.into());
    }
    let tenant = match state.store.get(&ResourceKey::new("Tenant", "", &name)).await {
        Ok(tenant) => tenant,
        Err(_) => return not_found(&principal, &format!("no tenant {name}")),
    };
    let (apps, secrets) =
        match (list(&state, "Application", Some(&name)).await, list(&state, heimdall_store::SECRET_KIND, Some(&name)).await) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => return denied(&principal, e),
        };
    let spec = &tenant.spec;
    let members = spec
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| (text(m, "/kind"), text(m, "/name"), text(m, "/role")))
        .collect();
    let quotas = spec
        .get("quotas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(environment, quota)| {
            let mut parts: Vec<String> =
                ["cpu", "memory", "storage"].iter().filter_map(|k| quota.get(*k).map(|v| format!("{k} {}", text(v, "")))).collect();
            for (object, count) in quota.get("objects").and_then(Value::as_object).into_iter().flatten() {
                parts.push(format!("{object} {count}"));
            }
            (environment.clone(), parts.join(", "))
        })
        .collect();
    let mut secret_rows = Vec::new();
    for secret in &secrets {
        for (key, info) in secret.spec.get("keys").and_then(Value::as_object).into_iter().flatten() {
            secret_rows.push(view::SecretRow {
                secret: secret.metadata.name.clone(),
                key: key.clone(),
                version: text(info, "/version"),
                updated_by: text(info, "/updatedBy"),
                updated_at: text(info, "/updatedAt"),
            });
        }
    }
    let may_set_secrets =
        allowed(&principal, Method::PUT, "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}", &[("namespace", &name)]);
    view::render(&view::TenantPage {
        nav: Nav::of(&principal, "tenants"),
        display: spec.get("displayName").and_then(Value::as_str).unwrap_or(&name).to_string(),
        description: text(spec, "/description"),
        members,
        environments: spec
            .get("environments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        quotas,
        apps: apps
            .iter()
            .map(|a| Link { label: a.metadata.name.clone(), href: format!("/catalog/{name}/component/{}", a.metadata.name) })
            .collect(),
        secrets: secret_rows,
        may_set_secrets,
        notice: notice.notice.unwrap_or_default(),
        error: notice.error.unwrap_or_default(),
        name,
    })
}

#[derive(serde::Deserialize)]
pub struct SecretForm {
    secret: String,
    key: String,
    value: String,
}

impl Drop for SecretForm {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

/// `POST /tenants/{name}/secrets`: the API's write-only set, as the viewer. The value is never shown back.
pub async fn set_secret(
    State(state): State<AppState>,
    Viewer(principal): Viewer,
    Path(name): Path<String>,
    Form(form): Form<SecretForm>,
) -> Response {
    let back = |field: &str, message: &str| {
        Redirect::to(&format!("/tenants/{name}?{field}={}#secrets", view::url_encode(message))).into_response()
    };
    let need = route_need(
        &Method::PUT,
        "/api/v1/namespaces/{namespace}/secrets/{name}/keys/{key}",
        &params(&[("namespace", &name), ("name", &form.secret), ("key", &form.key)]),
    );
    if let Err(error) = auth::require(&principal, &need) {
        return denied(&principal, error.into());
    }
    let value = zeroize::Zeroizing::new(form.value.as_bytes().to_vec());
    let result = crate::secret_values::set_key(&state, &principal, &name, &form.secret, &form.key, value).await;
    match result {
        Ok(change) => {
            back("notice", &format!("Set {}/{} key {} (version {}).", name, form.secret, form.key, text(&json!(change), "/version")))
        }
        Err(error) => back("error", &crate::error::ApiError::from(error).describe()),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    before: Option<i64>,
}

pub async fn audit(State(state): State<AppState>, Viewer(principal): Viewer, Query(filters): Query<AuditParams>) -> Response {
    if let Err(error) = auth::require(&principal, &route_need(&Method::GET, "/api/v1/audit", &HashMap::new())) {
        return denied(&principal, error.into());
    }
    let kind = match filters.kind.trim() {
        "" => None,
        name => match heimdall_model::kinds::by_name(name) {
            Some(info) => Some(info.kind.to_string()),
            None => return view::error_page(Some(&principal), StatusCode::BAD_REQUEST, &format!("unknown kind {name:?}")),
        },
    };
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let query =
        AuditQuery { kind, namespace: non_empty(&filters.namespace), name: non_empty(&filters.name), before: filters.before, limit: 100 };
    let events = match state.store.audit(&query).await {
        Ok(events) => events,
        Err(e) => return denied(&principal, e.into()),
    };
    let older = (events.len() == 100).then(|| events.last().map(|e| e.revision)).flatten().map(|before| {
        format!(
            "/audit?kind={}&namespace={}&name={}&actor={}&before={before}",
            view::url_encode(&filters.kind),
            view::url_encode(&filters.namespace),
            view::url_encode(&filters.name),
            view::url_encode(&filters.actor)
        )
    });
    let actor = filters.actor.trim().to_lowercase();
    let rows = events
        .into_iter()
        .filter(|e| actor.is_empty() || e.actor.to_lowercase().contains(&actor))
        .map(|e| view::AuditRow {
            revision: e.revision,
            at: e.at,
            actor: e.actor,
            verb: e.verb,
            resource: if e.namespace.is_empty() {
                format!("{}/{}", e.kind, e.name)
            } else {
                format!("{}/{}/{}", e.kind, e.namespace, e.name)
            },
        })
        .collect();
    view::render(&view::Audit {
        nav: Nav::of(&principal, "audit"),
        kind: filters.kind,
        namespace: filters.namespace,
        name: filters.name,
        actor: filters.actor,
        rows,
        older,
    })
}
