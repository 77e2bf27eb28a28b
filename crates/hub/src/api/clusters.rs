//! Cluster credentials and the manifests that connect a cluster to its repository.

use axum::Json;
use axum::extract::{Path, State};
use heimdall_model::ResourceKey;

use crate::auth::Role;
use crate::error::ApiError;
use crate::state::AppState;
pub use heimdall_api::clusters::ClusterToken;

/// Issue (or rotate) the token that may read this cluster's repository. The
/// previous token of the cluster stops working.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/tokens", tag = "clusters", params(("name" = String, Path)),
    responses((status = 200, body = ClusterToken), (status = 404, body = ApiError)))]
pub async fn issue_token(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<ClusterToken>, ApiError> {
    state.store.get(&ResourceKey::new("Cluster", "", &name)).await?;
    let role = Role::cluster(&name);
    let token = heimdall_store::generate_token();
    state.store.put_token(&role, &token, &role, None).await?;
    Ok(Json(ClusterToken { token, role }))
}
