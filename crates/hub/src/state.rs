use std::sync::Arc;

use heimdall_store::Store;

use crate::metrics::Metrics;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Wires the store's operation timings into the metrics.
    pub fn new(store: Store) -> Self {
        let metrics = Arc::new(Metrics::default());
        let store = store.with_observer(metrics.clone());
        Self { store, metrics }
    }
}
