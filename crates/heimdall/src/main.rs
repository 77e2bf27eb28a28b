//! The `heimdall` binary: one command line for the whole platform. The
//! client commands are `heimdall-cli`'s; this crate adds the ones that run a
//! part of the platform in this process (a hub, an agent, the renderer), so
//! the client crate never compiles the hub. Everything else lives in the
//! library crates; see ARCHITECTURE.md.

mod agent;
mod hub;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use heimdall_cli::{ClientCommand, GlobalArgs};

#[derive(Debug, Parser)]
#[command(name = "heimdall", version, about = "Heimdall: an internal developer platform for many Kubernetes clusters")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a hub with embedded defaults: SQLite and git under a data dir, the example organization, the API on localhost.
    Up {
        /// A hub config file (as for `heimdall hub --config`), e.g. with an `oidc:` section for single sign-on;
        /// HEIMDALL_* variables apply on top of it, and --data-dir and --listen on top of those.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Default: the config file's dataDir, else .heimdall.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Default: the config file's listen, else 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Load the example organization from this folder instead of the built-in one.
        #[arg(long, conflicts_with = "no_examples")]
        examples: Option<PathBuf>,
        /// Start empty.
        #[arg(long)]
        no_examples: bool,
    },
    /// Run a hub for production, configured by a file and HEIMDALL_* environment variables.
    Hub {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Render applications offline into manifests for every target (no hub needed).
    Render(render::Options),
    #[command(flatten)]
    Client(ClientCommand),
    /// Run the spoke agent (`heimdall agent --hub URL ...`): join the hub, apply the cluster's desired state, prune, heal drift, report health.
    Agent(Box<AgentArgs>),
    /// Print a shell completion script.
    Completion { shell: Shell },
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// One-time join token from `heimdall cluster add` (only needed until the agent has joined).
    #[arg(long, env = "HEIMDALL_JOIN_TOKEN", hide_env_values = true, conflicts_with = "join_token_file")]
    pub join_token: Option<String>,
    /// Read the join token from this file (the install manifest mounts it).
    #[arg(long)]
    pub join_token_file: Option<PathBuf>,
    /// Kubeconfig of the cluster (default: the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The cluster's name on the hub; checked against the join token.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// The agent's namespace (its state Secret and Lease).
    #[arg(long, env = "POD_NAMESPACE", default_value = "heimdall-system")]
    pub namespace: String,
    /// Keep the credential and inventory in this file instead of a Secret.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// PEM file of an extra CA to trust for the hub.
    #[arg(long)]
    pub hub_ca: Option<PathBuf>,
    /// Reach the hub through this HTTP proxy (HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply otherwise).
    #[arg(long)]
    pub proxy: Option<String>,
    /// How often to check the cluster for drift.
    #[arg(long, default_value = "60s", value_parser = heimdall_cli::parse_duration)]
    pub drift_interval: std::time::Duration,
    /// How often to send a heartbeat.
    #[arg(long, default_value = "20s", value_parser = heimdall_cli::parse_duration)]
    pub heartbeat_interval: std::time::Duration,
    /// Parallel requests to the Kubernetes API.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Apply even if another replica holds the Lease (a single replica only).
    #[arg(long)]
    pub no_leader_election: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for the whole process (ring); see ARCHITECTURE.md.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up { config, data_dir, listen, examples, no_examples } => {
            hub::up(hub::UpOptions { config, data_dir, listen, examples, no_examples }).await
        }
        Command::Hub { config } => hub::hub(config).await,
        Command::Render(options) => render::run(options),
        Command::Agent(args) => agent::run(cli.global.hub.clone(), *args).await,
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "heimdall", &mut script);
            // `heimdall completion bash | head` closes the pipe early: that is not an error.
            match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Client(command) => heimdall_cli::run(cli.global, command).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
