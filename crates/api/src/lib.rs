//! What Heimdall's parts say to each other across process boundaries. The
//! renderer writes the [`labels`] into cluster repositories and the agent
//! acts on them; the hub and its agents speak the [`agent`] protocol. Each
//! name and message is spelled once, here, so the two sides cannot drift
//! apart, and readers tolerate what a newer writer adds.

pub mod agent;
pub mod labels;
