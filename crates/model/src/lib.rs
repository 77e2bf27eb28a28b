//! Heimdall's resource model.
//!
//! Every document Heimdall keeps is a Kubernetes-style resource: `apiVersion`,
//! `kind`, `metadata`, `spec`, `status`. This crate knows which kinds exist, how
//! to turn user-written YAML into validated [`Resource`]s, and the small pure
//! helpers the store and the API share (label selectors, spec diffs).
//!
//! Nothing here does IO: callers hand in text and get values or errors back.

pub mod diff;
pub mod document;
pub mod kinds;
pub mod limits;
pub mod manifests;
pub mod problem;
pub mod resource;
pub mod selector;
pub mod spec;
pub mod status;
pub mod validation;

pub use document::{Decoded, Document, DocumentError, decode, parse_documents};
pub use kinds::{KindInfo, Scope};
pub use problem::Problem;
pub use resource::{ObjectMeta, Resource, ResourceKey};
pub use selector::{LabelSelector, SelectorError};
