//! Get, list, watch, create, replace and delete of single resources.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use heimdall_model::kinds::{self, KindInfo};
use heimdall_model::{LabelSelector, Resource, ResourceKey};
use heimdall_store::{ApplyMode, ListQuery, WatchFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use super::body::Body;
use crate::admission;
use crate::auth::Principal;
use crate::authentication::Credential;
use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::resources::{ListMeta, ResourceListBody};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Kubernetes label selector, e.g. `env=prod,tier in (web,api)`.
    pub label_selector: Option<String>,
    /// Page size: absent or 0 means 500, at most 1000; follow `metadata.continue` for the rest.
    pub limit: Option<usize>,
    /// The `metadata.continue` of the previous page.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    pub continue_token: Option<String>,
    /// Stream changes as newline-delimited JSON watch events instead of listing.
    pub watch: Option<bool>,
    /// With `watch`: stream changes after this resourceVersion (from a list).
    pub resource_version: Option<i64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete only if the stored object still has this resourceVersion.
    pub resource_version: Option<i64>,
}

fn kind_for(plural: &str) -> Result<&'static KindInfo, ApiError> {
    kinds::KINDS.iter().find(|k| k.plural == plural).ok_or_else(|| {
        let hint = kinds::suggest(plural).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
        let known: Vec<&str> = kinds::KINDS.iter().map(|k| k.plural).collect();
        ApiError::not_found(format!("unknown resource type {plural:?}: expected one of {}{hint}", known.join(", ")))
    })
}

/// Resolves the kind and checks the URL shape fits its scope.
fn target(plural: &str, namespace: Option<&str>) -> Result<&'static KindInfo, ApiError> {
    let kind = kind_for(plural)?;
    match (kind.is_namespaced(), namespace) {
        (true, None) => Err(ApiError::not_found(format!("{} is namespaced: use /api/v1/namespaces/{{namespace}}/{plural}", kind.kind))),
        (false, Some(_)) => Err(ApiError::not_found(format!("{} is cluster-scoped: use /api/v1/{plural}", kind.kind))),
        _ => Ok(kind),
    }
}

fn key(kind: &KindInfo, namespace: Option<&str>, name: &str) -> ResourceKey {
    ResourceKey::new(kind.kind, namespace.unwrap_or_default(), name)
}

async fn list(
    state: AppState,
    principal: Principal,
    credential: Credential,
    kind: &KindInfo,
    namespace: Option<String>,
    params: ListParams,
) -> Result<Response, ApiError> {
    let selector =
        LabelSelector::parse(params.label_selector.as_deref().unwrap_or_default()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if params.watch.unwrap_or(false) {
        let from = match params.resource_version {
            Some(rv) => rv,
            None => state.store.revision().await?,
        };
        let filter = WatchFilter { kind: Some(kind.kind.to_string()), namespace };
        let reader = principal.clone();
        let stream = state.store.watch(filter, from).filter_map(move |event| {
            let line = match event {
                Ok(event) if !selector.matches(&event.object.metadata.labels) || !reader.may_read(&event.object) => None,
                Ok(event) => serde_json::to_vec(&event).ok(),
                Err(e) => serde_json::to_vec(&ApiError::from(e)).ok(),
            };
            futures::future::ready(line.map(|mut line| {
                line.push(b'\n');
                Ok::<_, std::convert::Infallible>(Bytes::from(line))
            }))
        });
        let stream = crate::authentication::while_valid(state.clone(), credential, principal, stream);
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(stream)).into_response());
    }
    let query = ListQuery {
        kind: kind.kind.to_string(),
        namespace,
        selector,
        limit: Some(heimdall_api::resources::list_limit(params.limit)),
        continue_token: params.continue_token,
    };
    let mut list = state.store.list(&query).await?;
    // A page may come out short: what the caller may not see is left out.
    list.items.retain(|item| principal.may_read(item));
    Ok(Json(ResourceListBody {
        api_version: "v1".into(),
        kind: format!("{}List", kind.kind),
        metadata: ListMeta { resource_version: list.resource_version.to_string(), continue_token: list.continue_token },
        items: list.items,
    })
    .into_response())
}

/// Decodes a body for `kind` at a URL that fixes its namespace and maybe its name.
fn decode_for_url(body: &Body, kind: &KindInfo, namespace: Option<&str>, name: Option<&str>) -> Result<Resource, ApiError> {
    let value = body.single_document("request body")?;
    let decoded = heimdall_model::decode(&value, "request body", namespace.unwrap_or("default")).map_err(|e| ApiError::invalid(&[e]))?;
    if decoded.kind.kind != kind.kind {
        return Err(ApiError::invalid_field("kind", format!("expected {} at this URL, got {}", kind.kind, decoded.kind.kind)));
    }
    let resource = decoded.resource;
    if let Some(namespace) = namespace
        && resource.metadata.namespace.as_deref() != Some(namespace)
    {
        return Err(ApiError::invalid_field("metadata.namespace", format!("expected {namespace:?} to match the URL")));
    }
    if let Some(name) = name
        && resource.metadata.name != name
    {
        return Err(ApiError::invalid_field(
            "metadata.name",
            format!("expected {name:?} to match the URL, got {:?}", resource.metadata.name),
        ));
    }
    Ok(resource)
}

async fn create(
    state: AppState,
    principal: Principal,
    kind: &KindInfo,
    namespace: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let resource = decode_for_url(&body, kind, namespace.as_deref(), None)?;
    let mut written =
        admission::write(&state, &principal, "create", vec![("request body".into(), resource)], ApplyMode::Create, false).await?;
    Ok((StatusCode::CREATED, Json(written.remove(0).resource)).into_response())
}

