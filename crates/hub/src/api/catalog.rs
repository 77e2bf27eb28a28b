//! Backstage's catalog REST API under `/api/catalog`: queries with
//! Backstage's parameters and cursors over the hub's software catalog.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use heimdall_catalog::query::{DEFAULT_TEXT_FIELDS, Filter, Order};
use heimdall_catalog::{Entity, EntityRef, Query, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// Query parameters, repeated ones kept in order (`filter=a&filter=b`).
fn parameters(raw: Option<String>) -> BTreeMap<String, Vec<String>> {
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        parameters.entry(key.into_owned()).or_default().push(value.into_owned());
    }
    parameters
}

fn list(parameters: &BTreeMap<String, Vec<String>>, key: &str) -> Vec<String> {
    // `fields=a,b` and `fields=a&fields=b` mean the same.
    parameters.get(key).into_iter().flatten().flat_map(|v| v.split(',')).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

fn number(parameters: &BTreeMap<String, Vec<String>>, key: &str) -> Result<Option<usize>, ApiError> {
    parameters
        .get(key)
        .and_then(|v| v.first())
        .map(|v| v.parse::<usize>().map_err(|_| ApiError::invalid_field(key, format!("expected a number, got {v:?}"))))
        .transpose()
}

fn bad_request(field: &str, message: String) -> ApiError {
    let mut error = ApiError::invalid_field(field, message);
    error.status = 400;
    error
}

/// Keeps only `fields` (dot paths) of an entity, as Backstage's `fields` parameter does.
fn project(entity: &Entity, fields: &[String]) -> Value {
    let full = serde_json::to_value(entity).unwrap_or(Value::Null);
    if fields.is_empty() {
        return full;
    }
    let mut out = json!({});
    for field in fields {
        let parts: Vec<&str> = field.split('.').collect();
        let Some(value) = parts.iter().try_fold(&full, |v, part| v.get(part)) else { continue };
        let mut slot = &mut out;
        for part in &parts[..parts.len() - 1] {
            if !slot.get(part).is_some_and(Value::is_object) {
                slot[*part] = json!({});
            }
            slot = &mut slot[*part];
        }
        if let Some(last) = parts.last() {
            slot[*last] = value.clone();
        }
    }
    out
}

/// What a `by-query` cursor carries: the query it continues and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    /// A predicate query (`POST /entities/by-query`); `filter` is unused then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Value>,
    filter: Vec<String>,
    order: Vec<String>,
    term: Option<String>,
    text_fields: Vec<String>,
    offset: usize,
}

impl Cursor {
    fn encode(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        // Backstage's client reads a predicate cursor with atob() to send it back by POST: standard base64 then.
        if self.query.is_some() { STANDARD.encode(bytes) } else { URL_SAFE_NO_PAD.encode(bytes) }
    }

    fn decode(text: &str) -> Result<Cursor, ApiError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| STANDARD.decode(text))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| bad_request("cursor", "not a cursor this catalog gave out".into()))
    }

    fn query(&self, limit: Option<usize>) -> Result<Query, ApiError> {
        let order = self.order.iter().map(|o| Order::parse(o).map_err(|e| bad_request("orderField", e))).collect::<Result<_, _>>()?;
        let text_fields = if self.text_fields.is_empty() {
            DEFAULT_TEXT_FIELDS.iter().map(|s| s.to_string()).collect()
        } else {
            self.text_fields.iter().map(|f| f.to_lowercase()).collect()
        };
        let filter = match &self.query {
            Some(predicate) => Filter::from_predicate(predicate).map_err(|(path, message)| bad_request(&path, message))?,
            None => Filter::parse(&self.filter).map_err(|e| bad_request("filter", e))?,
        };
        Ok(Query {
            filter,
            text: self.term.as_ref().filter(|t| !t.trim().is_empty()).map(|t| (t.trim().to_lowercase(), text_fields)),
            order,
            offset: self.offset,
            limit,
        })
    }
}

