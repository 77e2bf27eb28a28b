//! The one way a change gets in: admit it (it renders, policies allow it),
//! store it, then record each application's rendered status.

use heimdall_model::{Resource, ResourceKey};
use heimdall_store::{ApplyMode, ApplyOutcome, WriteResult};

use crate::error::ApiError;
use crate::rendering::{is_app_kind, is_platform_kind};
use crate::state::AppState;

/// The audit trail's name for statuses the hub derives itself.
pub const RENDERER: &str = "heimdall-renderer";

/// Writes `batch` all-or-nothing (or previews it) after admission.
pub async fn write(
    state: &AppState,
    actor: &str,
    batch: Vec<(String, Resource)>,
    mode: ApplyMode,
    dry_run: bool,
) -> Result<Vec<WriteResult>, ApiError> {
    let candidate = state.rendering.admit(&state.store, &batch).await?;
    let (sources, resources): (Vec<String>, Vec<Resource>) = batch.into_iter().unzip();
    let written = if dry_run {
        state.store.preview_all(actor, resources, mode).await
    } else {
        state.store.write_all(actor, resources, mode).await
    };
    let written = written.map_err(|(index, e)| {
        let document = sources.get(index).cloned().unwrap_or_default();
        let mut error = ApiError::from(e).in_document(&document);
        error.message.push_str("; nothing was changed");
        error
    })?;
    if dry_run {
        return Ok(written);
    }
    let platform_changed = written
        .iter()
        .any(|w| is_platform_kind(&w.resource.kind) && w.outcome != ApplyOutcome::Unchanged);
    if let (true, Some(platform)) = (platform_changed, candidate) {
        state.rendering.install(platform);
    }
    let mut results = Vec::with_capacity(written.len());
    for mut result in written {
        if is_app_kind(&result.resource.kind) && result.outcome != ApplyOutcome::Unchanged {
            result.resource = record_status(state, result.resource).await;
        }
        results.push(result);
    }
    Ok(results)
}

/// Renders `app` under the current platform and stores the status if it
/// changed. A failure here leaves the change stored; the reconciler retries.
pub async fn record_status(state: &AppState, app: Resource) -> Resource {
    let status = state.rendering.status(&app);
    if app.status.as_ref() == Some(&status) {
        return app;
    }
    match state.store.update_status(RENDERER, &app.key(), status, None).await {
        Ok(updated) => updated,
        Err(e) => {
            tracing::warn!(app = %app.key(), error = %e, "cannot record rendered status");
            app
        }
    }
}

/// Deletes a resource; deleting part of the platform takes effect at once.
pub async fn delete(state: &AppState, actor: &str, key: &ResourceKey, expected: Option<i64>) -> Result<Resource, ApiError> {
    let deleted = state.store.delete(actor, key, expected).await?;
    if is_platform_kind(&key.kind) {
        state.rendering.reload(&state.store).await?;
    }
    Ok(deleted)
}
