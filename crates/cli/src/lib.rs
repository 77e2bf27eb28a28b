//! The `heimdall` command line: client commands that talk to a hub's REST
//! API, and the server commands (`up`, `hub`) that run one. The binary crate
//! only calls [`main`].

pub mod client;
mod commands;
pub mod context;
pub mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(name = "heimdall", version, about = "Heimdall: an internal developer platform for many Kubernetes clusters")]
pub struct Cli {
    /// Hub URL (default: the current context's, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "HEIMDALL_HUB")]
    hub: Option<String>,
    /// API token (default: the current context's).
    #[arg(long, global = true, env = "HEIMDALL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a hub with embedded defaults: SQLite and git under a data dir, the example organization, the API on localhost.
    Up {
        #[arg(long, default_value = ".heimdall")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
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
    /// Create or update resources from files or folders (recursively); all or nothing.
    Apply {
        /// File or folder; `-` reads standard input. Repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Namespace for documents that name none.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Validate and show what would change, storing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Store every valid document even if others fail.
        #[arg(long)]
        continue_on_error: bool,
    },
    /// List resources of a kind, or show one.
    Get {
        /// Kind: applications, workloads, tenants, environments, clusters (singular and short names work too).
        kind: String,
        /// NAME or NAMESPACE/NAME.
        name: Option<String>,
        #[arg(short, long)]
        namespace: Option<String>,
        /// Label selector, e.g. env=prod,tier in (web,api).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Render applications offline into manifests for every target (no hub needed).
    Render(commands::render::Options),
    /// Show one resource in detail, with its recent changes.
    Describe {
        kind: String,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Delete a resource.
    Delete {
        kind: String,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Approve a suspended workflow step (an approval gate) of an application.
    Approve {
        /// `application` (the only kind with workflows).
        kind: String,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        /// The suspend step to approve.
        #[arg(long)]
        step: String,
    },
    /// The revisions of an application: who changed it, when, and the commits per cluster.
    History {
        /// `application`.
        kind: String,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// The manifest diff of an application between two revisions (or commits).
    Diff {
        kind: String,
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(long)]
        from: String,
        /// Default: now.
        #[arg(long)]
        to: Option<String>,
    },
    /// Restore an application's spec as of a revision (or commit), as a new change.
    Rollback {
        kind: String,
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(long)]
        to: String,
    },
    /// Manage clusters' access to their repositories.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Maintain the cluster repositories.
    #[command(subcommand)]
    Gitops(GitopsCommand),
    /// Show the audit trail, newest first.
    Audit {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Print a shell completion script.
    Completion { shell: Shell },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Issue (or rotate) the token that may read this cluster's git repository.
    Token { name: String },
    /// Print the manifests that point Argo CD or Flux at the cluster's repository.
    BootstrapManifest {
        name: String,
        /// The hub's URL as the cluster reaches it (default: the URL this CLI uses).
        #[arg(long)]
        hub_url: Option<String>,
        /// Issue a new cluster token and embed it (the cluster's previous token stops working).
        #[arg(long)]
        issue_token: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GitopsCommand {
    /// Rebuild a cluster's repository from the store (the old one is moved aside).
    Rebuild { cluster: String },
}

/// Parses the command line, runs the command, and maps errors to exit code 1.
pub fn main() -> ExitCode {
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
    let client = || client::Client::from_options(cli.hub.clone(), cli.token.clone());
    match cli.command {
        Command::Up { data_dir, listen, examples, no_examples } => commands::server::up(data_dir, listen, examples, no_examples).await,
        Command::Hub { config } => commands::server::hub(config).await,
        Command::Apply { files, namespace, dry_run, continue_on_error } => {
            commands::resources::apply(&client()?, &files, namespace, dry_run, continue_on_error).await
        }
        Command::Get { kind, name, namespace, selector, output } => {
            commands::resources::get(&client()?, &kind, name.as_deref(), namespace.as_deref(), selector.as_deref(), output).await
        }
        Command::Render(options) => commands::render::run(options),
        Command::Describe { kind, name, namespace } => commands::resources::describe(&client()?, &kind, &name, namespace.as_deref()).await,
        Command::Approve { kind, name, namespace, step } => {
            commands::resources::approve(&client()?, &kind, &name, namespace.as_deref(), &step).await
        }
        Command::Delete { kind, name, namespace } => commands::resources::delete(&client()?, &kind, &name, namespace.as_deref()).await,
        Command::Audit { kind, name, namespace, limit, output } => {
            commands::audit::audit(&client()?, kind, name, namespace, limit, output).await
        }
        Command::History { kind, name, namespace, output } => {
            commands::history::history(&client()?, &kind, &name, namespace.as_deref(), output).await
        }
        Command::Diff { kind, name, namespace, from, to } => {
            commands::history::diff(&client()?, &kind, &name, namespace.as_deref(), &from, to.as_deref()).await
        }
        Command::Rollback { kind, name, namespace, to } => {
            commands::history::rollback(&client()?, &kind, &name, namespace.as_deref(), &to).await
        }
        Command::Cluster(ClusterCommand::Token { name }) => commands::clusters::token(&client()?, &name).await,
        Command::Cluster(ClusterCommand::BootstrapManifest { name, hub_url, issue_token }) => {
            commands::clusters::bootstrap(&client()?, &name, hub_url, issue_token).await
        }
        Command::Gitops(GitopsCommand::Rebuild { cluster }) => commands::clusters::rebuild(&client()?, &cluster).await,
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "heimdall", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
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
