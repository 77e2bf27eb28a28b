//! What Heimdall's parts say to each other across process boundaries: the
//! request and response types of the REST API, its [`error`] shape, the
//! hub↔agent [`agent`] protocol, and the [`labels`] the renderer writes into
//! cluster repositories and the agent acts on. Serde only: no HTTP server,
//! no SQL, so the CLI and the agent compile none of the hub. Each name and
//! message is spelled once, here, so the two sides cannot drift apart, and
//! readers tolerate what a newer writer adds.

pub mod agent;
pub mod auth;
pub mod claims;
pub mod clusters;
pub mod error;
pub mod history;
pub mod labels;
pub mod resources;
pub mod secrets;

pub use error::{ApiError, ErrorDetail};

/// Percent-encodes `text` for a URL path, keeping `/` (names never hold one;
/// paths of files do).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
