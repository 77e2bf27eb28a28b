//! What the portal's pages show: one askama template per page, filled from
//! plain structs, so rendering is a pure function of what a handler read
//! (and can be benchmarked without a hub).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Principal;

/// The bar at the top of every page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user: String,
    pub admin: bool,
    pub active: &'static str,
}

impl Nav {
    pub fn of(principal: &Principal, active: &'static str) -> Nav {
        Nav { user: principal.name.clone(), admin: principal.is_platform_admin(), active }
    }
}

/// A link with a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: String,
    pub href: String,
}

pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal page does not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered; the hub's log has the details").into_response()
        }
    }
}

/// A part of a page, rendered to go inside another.
pub fn fragment<T: Template>(part: &T) -> String {
    part.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "portal fragment does not render");
        "<p class=\"error\">This part could not be rendered; the hub's log has the details.</p>".to_string()
    })
}

#[derive(Template)]
#[template(path = "portal/error.html")]
pub struct ErrorPage {
    /// Empty for someone not signed in: no bar.
    pub nav: Nav,
    pub status: u16,
    pub message: String,
}

pub fn error_page(viewer: Option<&Principal>, status: StatusCode, message: &str) -> Response {
    let nav = viewer.map_or(Nav { user: String::new(), admin: false, active: "" }, |p| Nav::of(p, ""));
    let page = ErrorPage { nav, status: status.as_u16(), message: message.to_string() };
    (status, render(&page)).into_response()
}

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
pub struct SignIn {
    pub sso: bool,
    pub return_to: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct EntityRow {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub type_: String,
    pub lifecycle: String,
    pub tags: Vec<String>,
    pub href: String,
}

#[derive(Debug, Clone)]
pub struct FacetOption {
    pub value: String,
    pub count: usize,
    pub selected: bool,
}

#[derive(Debug, Clone)]
pub struct FacetGroup {
    /// The query parameter (`kind`, `type`, `owner`, `lifecycle`, `tag`).
    pub param: &'static str,
    pub title: &'static str,
    pub options: Vec<FacetOption>,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
pub struct Home {
    pub nav: Nav,
    pub counts: Vec<(String, usize)>,
    pub apps: Vec<EntityRow>,
    pub templates: Vec<TemplateCard>,
}

#[derive(Template)]
#[template(path = "portal/catalog.html")]
pub struct Catalog {
    pub nav: Nav,
    pub q: String,
    pub facets: Vec<FacetGroup>,
    pub rows: Vec<EntityRow>,
    pub total: usize,
    pub more: Option<String>,
}

/// Only the results of [`Catalog`], for htmx's live search.
#[derive(Template)]
#[template(path = "portal/catalog_results.html")]
pub struct CatalogResults {
    pub rows: Vec<EntityRow>,
    pub total: usize,
    pub more: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RelationRow {
    pub type_: String,
    pub target: String,
    pub href: String,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub environment: String,
    pub cluster: String,
    pub state: String,
    pub sync: String,
    pub health: String,
    pub revision: String,
    pub messages: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub revision: i64,
    pub at: String,
    pub actor: String,
    pub summary: String,
}

#[derive(Debug, Clone)]
pub struct AppView {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub deployments: Vec<Deployment>,
    pub history: Vec<HistoryRow>,
    pub may_rollback: bool,
}

#[derive(Template)]
#[template(path = "portal/entity.html")]
pub struct EntityPage {
    pub nav: Nav,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub facts: Vec<(String, Link)>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub relations: Vec<RelationRow>,
    pub graph: String,
    pub provides: Vec<Link>,
    pub consumes: Vec<Link>,
    pub application: Option<AppView>,
    /// Why the application is not shown (no access), if it is not.
    pub application_note: String,
    pub notice: String,
}

#[derive(Debug, Clone)]
pub struct TemplateCard {
    pub title: String,
    pub description: String,
    pub type_: String,
    pub tags: Vec<String>,
    pub href: String,
}

#[derive(Template)]
#[template(path = "portal/templates.html")]
pub struct Templates {
    pub nav: Nav,
    pub cards: Vec<TemplateCard>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub title: String,
    pub description: String,
    /// `text`, `number` or `checkbox`; `select` when `options` are given.
    pub input: &'static str,
    pub required: bool,
    pub value: String,
    pub options: Vec<String>,
    pub pattern: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct FormPage {
    pub title: String,
    pub description: String,
    pub fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "portal/wizard.html")]
pub struct Wizard {
    pub nav: Nav,
    pub title: String,
    pub description: String,
    pub action: String,
    pub pages: Vec<FormPage>,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct LogRow {
    pub step: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "portal/task.html")]
pub struct TaskPage {
    pub nav: Nav,
    pub template: String,
    pub done: bool,
    /// The rendered [`TaskLog`].
    pub log: String,
}

/// The log of [`TaskPage`], alone when htmx polls it until the task is done.
#[derive(Template)]
#[template(path = "portal/task_log.html")]
pub struct TaskLog {
    pub id: String,
    pub status: String,
    pub log: Vec<LogRow>,
    pub done: bool,
    pub links: Vec<Link>,
    pub texts: Vec<(String, String)>,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct ClusterRow {
    pub name: String,
    pub labels: String,
    pub delivery: String,
    pub connection: String,
    pub last_heartbeat: String,
    pub version: String,
    pub sync: String,
    pub apps: usize,
    pub drift: String,
}

#[derive(Template)]
#[template(path = "portal/clusters.html")]
pub struct Clusters {
    pub nav: Nav,
    pub rows: Vec<ClusterRow>,
}

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub name: String,
    pub display: String,
    pub environments: String,
    pub members: usize,
    pub apps: usize,
}

#[derive(Template)]
#[template(path = "portal/tenants.html")]
pub struct Tenants {
    pub nav: Nav,
    pub rows: Vec<TenantRow>,
}

#[derive(Debug, Clone)]
pub struct SecretRow {
    pub secret: String,
    pub key: String,
    pub version: String,
    pub updated_by: String,
    pub updated_at: String,
}

#[derive(Template)]
#[template(path = "portal/tenant.html")]
pub struct TenantPage {
    pub nav: Nav,
    pub name: String,
    pub display: String,
    pub description: String,
    pub members: Vec<(String, String, String)>,
    pub environments: Vec<String>,
    pub quotas: Vec<(String, String)>,
    pub apps: Vec<Link>,
    pub secrets: Vec<SecretRow>,
    pub may_set_secrets: bool,
    pub notice: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub revision: i64,
    pub at: String,
    pub actor: String,
    pub verb: String,
    pub resource: String,
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
pub struct Audit {
    pub nav: Nav,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub actor: String,
    pub rows: Vec<AuditRow>,
    pub older: Option<String>,
}

pub use heimdall_api::url_encode;

/// The relations as a small graph: the entity in the middle, its neighbours
/// on a circle, an edge labelled with each relation. Plain SVG, escaped.
pub fn relation_graph(center: &str, relations: &[RelationRow]) -> String {
    let shown: Vec<&RelationRow> = relations.iter().take(16).collect();
    let (width, height) = (720.0_f64, if shown.len() > 8 { 420.0 } else { 320.0 });
    let (cx, cy) = (width / 2.0, height / 2.0);
    let (rx, ry) = (width / 2.0 - 110.0, height / 2.0 - 40.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" role="img" aria-label="Relations of {}" class="graph" xmlns="http://www.w3.org/2000/svg">"#,
        escape(center)
    );
    let mut nodes = String::new();
    for (i, relation) in shown.iter().enumerate() {
        let angle = std::f64::consts::TAU * i as f64 / shown.len().max(1) as f64 - std::f64::consts::FRAC_PI_2;
        let (x, y) = (cx + rx * angle.cos(), cy + ry * angle.sin());
        svg.push_str(&format!(r#"<line x1="{cx:.0}" y1="{cy:.0}" x2="{x:.0}" y2="{y:.0}" class="edge"/>"#));
        let (lx, ly) = ((cx + x) / 2.0, (cy + y) / 2.0);
        svg.push_str(&format!(r#"<text x="{lx:.0}" y="{ly:.0}" class="edge-label">{}</text>"#, escape(&relation.type_)));
        nodes.push_str(&format!(
            r#"<a href="{}"><rect x="{:.0}" y="{:.0}" width="200" height="28" rx="6" class="node"/><text x="{x:.0}" y="{:.0}" class="node-label">{}</text></a>"#,
            escape(&relation.href),
            x - 100.0,
            y - 14.0,
            y + 5.0,
            escape(&shorten(&relation.target, 30))
        ));
    }
    svg.push_str(&nodes);
    svg.push_str(&format!(
        r#"<rect x="{:.0}" y="{:.0}" width="220" height="32" rx="8" class="node center"/><text x="{cx:.0}" y="{:.0}" class="node-label">{}</text></svg>"#,
        cx - 110.0,
        cy - 16.0,
        cy + 5.0,
        escape(&shorten(center, 32))
    ));
    svg
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { format!("{}…", text.chars().take(max - 1).collect::<String>()) }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_escapes_names_and_links_each_neighbour() {
        let relations = vec![
            RelationRow { type_: "ownedBy".into(), target: "group:default/shop".into(), href: "/catalog/default/group/shop".into() },
            RelationRow { type_: "dependsOn".into(), target: "resource:default/<db>".into(), href: "/x?a=1&b=2".into() },
        ];
        let svg = relation_graph("component:shop/cart", &relations);
        assert!(svg.contains("&lt;db&gt;") && !svg.contains("<db>"), "{svg}");
        assert!(svg.contains(r#"href="/x?a=1&amp;b=2""#));
        assert_eq!(svg.matches("<line").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
