//! `heimdall agent`: the spoke agent in this process.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use heimdall_hub::config::LogFormat;

use crate::AgentArgs;
use crate::hub::{init_logging, shutdown_signal};

pub async fn run(hub: Option<String>, args: AgentArgs) -> Result<ExitCode> {
    let hub = hub.context("the agent needs the hub's URL: pass --hub URL (or set HEIMDALL_HUB)")?;
    init_logging(LogFormat::Text);
    let join_token = match (&args.join_token, &args.join_token_file) {
        (Some(token), _) => Some(token.trim().to_string()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(token) => Some(token.trim().to_string()),
            // Once joined, the agent no longer needs the token; a deleted Secret is fine.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading the join token from {}", path.display())),
        },
        (None, None) => None,
    };
    let hub_ca = args.hub_ca.as_ref().map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display()))).transpose()?;
    let mut options = heimdall_agent::Options::new(hub);
    options.join_token = join_token.filter(|t| !t.is_empty());
    options.kubeconfig = args.kubeconfig;
    options.cluster_name = args.cluster_name;
    options.namespace = args.namespace;
    options.state_file = args.state_file;
    options.hub_ca = hub_ca;
    options.proxy = args.proxy;
    options.drift_interval = args.drift_interval.max(std::time::Duration::from_secs(1));
    options.heartbeat_interval = args.heartbeat_interval.max(std::time::Duration::from_secs(1));
    options.concurrency = args.concurrency.max(1);
    options.leader_election = !args.no_leader_election;
    heimdall_agent::run(options, shutdown_signal()).await?;
    tracing::info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}
