//! `heimdall claim list|plan|migrate`: the instances of a namespace's claims
//! (where, which composition, cost, state, consumers), what moving one to
//! another composition would do, and the migration itself (a
//! `ClaimMigration` document, applied like any other).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use heimdall_api::claims::{ClaimView, MigrationPlan};
use heimdall_api::resources::{ApplyDocument, ApplyOptions, ApplyRequest, ApplyResponse};
use heimdall_model::Resource;
use serde_json::json;

use super::resources::url_encode;
use crate::client::Client;
use crate::output::{OutputFormat, serialize, table};

fn split(claim: &str) -> Result<(&str, &str)> {
    match claim.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => Ok((namespace, name)),
        _ => bail!("expected NAMESPACE/CLAIM (e.g. shop/orders-db), got {claim:?}"),
    }
}

pub async fn list(client: &Client, namespace: &str, output: OutputFormat) -> Result<ExitCode> {
    let claims: Vec<ClaimView> = client.get(&format!("/api/v1/namespaces/{}/claim-instances", url_encode(namespace))).await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&claims, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = claims
        .iter()
        .map(|c| {
            let role = match (c.role.as_str(), c.serving) {
                ("New", true) => "new, serving",
                ("New", false) => "new",
                (_, true) => "serving",
                _ => "retiring",
            };
            vec![
                c.claim.clone(),
                c.capability.clone(),
                c.owner.clone(),
                c.cluster.clone(),
                c.composition.clone(),
                role.to_string(),
                format!("{:.2}", c.cost),
                c.state.clone(),
                c.consumers.join(","),
                c.connection_secret.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["CLAIM", "CAPABILITY", "OWNER", "CLUSTER", "COMPOSITION", "ROLE", "COST/MONTH", "STATE", "CONSUMERS", "SECRET"], &rows)
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn plan(client: &Client, claim: &str, composition: &str, environment: Option<&str>, output: OutputFormat) -> Result<ExitCode> {
    let (namespace, name) = split(claim)?;
    let body = json!({"composition": composition, "environment": environment});
    let plan: MigrationPlan =
        client.post_json(&format!("/api/v1/namespaces/{}/claims/{}/plan", url_encode(namespace), url_encode(name)), &body).await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&plan, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Moving claim {}/{} ({}) to composition {composition}:", plan.namespace, plan.claim, plan.owner);
    for step in &plan.steps {
        println!("\n  cluster {}: {} -> {}", step.cluster, step.from, step.to);
        println!("    1. create beside the old instance: {}", step.create.join(", "));
        let consumers = if step.switch.is_empty() { "(no consumers)".to_string() } else { step.switch.join(", ") };
        let secret = step.switch_to_secret.as_deref().map(|s| format!(" (they then read Secret {s})")).unwrap_or_default();
        println!("    2. when it reports ready, switch {consumers}{secret}");
        println!("    3. after --confirm-delete, delete: {}", step.delete.join(", "));
    }
    println!(
        "\n  cost of the claim: {:.2} -> {:.2} a month, every environment (both instances are paid while the migration runs)",
        plan.cost_before, plan.cost_after
    );
    let scope = environment.map(|e| format!(" --environment {e}")).unwrap_or_default();
    println!("\nStart it with: heimdall claim migrate {claim} --composition {composition}{scope} --hold");
    println!("then copy the data and let consumers switch with --release (docs/capabilities.md).");
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(
    client: &Client,
    claim: &str,
    composition: Option<&str>,
    environment: Option<&str>,
    confirm_delete: bool,
    hold: Option<bool>,
) -> Result<ExitCode> {
    let (namespace, name) = split(claim)?;
    let path = format!("/api/v1/namespaces/{}/claimmigrations/{}", url_encode(namespace), url_encode(name));
    let spec = match composition {
        Some(composition) => json!({
            "composition": composition, "environment": environment, "confirmDelete": confirm_delete, "hold": hold.unwrap_or(false),
        }),
        None if confirm_delete || hold.is_some() => {
            let existing: Resource =
                client.get(&path).await.with_context(|| format!("no migration of {claim} under way; give --composition"))?;
            let mut spec = existing.spec;
            if confirm_delete {
                spec["confirmDelete"] = json!(true);
            }
            if let Some(hold) = hold {
                spec["hold"] = json!(hold);
            }
            spec
        }
        None => bail!(
            "give --composition to start a migration, --hold/--release to hold or let go of the switch, or --confirm-delete to finish"
        ),
    };
    let mut spec = spec;
    if let Some(object) = spec.as_object_mut() {
        object.retain(|_, v| !v.is_null());
    }
    let document = json!({
        "apiVersion": heimdall_model::spec::platform::GROUP_VERSION,
        "kind": "ClaimMigration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    let request = ApplyRequest {
        documents: vec![ApplyDocument { source: format!("claim migrate {claim}"), object: document }],
        options: ApplyOptions { namespace: None, dry_run: false, continue_on_error: false },
    };
    let _: ApplyResponse = client.post_json("/api/v1/apply", &request).await?;
    if confirm_delete {
        println!("migration of {claim}: the old instance is deleted once the new one is ready and serving");
    } else if hold == Some(true) {
        println!("migration of {claim}: consumers stay on the old instance until: heimdall claim migrate {claim} --release");
    } else {
        println!("migration of {claim} started: the new instance is created; consumers switch when it reports ready");
        println!("watch it with: heimdall claim list {namespace}; finish with: heimdall claim migrate {claim} --confirm-delete");
    }
    Ok(ExitCode::SUCCESS)
}
