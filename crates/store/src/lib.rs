//! Heimdall's resource store.
//!
//! One [`Store`] over SQLite (the embedded default) or PostgreSQL (for several
//! hub replicas), chosen by the database URL. Both run the same SQL through
//! sqlx's `Any` driver, so one test suite covers both.
//!
//! Every mutation runs in a transaction that first locks the single
//! `revision_counter` row. That serializes writers, makes resourceVersions a
//! gap-free sequence in commit order, and lets the `events` table (written in
//! the same transaction) serve as both the audit trail and the watch log.

mod error;
mod events;
mod migrations;
mod resources;
mod secrets;
mod store;
mod tokens;

pub use error::StoreError;
pub use events::{AuditEvent, AuditQuery, WatchEvent, WatchEventType, WatchFilter};
pub use resources::{ApplyMode, ApplyOutcome, ListQuery, ResourceList, WriteResult};
pub use secrets::{SECRET_API_VERSION, SECRET_KIND, SecretValue, StoredValue, value_context};
pub use store::{Backend, Store, StoreObserver, now};
pub use tokens::{TOKEN_PREFIX, TokenInfo, generate_token, hash_token};
