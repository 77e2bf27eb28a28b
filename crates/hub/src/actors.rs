//! The names the hub's own writers sign the audit trail and commits with.
//! They sit below every other module so that any of them can write as one.

/// The renderer: rendered statuses, repository and mirror checks, re-renders.
pub const RENDERER: &str = "heimdall-renderer";
/// What agents report: connection, facts, health per application.
pub const AGENT_ACTOR: &str = "heimdall-agent";
/// The catalog's reads of registered locations.
pub const CATALOG_ACTOR: &str = "heimdall-catalog";
/// Users and groups recorded as people sign in.
pub const IDENTITY_ACTOR: &str = "heimdall-identity";

/// The audit trail's name for credentials the hub generates for claims.
pub const GENERATOR: &str = "heimdall-capabilities";
