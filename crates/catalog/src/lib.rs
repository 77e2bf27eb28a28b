//! Heimdall's software catalog, compatible with Backstage's: the entity
//! model and its validation (`entity`), references (`reference`),
//! relations derived from spec fields with their inverses (`relations`),
//! and the in-memory catalog of entities by source (`catalog`). Pure: the
//! hub reads locations and serves the API.

pub mod catalog;
pub mod entity;
mod index;
pub mod location;
pub mod query;
pub mod reference;
pub mod relations;

pub use catalog::{Catalog, Page, Query, SourceChange};
pub use entity::{Entity, EntityMeta, Relation, is_safe_url, validate};
pub use reference::EntityRef;
