use heimdall_model::ResourceKey;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key} not found")]
    NotFound { key: ResourceKey },
    #[error("{key} already exists")]
    AlreadyExists { key: ResourceKey },
    #[error(
        "{key} was changed by someone else: your copy has resourceVersion {expected}, the stored one is {actual}; get it again and retry"
    )]
    Conflict { key: ResourceKey, expected: i64, actual: i64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether this is the hub's failure rather than the caller's: its text
    /// is for the log, never for an answer.
    pub fn is_internal(&self) -> bool {
        matches!(self, StoreError::Corrupt(_) | StoreError::Migration(_) | StoreError::UnsupportedUrl(_) | StoreError::Database(_))
    }

    pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what}: {err}"))
    }
}