/// `GET /api/catalog/entities/by-query`: Backstage's paged query.
#[utoipa::path(get, path = "/api/catalog/entities/by-query", tag = "catalog", params(("filter" = Option<String>, Query, description = "Backstage filter sets: kind=component,spec.type=service (repeat for OR)"), ("fullTextFilterTerm" = Option<String>, Query), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query), ("orderField" = Option<String>, Query)), responses((status = 200, description = "{items, totalItems, pageInfo}", body = Object), (status = 400, body = ApiError)))]
pub async fn by_query(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let parameters = parameters(raw);
    let limit = number(&parameters, "limit")?.unwrap_or(20).clamp(1, 1000);
    let cursor = match parameters.get("cursor").and_then(|c| c.first()) {
        Some(cursor) => Cursor::decode(cursor)?,
        None => Cursor {
            query: None,
            filter: parameters.get("filter").cloned().unwrap_or_default(),
            order: parameters.get("orderField").cloned().unwrap_or_default(),
            term: parameters.get("fullTextFilterTerm").and_then(|t| t.first()).cloned(),
            text_fields: list(&parameters, "fullTextFilterFields"),
            offset: number(&parameters, "offset")?.unwrap_or(0),
        },
    };
    page_of(&state, cursor, limit, &list(&parameters, "fields"))
}

/// One page of a query and the cursors around it.
fn page_of(state: &AppState, cursor: Cursor, limit: usize, fields: &[String]) -> Result<Json<Value>, ApiError> {
    let query = cursor.query(Some(limit))?;
    let page = state.catalog.read(|catalog| catalog.query(&query));
    let mut page_info = json!({});
    if cursor.offset + page.items.len() < page.total {
        page_info["nextCursor"] = json!(Cursor { offset: cursor.offset + limit, ..cursor.clone() }.encode());
    }
    if cursor.offset > 0 {
        page_info["prevCursor"] = json!(Cursor { offset: cursor.offset.saturating_sub(limit), ..cursor.clone() }.encode());
    }
    Ok(Json(json!({
        "items": page.items.iter().map(|e| project(e, fields)).collect::<Vec<_>>(),
        "totalItems": page.total,
        "pageInfo": page_info,
    })))
}