async fn replace(
    state: AppState,
    principal: Principal,
    kind: &KindInfo,
    namespace: Option<String>,
    name: String,
    body: Body,
) -> Result<Json<Resource>, ApiError> {
    let resource = decode_for_url(&body, kind, namespace.as_deref(), Some(&name))?;
    let mut written =
        admission::write(&state, &principal, "update", vec![("request body".into(), resource)], ApplyMode::Update, false).await?;
    Ok(Json(written.remove(0).resource))
}

/// List every resource of a kind (across all namespaces for namespaced kinds), or watch them.
#[utoipa::path(get, path = "/api/v1/{plural}", tag = "resources",
    params(("plural" = String, Path, description = "e.g. applications, tenants"), ListParams),
    responses((status = 200, body = ResourceListBody, description = "a list, or with watch=true an application/x-ndjson stream of WatchEvent"), (status = 404, body = ApiError)))]
pub async fn list_all(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(credential): Extension<Credential>,
    Path(plural): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let kind = kind_for(&plural)?;
    list(state, principal, credential, kind, None, params).await
}

/// List or watch a namespaced kind in one namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/{plural}", tag = "resources",
    params(("namespace" = String, Path), ("plural" = String, Path), ListParams),
    responses((status = 200, body = ResourceListBody), (status = 404, body = ApiError)))]
pub async fn list_namespaced(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(credential): Extension<Credential>,
    Path((namespace, plural)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let kind = target(&plural, Some(&namespace))?;
    list(state, principal, credential, kind, Some(namespace), params).await
}

/// Get a cluster-scoped resource.
#[utoipa::path(get, path = "/api/v1/{plural}/{name}", tag = "resources",
    params(("plural" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Resource), (status = 404, body = ApiError)))]
pub async fn get_cluster_scoped(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, None)?;
    Ok(Json(state.store.get(&key(kind, None, &name)).await?))
}

/// Get a namespaced resource.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/{plural}/{name}", tag = "resources",
    params(("namespace" = String, Path), ("plural" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Resource), (status = 404, body = ApiError)))]
pub async fn get_namespaced(
    State(state): State<AppState>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, Some(&namespace))?;
    Ok(Json(state.store.get(&key(kind, Some(&namespace), &name)).await?))
}

/// Create a resource (JSON or YAML body). Namespaced kinds need `metadata.namespace` here.
#[utoipa::path(post, path = "/api/v1/{plural}", tag = "resources",
    params(("plural" = String, Path)), request_body(content = Resource, description = "JSON or YAML"),
    responses((status = 201, body = Resource), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn create_cluster_scoped(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(plural): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = kind_for(&plural)?;
    // A namespaced kind posted here names its namespace in the body.
    create(state, principal, kind, None, body).await
}

/// Create a namespaced resource.
#[utoipa::path(post, path = "/api/v1/namespaces/{namespace}/{plural}", tag = "resources",
    params(("namespace" = String, Path), ("plural" = String, Path)), request_body(content = Resource, description = "JSON or YAML"),
    responses((status = 201, body = Resource), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn create_namespaced(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, plural)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = target(&plural, Some(&namespace))?;
    create(state, principal, kind, Some(namespace), body).await
}

/// Replace a cluster-scoped resource. A `metadata.resourceVersion` in the body must match the stored one.
#[utoipa::path(put, path = "/api/v1/{plural}/{name}", tag = "resources",
    params(("plural" = String, Path), ("name" = String, Path)), request_body(content = Resource, description = "JSON or YAML"),
    responses((status = 200, body = Resource), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn replace_cluster_scoped(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((plural, name)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, None)?;
    replace(state, principal, kind, None, name, body).await
}

/// Replace a namespaced resource.
#[utoipa::path(put, path = "/api/v1/namespaces/{namespace}/{plural}/{name}", tag = "resources",
    params(("namespace" = String, Path), ("plural" = String, Path), ("name" = String, Path)), request_body(content = Resource, description = "JSON or YAML"),
    responses((status = 200, body = Resource), (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn replace_namespaced(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
    body: Body,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, Some(&namespace))?;
    replace(state, principal, kind, Some(namespace), name, body).await
}

/// Delete a cluster-scoped resource; returns what was deleted.
#[utoipa::path(delete, path = "/api/v1/{plural}/{name}", tag = "resources",
    params(("plural" = String, Path), ("name" = String, Path), DeleteParams),
    responses((status = 200, body = Resource), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn delete_cluster_scoped(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((plural, name)): Path<(String, String)>,
    Query(params): Query<DeleteParams>,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, None)?;
    Ok(Json(admission::delete(&state, &principal, &key(kind, None, &name), params.resource_version).await?))
}

/// Delete a namespaced resource; returns what was deleted.
#[utoipa::path(delete, path = "/api/v1/namespaces/{namespace}/{plural}/{name}", tag = "resources",
    params(("namespace" = String, Path), ("plural" = String, Path), ("name" = String, Path), DeleteParams),
    responses((status = 200, body = Resource), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn delete_namespaced(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
    Query(params): Query<DeleteParams>,
) -> Result<Json<Resource>, ApiError> {
    let kind = target(&plural, Some(&namespace))?;
    Ok(Json(admission::delete(&state, &principal, &key(kind, Some(&namespace), &name), params.resource_version).await?))
}
