//! API tokens for machines and CI: created with a role (and a tenant) and an
//! expiry, shown once, stored as a hash, listed with their last use, revocable.
//! A tenant's owners manage their tenant's tokens; platform admins all.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use heimdall_model::spec::tenant::TenantRole;
use heimdall_store::TokenInfo;

use crate::auth::{Need, Principal, Role, require};
use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::auth::{CreateToken, CreatedToken, TokenSummary};

/// Stored names of people-made tokens carry this prefix, so they can never
/// replace the hub's own (`admin`, `agent:<cluster>`...).
const PREFIX: &str = "token:";
const DEFAULT_TTL_SECONDS: u64 = 90 * 24 * 3600;
const MAX_TTL_SECONDS: u64 = 2 * 365 * 24 * 3600;

fn summary(info: TokenInfo) -> TokenSummary {
    TokenSummary {
        name: info.name.strip_prefix(PREFIX).unwrap_or(&info.name).to_string(),
        role: info.role,
        created_at: info.created_at,
        expires_at: info.expires_at,
        last_used_at: info.last_used_at,
    }
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    heimdall_model::validation::check_dns_label(&request.name).map_err(|e| ApiError::invalid_field("name", e))?;
    let role = match (request.role.as_str(), request.tenant.as_deref()) {
        (Role::PLATFORM_ADMIN, None) => Role::PLATFORM_ADMIN.to_string(),
        (Role::PLATFORM_ADMIN, Some(_)) => return Err(ApiError::invalid_field("tenant", "platform-admin tokens belong to no tenant")),
        (role, Some(tenant)) => {
            let role = TenantRole::parse(role).ok_or_else(|| {
                ApiError::invalid_field("role", format!("expected platform-admin, owner, developer or viewer, got {role:?}"))
            })?;
            if state.rendering.platform().tenant(tenant).is_none() {
                return Err(ApiError::invalid_field("tenant", format!("no Tenant named {tenant:?}")));
            }
            Role::tenant(tenant, role)
        }
        (_, None) => return Err(ApiError::invalid_field("tenant", "a tenant role needs --tenant")),
    };
    require(&principal, &Need::manage_token(&role, "tokens:create"))?;
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(ApiError::invalid_field("ttlSeconds", format!("expected 1 to {MAX_TTL_SECONDS} seconds (two years)")));
    }
    let stored_name = format!("{PREFIX}{}", request.name);
    if state.store.token_named(&stored_name).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("a token named {} exists; revoke it first", request.name),
        ));
    }
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(ttl as i64)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let token = heimdall_store::generate_token();
    state.store.put_token(&stored_name, &token, &role, Some(expires_at.clone())).await?;
    tracing::info!(name = %stored_name, %role, by = %principal.name, "API token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { name: request.name, token, role, expires_at: Some(expires_at) })))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenSummary>)))]
pub async fn list(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> Result<Json<Vec<TokenSummary>>, ApiError> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .filter(|t| t.name.starts_with(PREFIX) && require(&principal, &Need::manage_token(&t.role, "tokens:list")).is_ok())
            .map(summary)
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens", params(("name" = String, Path)),
    responses((status = 200, body = TokenSummary), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<TokenSummary>, ApiError> {
    let stored_name = format!("{PREFIX}{name}");
    let not_found = || ApiError::not_found(format!("no token named {name:?}"));
    let info = state.store.token_named(&stored_name).await?.ok_or_else(not_found)?;
    // Someone who may not manage the token learns nothing about it.
    require(&principal, &Need::manage_token(&info.role, "tokens:revoke")).map_err(|_| not_found())?;
    state.store.delete_tokens(&[stored_name]).await?;
    tracing::info!(%name, by = %principal.name, "API token revoked");
    Ok(Json(summary(info)))
}