#[derive(Debug, Deserialize)]
pub struct OrderBy {
    field: String,
    #[serde(default)]
    order: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FullTextFilter {
    #[serde(default)]
    term: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// The body of `POST /entities/by-query` (newer Backstage clients).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredicateQuery {
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    #[serde(default)]
    full_text_filter: Option<FullTextFilter>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `POST /api/catalog/entities/by-query`: the paged query with a predicate (`$all`, `$any`, `$in`, `$exists`).
#[utoipa::path(post, path = "/api/catalog/entities/by-query", tag = "catalog", request_body(content = Object, description = "{query: predicate ($all, $any, $in, $exists), orderBy, limit, cursor}"), responses((status = 200, body = Object), (status = 400, body = ApiError)))]
pub async fn by_predicate(State(state): State<AppState>, Json(request): Json<PredicateQuery>) -> Result<Json<Value>, ApiError> {
    let limit = request.limit.unwrap_or(20).clamp(1, 1000);
    let cursor = match &request.cursor {
        Some(cursor) => Cursor::decode(cursor)?,
        None => {
            let text = request.full_text_filter.unwrap_or_default();
            Cursor {
                query: Some(request.query.unwrap_or_else(|| json!({}))),
                filter: Vec::new(),
                order: request.order_by.iter().map(|o| format!("{},{}", o.field, o.order.as_deref().unwrap_or("asc"))).collect(),
                term: text.term,
                text_fields: text.fields,
                offset: 0,
            }
        }
    };
    page_of(&state, cursor, limit, &request.fields)
}

/// `GET /api/catalog/entities`: the older list (filter, fields, offset, limit, order).
#[utoipa::path(get, path = "/api/catalog/entities", tag = "catalog", params(("filter" = Option<String>, Query), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, description = "entities", body = Vec<Object>)))]
pub async fn entities(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Vec<Value>>, ApiError> {
    let parameters = parameters(raw);
    let query = Cursor {
        query: None,
        filter: parameters.get("filter").cloned().unwrap_or_default(),
        // Backstage writes `order=asc:metadata.name` here.
        order: list(&parameters, "order")
            .into_iter()
            .map(|o| match o.split_once(':') {
                Some((direction, field)) => format!("{field},{direction}"),
                None => o,
            })
            .collect(),
        term: None,
        text_fields: Vec::new(),
        offset: number(&parameters, "offset")?.unwrap_or(0),
    }
    .query(number(&parameters, "limit")?)?;
    let fields = list(&parameters, "fields");
    let page = state.catalog.read(|catalog| catalog.query(&query));
    Ok(Json(page.items.iter().map(|e| project(e, &fields)).collect()))
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}", tag = "catalog", params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)), responses((status = 200, description = "the entity", body = Object), (status = 404, body = ApiError)))]
pub async fn by_name(
    State(state): State<AppState>,
    UrlPath((kind, namespace, name)): UrlPath<(String, String, String)>,
) -> Result<Json<Entity>, ApiError> {
    let reference = EntityRef::new(&kind, &namespace, &name);
    state.catalog.read(|catalog| catalog.get(&reference)).map(Json).ok_or_else(|| ApiError::not_found(format!("no entity {reference}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// `GET /api/catalog/entities/by-uid/{uid}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)), responses((status = 200, description = "the entity", body = Object), (status = 404, body = ApiError)))]
pub async fn by_uid(State(state): State<AppState>, UrlPath(uid): UrlPath<String>) -> Result<Json<Entity>, ApiError> {
    state
        .catalog
        .read(|catalog| catalog.by_uid(&uid).and_then(|reference| catalog.get(reference)))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no entity with uid {uid}")))
}

/// `DELETE /api/catalog/entities/by-uid/{uid}`: removes the entity until its source provides it again.
#[utoipa::path(delete, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)), responses((status = 204), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_by_uid(State(state): State<AppState>, UrlPath(uid): UrlPath<String>) -> Result<axum::http::StatusCode, ApiError> {
    match state.catalog.write(|catalog| catalog.remove_entity(&uid)) {
        Some(reference) => {
            tracing::info!(entity = %reference, "catalog entity removed");
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found(format!("no entity with uid {uid}"))),
    }
}

/// `POST /api/catalog/entities/by-refs`: the entities in the order asked, `null` for unknown ones.
#[utoipa::path(post, path = "/api/catalog/entities/by-refs", tag = "catalog", request_body(content = Object, description = "{entityRefs: [..], fields: [..]}"), responses((status = 200, description = "{items}, null for unknown refs", body = Object)))]
pub async fn by_refs(State(state): State<AppState>, RawQuery(raw): RawQuery, Json(request): Json<ByRefs>) -> Result<Json<Value>, ApiError> {
    let mut fields = request.fields;
    fields.extend(list(&parameters(raw), "fields"));
    let items: Vec<Value> = state.catalog.read(|catalog| {
        request
            .entity_refs
            .iter()
            .map(|text| {
                EntityRef::parse(text, None, "default")
                    .ok()
                    .and_then(|reference| catalog.get(&reference))
                    .map_or(Value::Null, |entity| project(&entity, &fields))
            })
            .collect()
    });
    Ok(Json(json!({"items": items})))
}

/// `GET /api/catalog/entity-facets?facet=kind&filter=...`.
#[utoipa::path(get, path = "/api/catalog/entity-facets", tag = "catalog", params(("facet" = String, Query), ("filter" = Option<String>, Query)), responses((status = 200, description = "{facets: {field: [{value, count}]}}", body = Object)))]
pub async fn facets(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let parameters = parameters(raw);
    let filter = Filter::parse(parameters.get("filter").map(Vec::as_slice).unwrap_or_default()).map_err(|e| bad_request("filter", e))?;
    let facet_paths = parameters.get("facet").cloned().unwrap_or_default();
    let facets = state.catalog.read(|catalog| catalog.facets(&filter, &facet_paths));
    Ok(Json(json!({"facets": facets})))
}

#[derive(Debug, Deserialize)]
pub struct ValidateRequest {
    entity: Value,
    #[serde(default)]
    location: Option<String>,
}

/// `POST /api/catalog/validate-entity`: 200 when valid, else 400 naming each field.
#[utoipa::path(post, path = "/api/catalog/validate-entity", tag = "catalog", request_body(content = Object, description = "{entity, location}"), responses((status = 200, body = Object), (status = 400, description = "{valid: false, errors, details}", body = Object)))]
pub async fn validate_entity(Json(request): Json<ValidateRequest>) -> Result<(StatusCode, Json<Value>), ApiError> {
    match validate(&request.entity) {
        Ok(_) => Ok((StatusCode::OK, Json(json!({})))),
        Err(problems) => {
            let location = request.location.unwrap_or_else(|| "entity".into());
            let mut error = ApiError::invalid(&[heimdall_model::DocumentError::new(location, problems)]);
            error.status = 400;
            // Heimdall's error shape, plus Backstage's `errors` that its client returns to the caller.
            let errors: Vec<Value> =
                error.details.iter().map(|d| json!({"name": "InputError", "message": format!("{}: {}", d.path, d.message)})).collect();
            let mut body = serde_json::to_value(&error).map_err(|_| ApiError::internal())?;
            body["errors"] = json!(errors);
            Ok((StatusCode::BAD_REQUEST, Json(body)))
        }
    }
}
