//! `heimdall render`: render applications offline, without a hub, for every
//! target at once, like `vela dry-run` for all clusters.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use heimdall_model::{Document, Resource, decode, kinds};
use heimdall_render::{Platform, RenderOptions, Rendered, render};
use serde::Serialize;

use heimdall_cli::files::read_with_sources;
use heimdall_cli::output::{OutputFormat, serialize};

/// Decodes documents; Kubernetes objects of kinds Heimdall does not store are
/// skipped with a note (example files often carry what must already exist).
fn decode_all(documents: &[Document], namespace: &str) -> Result<Vec<(String, Resource)>> {
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    for document in documents {
        let kind = document.value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let api_version = document.value.get("apiVersion").and_then(|v| v.as_str());
        let group = |api_version: &str| api_version.rsplit_once('/').map_or("", |(group, _)| group).to_string();
        // A kind of another API group (a `v1` Secret beside Heimdall's Secret) is someone else's kind.
        let is_foreign_object = !kind.is_empty()
            && kinds::by_kind(kind).is_none_or(|known| api_version.is_some_and(|v| group(v) != group(known.api_version)))
            && api_version.is_some_and(|v| v != heimdall_model::spec::score::API_VERSION);
        if is_foreign_object {
            eprintln!("note: {}: skipped {kind}, not a kind Heimdall renders", document.source);
            continue;
        }
        match decode(&document.value, &document.source, namespace) {
            Ok(decoded) => resources.push((document.source.clone(), decoded.resource)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(resources)
}

/// The platform of a folder laid out like `examples/platform/`.
pub fn load_platform(dir: &Path) -> Result<Platform> {
    let documents = read_with_sources(&[dir.to_path_buf()]).with_context(|| format!("reading platform folder {}", dir.display()))?;
    let resources = decode_all(&documents, "default")?;
    Platform::from_resources(resources.iter().map(|(_, r)| r))
        .map_err(|errors| anyhow::anyhow!("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

#[derive(Serialize)]
struct AppOutput<'a> {
    source: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
    #[serde(flatten)]
    rendered: &'a Rendered,
}

#[derive(Debug, clap::Args)]
pub struct Options {
    /// File or folder of Applications and Score workloads.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Render for this environment only.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// The platform team's folder (definitions, policies, defaults, environments, clusters).
    #[arg(long)]
    pub platform: Option<PathBuf>,
    /// Namespace for documents that name none.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Image for Score containers written as `image: .`.
    #[arg(long)]
    pub image: Option<String>,
    /// Treat this suspend step as approved (repeatable).
    #[arg(long)]
    pub approve: Vec<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,
}

pub fn run(options: Options) -> Result<ExitCode> {
    let platform = match &options.platform {
        Some(dir) => load_platform(dir)?,
        None => Platform::builtin(),
    };
    let documents = read_with_sources(&options.files)?;
    let resources = decode_all(&documents, options.namespace.as_deref().unwrap_or("default"))?;
    let apps: Vec<&(String, Resource)> =
        resources.iter().filter(|(_, r)| matches!(r.kind.as_str(), "Application" | "Workload" | "Claim")).collect();
    if apps.is_empty() {
        bail!(
            "no Application or Score workload found in {}",
            options.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let render_options = RenderOptions {
        environment: options.environment.clone(),
        approvals: options.approve.iter().cloned().collect::<BTreeSet<_>>(),
        score_image: options.image.clone(),
        // Offline there is no catalog: references are checked by the hub.
        secrets: None,
        // Nor claim state: each claim takes the composition its selectors pick.
        claims: None,
        // Nor a writer: what any member of the tenant may deploy.
        tenant_role: None,
    };
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for (source, app) in &apps {
        match render(app, source, &platform, &render_options) {
            Ok(rendered) => outputs.push((source.as_str(), app, rendered)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    match options.output {
        OutputFormat::Json => {
            let list: Vec<AppOutput> = outputs
                .iter()
                .map(|(source, app, rendered)| AppOutput {
                    source,
                    kind: &app.kind,
                    name: &app.metadata.name,
                    namespace: app.metadata.namespace.as_deref(),
                    rendered,
                })
                .collect();
            print!("{}", serialize(&list, OutputFormat::Json)?);
        }
        _ => {
            let mut out = String::new();
            for (source, app, rendered) in &outputs {
                for target in &rendered.targets {
                    let environment = target.environment.as_deref().map(|e| format!(", environment: {e}")).unwrap_or_default();
                    let held = target.held_by.as_deref().map(|s| format!(" (held until step {s} is approved)")).unwrap_or_default();
                    out.push_str(&format!(
                        "# {} {}/{} from {source}\n# cluster: {}, namespace: {}{environment}{held}, revision: {}\n",
                        app.kind,
                        app.metadata.namespace.as_deref().unwrap_or_default(),
                        app.metadata.name,
                        target.cluster,
                        target.namespace,
                        &target.revision[..12]
                    ));
                    for object in &target.objects {
                        out.push_str("---\n");
                        out.push_str(&serialize(object, OutputFormat::Yaml)?);
                    }
                    for reference in &target.references {
                        out.push_str(&format!(
                            "# refers to existing {} {}\n",
                            reference.kind,
                            reference.name.as_deref().unwrap_or("(by label)")
                        ));
                    }
                }
                for warning in &rendered.warnings {
                    eprintln!("warning: {source}: {warning}");
                }
            }
            print!("{out}");
        }
    }
    let mut violations = 0;
    for (source, _, rendered) in &outputs {
        for finding in &rendered.findings {
            let level = match finding.finding.enforcement {
                heimdall_model::spec::platform::Enforcement::Deny => {
                    violations += 1;
                    "violation"
                }
                heimdall_model::spec::platform::Enforcement::Warn => "warning",
            };
            eprintln!(
                "{level}: {source}: policy {} on {}/{}: {}",
                finding.finding.policy, finding.cluster, finding.namespace, finding.finding.message
            );
        }
    }
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    if !failures.is_empty() || violations > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
