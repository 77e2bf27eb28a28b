//! The `heimdall` command line's client side: the commands that talk to a
//! hub's REST API (`apply`, `get`, `login`, `cluster add`, ...), and the
//! contexts, credentials and output they share. It depends on the wire
//! types (`heimdall-api`) and the model, never on the hub: the binary crate
//! adds the commands that run a hub, an agent or the renderer in-process.

pub mod bench;
pub mod client;
mod commands;
pub mod context;
pub mod files;
mod oidc;
pub mod output;

pub use commands::clusters::parse_duration;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::output::OutputFormat;

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Hub URL (default: the current context's, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "HEIMDALL_HUB")]
    pub hub: Option<String>,
    /// API token (default: the current context's).
    #[arg(long, global = true, env = "HEIMDALL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The commands that talk to a hub.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
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
        /// Read lists this many at a time (the hub answers at most 1000 a page).
        #[arg(long, default_value_t = heimdall_api::resources::DEFAULT_LIST_LIMIT)]
        chunk_size: usize,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
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
    /// Register clusters and manage their agents' and repositories' credentials.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Maintain the cluster repositories.
    #[command(subcommand)]
    Gitops(GitopsCommand),
    /// Sign in with the hub's identity provider (single sign-on) and save the session as the current context.
    Login {
        /// The context to write (default: the current one if it is a sign-in to this hub, else the hub's host:port).
        #[arg(long)]
        context: Option<String>,
        /// Sign in with a browser on this machine (authorization code flow with a loopback redirect) instead of entering a code.
        #[arg(long)]
        browser: bool,
        /// With --browser: print the URL only, do not try to open a browser.
        #[arg(long, requires = "browser")]
        no_open: bool,
    },
    /// Forget the sign-in of a context (and revoke it at the identity provider).
    Logout {
        /// Default: the current context.
        #[arg(long)]
        context: Option<String>,
    },
    /// Show who the hub thinks you are: name, roles, groups.
    Whoami {
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// API tokens for machines and CI: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Secrets of applications: set, list, delete (values are write-only).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Claims of capabilities (databases, buckets, topics): list instances, plan and run provider migrations.
    #[command(subcommand)]
    Claim(ClaimCommand),
    /// Create a service from a software template (as the portal's wizard does): repository, catalog entry, deployed app.
    /// Without --template: list the templates.
    Create {
        /// The template: node-service, or template:default/node-service.
        #[arg(long)]
        template: Option<String>,
        /// A parameter of the template's form, `name=value`; repeatable. Typed by the form (numbers, true/false).
        #[arg(long = "set", value_parser = commands::create::parse_set, requires = "template")]
        values: Vec<(String, String)>,
        /// Show the files it would create; create nothing.
        #[arg(long, requires = "template")]
        dry_run: bool,
    },
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
    /// Measure a hub from outside: it starts one of its own on loopback (your contexts are not touched).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// A generated organization (tenants, clusters, applications) applied through the API, then timed:
    /// import, one change, lists, the portal's entity page, memory, git storage, a restart.
    Fleet(bench::FleetOptions),
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected key=value, got {text:?}"))?;
    heimdall_model::validation::check_qualified_name(key).map_err(|e| format!("label key {key:?}: {e}"))?;
    heimdall_model::validation::check_label_value(value).map_err(|e| format!("label value {value:?}: {e}"))?;
    Ok((key.to_string(), value.to_string()))
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster and print a one-time join token for its agent.
    Add {
        name: String,
        /// A label, `key=value`; repeatable. Environments select clusters by label.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// `agent` (default), `argocd` or `flux`.
        #[arg(long, default_value = "agent")]
        delivery: String,
        /// How long the join token stays valid.
        #[arg(long, default_value = "24h", value_parser = commands::clusters::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Print what to `kubectl apply` on the spoke: namespace, service account, RBAC, join token, agent Deployment.
    InstallManifest {
        name: String,
        /// The hub's URL as the spoke reaches it (default: the URL this CLI uses).
        #[arg(long)]
        hub_url: Option<String>,
        /// The agent image.
        #[arg(long)]
        image: Option<String>,
        /// The agent's namespace.
        #[arg(long, default_value = "heimdall-system")]
        namespace: String,
        /// Narrower mode: the agent may write only in these namespaces (comma-separated).
        #[arg(long, value_delimiter = ',')]
        namespaced: Option<Vec<String>>,
        /// PEM file of the CA that signed the hub's certificate.
        #[arg(long)]
        hub_ca: Option<PathBuf>,
        #[arg(long, default_value = "24h", value_parser = commands::clusters::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Issue a new one-time join token (an unspent earlier one stops working).
    JoinToken {
        name: String,
        #[arg(long, default_value = "24h", value_parser = commands::clusters::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Revoke the cluster's agent credential, join token and repository token.
    Revoke { name: String },
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
pub enum TokenCommand {
    /// Create a token and print it once (alone on stdout).
    Create {
        /// A DNS label, e.g. ci-shop.
        name: String,
        #[arg(long, value_parser = ["platform-admin", "owner", "developer", "viewer"])]
        role: String,
        /// The tenant, for owner, developer and viewer.
        #[arg(long)]
        tenant: Option<String>,
        /// Lifetime, e.g. 30d (default: the hub's, 90 days).
        #[arg(long, value_parser = commands::clusters::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List the tokens you may manage.
    List {
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Revoke a token: it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ClaimCommand {
    /// Every claim instance in a namespace: cluster, composition, cost, state, consumers.
    List {
        namespace: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Show what moving a claim to another composition would create, switch and delete. Changes nothing.
    Plan {
        /// NAMESPACE/CLAIM, e.g. shop/orders-db.
        claim: String,
        #[arg(long)]
        composition: String,
        /// Only the claim's instances in this environment.
        #[arg(long)]
        environment: Option<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Start a migration (--composition), or allow deleting the old instance (--confirm-delete).
    Migrate {
        claim: String,
        #[arg(long)]
        composition: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// Delete the old instance once consumers use the new one.
        #[arg(long)]
        confirm_delete: bool,
        /// Keep consumers on the old instance even when the new one is ready (while the data is copied).
        #[arg(long, conflicts_with = "release")]
        hold: bool,
        /// Let consumers switch to the new instance once it is ready.
        #[arg(long)]
        release: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set one key of a secret (a new version; the apps that read it are re-delivered).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["from_literal", "from_file", "from_stdin"])))]
    Set {
        /// NAMESPACE/NAME, e.g. shop/web.
        secret: String,
        /// The key, e.g. DB_PASSWORD.
        key: String,
        /// The value on the command line (it lands in your shell history; prefer --from-file or --from-stdin).
        #[arg(long)]
        from_literal: Option<String>,
        /// Read the value from a file, byte for byte.
        #[arg(long)]
        from_file: Option<std::path::PathBuf>,
        /// Read the value from standard input (one trailing newline is dropped).
        #[arg(long)]
        from_stdin: bool,
    },
    /// List secrets (NAMESPACE) or one secret's keys (NAMESPACE/NAME): versions, who, when. Never values.
    List {
        target: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Delete one key of a secret, or the whole secret without KEY.
    Delete { secret: String, key: Option<String> },
    /// Make a new master key and re-wrap every stored data key with it (platform admins).
    RotateMasterKey,
}

#[derive(Debug, Subcommand)]
pub enum GitopsCommand {
    /// Rebuild a cluster's repository from the store (the old one is moved aside).
    Rebuild { cluster: String },
}

/// Runs a client command against the hub that `global` and the current context name.
pub async fn run(global: GlobalArgs, command: ClientCommand) -> anyhow::Result<ExitCode> {
    let client = async || client::Client::from_options(global.hub.clone(), global.token.clone()).await;
    match command {
        ClientCommand::Apply { files, namespace, dry_run, continue_on_error } => {
            commands::resources::apply(&client().await?, &files, namespace, dry_run, continue_on_error).await
        }
        // Claims live in documents of several kinds; with a namespace, show every instance.
        ClientCommand::Get { kind, name: None, namespace: Some(namespace), selector: None, output, .. }
            if heimdall_model::kinds::by_name(&kind).is_some_and(|k| k.kind == "Claim") =>
        {
            commands::claims::list(&client().await?, &namespace, output).await
        }
        ClientCommand::Get { kind, name, namespace, selector, chunk_size, output } => {
            let client = client().await?;
            commands::resources::get(&client, &kind, name.as_deref(), namespace.as_deref(), selector.as_deref(), chunk_size, output).await
        }
        ClientCommand::Describe { kind, name, namespace } => {
            commands::resources::describe(&client().await?, &kind, &name, namespace.as_deref()).await
        }
        ClientCommand::Approve { kind, name, namespace, step } => {
            commands::resources::approve(&client().await?, &kind, &name, namespace.as_deref(), &step).await
        }
        ClientCommand::Delete { kind, name, namespace } => {
            commands::resources::delete(&client().await?, &kind, &name, namespace.as_deref()).await
        }
        ClientCommand::Bench(BenchCommand::Fleet(options)) => bench::fleet(options).await,
        ClientCommand::Audit { kind, name, namespace, limit, output } => {
            commands::audit::audit(&client().await?, kind, name, namespace, limit, output).await
        }
        ClientCommand::History { kind, name, namespace, output } => {
            commands::history::history(&client().await?, &kind, &name, namespace.as_deref(), output).await
        }
        ClientCommand::Diff { kind, name, namespace, from, to } => {
            commands::history::diff(&client().await?, &kind, &name, namespace.as_deref(), &from, to.as_deref()).await
        }
        ClientCommand::Rollback { kind, name, namespace, to } => {
            commands::history::rollback(&client().await?, &kind, &name, namespace.as_deref(), &to).await
        }
        ClientCommand::Cluster(ClusterCommand::Add { name, labels, delivery, ttl }) => {
            commands::clusters::add(&client().await?, &name, &labels, &delivery, ttl).await
        }
        ClientCommand::Cluster(ClusterCommand::InstallManifest { name, hub_url, image, namespace, namespaced, hub_ca, ttl }) => {
            let client = client().await?;
            let hub_ca =
                hub_ca.map(|path| std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))).transpose()?;
            let request = heimdall_api::clusters::InstallRequest {
                hub_url: hub_url.unwrap_or_else(|| client.hub().to_string()),
                image,
                namespace: Some(namespace),
                namespaces: namespaced,
                hub_ca,
                ttl_seconds: Some(ttl.as_secs()),
            };
            commands::clusters::install_manifest(&client, &name, request).await
        }
        ClientCommand::Cluster(ClusterCommand::JoinToken { name, ttl }) => {
            commands::clusters::join_token(&client().await?, &name, ttl).await
        }
        ClientCommand::Cluster(ClusterCommand::Revoke { name }) => commands::clusters::revoke(&client().await?, &name).await,
        ClientCommand::Cluster(ClusterCommand::Token { name }) => commands::clusters::token(&client().await?, &name).await,
        ClientCommand::Cluster(ClusterCommand::BootstrapManifest { name, hub_url, issue_token }) => {
            commands::clusters::bootstrap(&client().await?, &name, hub_url, issue_token).await
        }
        ClientCommand::Gitops(GitopsCommand::Rebuild { cluster }) => commands::clusters::rebuild(&client().await?, &cluster).await,
        ClientCommand::Login { context, browser, no_open } => {
            commands::login::login(commands::login::LoginOptions { hub: global.hub.clone(), context, browser, no_open }).await
        }
        ClientCommand::Logout { context } => commands::login::logout(context).await,
        ClientCommand::Whoami { output } => commands::login::whoami(&client().await?, output).await,
        ClientCommand::Token(TokenCommand::Create { name, role, tenant, ttl }) => {
            commands::tokens::create(&client().await?, &name, &role, tenant.as_deref(), ttl).await
        }
        ClientCommand::Token(TokenCommand::List { output }) => commands::tokens::list(&client().await?, output).await,
        ClientCommand::Token(TokenCommand::Revoke { name }) => commands::tokens::revoke(&client().await?, &name).await,
        ClientCommand::Secret(SecretCommand::Set { secret, key, from_literal, from_file, from_stdin }) => {
            let value = commands::secrets::read_value(from_literal, from_file.as_deref(), from_stdin)?;
            commands::secrets::set(&client().await?, &secret, &key, value).await
        }
        ClientCommand::Secret(SecretCommand::List { target, output }) => commands::secrets::list(&client().await?, &target, output).await,
        ClientCommand::Secret(SecretCommand::Delete { secret, key }) => {
            commands::secrets::delete(&client().await?, &secret, key.as_deref()).await
        }
        ClientCommand::Create { template: None, .. } => commands::create::list(&client().await?).await,
        ClientCommand::Create { template: Some(template), values, dry_run } => {
            commands::create::create(&client().await?, &template, &values, dry_run).await
        }
        ClientCommand::Claim(ClaimCommand::List { namespace, output }) => {
            commands::claims::list(&client().await?, &namespace, output).await
        }
        ClientCommand::Claim(ClaimCommand::Plan { claim, composition, environment, output }) => {
            commands::claims::plan(&client().await?, &claim, &composition, environment.as_deref(), output).await
        }
        ClientCommand::Claim(ClaimCommand::Migrate { claim, composition, environment, confirm_delete, hold, release }) => {
            let hold = if hold {
                Some(true)
            } else if release {
                Some(false)
            } else {
                None
            };
            commands::claims::migrate(&client().await?, &claim, composition.as_deref(), environment.as_deref(), confirm_delete, hold).await
        }
        ClientCommand::Secret(SecretCommand::RotateMasterKey) => commands::secrets::rotate_master_key(&client().await?).await,
    }
}
