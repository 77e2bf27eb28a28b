//! `heimdall bench fleet`: a hub at fleet size, measured from outside, on
//! the path users take. It starts `heimdall up` (this binary) on loopback in
//! a scratch directory with a HOME of its own (no CLI context of yours is
//! touched), applies a generated organization through `POST /api/v1/apply`,
//! times what people do against it, restarts it, and prints one Markdown
//! table for BENCHMARKS.md. The hub's CPU and memory come from `/proc`, so
//! they are the hub's alone, not this process's.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use heimdall_api::resources::{ApplyDocument, ApplyOptions, ApplyRequest, ApplyResponse};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::client::Client;

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetOptions {
    /// Applications, spread evenly over the tenants.
    #[arg(long, default_value_t = 1000)]
    pub apps: usize,
    #[arg(long, default_value_t = 50)]
    pub tenants: usize,
    /// Clusters, half `env: dev`, half `env: prod`; every application goes to all of them.
    #[arg(long, default_value_t = 6)]
    pub clusters: usize,
    /// Applications per apply request while importing.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// One-application changes timed after the import.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub changes: u32,
    /// Keep the scratch directory (its path is printed) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// A hub process started by the benchmark.
struct Hub {
    child: tokio::process::Child,
    url: String,
    pid: u32,
}

impl Hub {
    /// Starts `heimdall up` on `data_dir`; returns once it says it is ready.
    async fn start(home: &Path, data_dir: &Path) -> Result<(Hub, Duration)> {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(std::env::current_exe().context("this program's path")?)
            .args(["up", "--no-examples", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env_remove("HEIMDALL_CONFIG")
            .env("HEIMDALL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting heimdall up")?;
        let pid = child.id().ok_or_else(|| anyhow!("the hub exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout from the hub"))?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .context("the hub did not say it was ready within 120 s")??
                .ok_or_else(|| anyhow!("the hub exited before it was ready"))?;
            if let Some(rest) = line.strip_prefix("Heimdall hub ready at ") {
                break rest.split_whitespace().next().unwrap_or_default().to_string();
            }
        };
        // The rest of its output is not ours to read; keep the pipe drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((Hub { child, url, pid }, started.elapsed()))
    }

    /// Stops the hub as an operator would (SIGTERM, then waiting for it), so
    /// the restart measured after it is a normal one; killed if it lingers.
    async fn stop(mut self) {
        let asked = tokio::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        if asked.is_ok_and(|s| s.success()) && tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_ok() {
            return;
        }
        let _ = self.child.kill().await;
    }

    /// CPU seconds the hub has used (user and system).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The fields after the command (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the line: indices 11 and 12 from the state on; USER_HZ is 100 on Linux.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// `(VmRSS, VmHWM)` of the hub in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits until the hub has used no CPU for `quiet`; returns the CPU seconds it used meanwhile.
    async fn settle(&self, quiet: Duration, at_most: Duration) -> f64 {
        let start = self.cpu_seconds();
        let deadline = Instant::now() + at_most;
        let mut last = start;
        while Instant::now() < deadline {
            tokio::time::sleep(quiet).await;
            let now = self.cpu_seconds();
            if now - last < 0.02 {
                break;
            }
            last = now;
        }
        self.cpu_seconds() - start
    }
}

fn cluster(i: usize) -> Value {
    let env = if i.is_multiple_of(2) { "dev" } else { "prod" };
    json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": format!("c-{i:04}"), "labels": {"env": env, "region": format!("r-{}", i % 3)}},
        "spec": {"delivery": "agent"}})
}

fn tenant(i: usize) -> Value {
    json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": format!("t-{i:03}")},
        "spec": {"displayName": format!("Team {i}"), "environments": ["dev", "prod"]}})
}

fn environment(name: &str) -> Value {
    json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Environment", "metadata": {"name": name},
        "spec": {"clusterSelector": {"matchLabels": {"env": name}}}})
}

/// Application `i` (tenant `i % tenants`): a webservice with a scaler and a gateway.
fn application(i: usize, tenants: usize, version: usize) -> Value {
    let tenant = format!("t-{:03}", i % tenants.max(1));
    let name = format!("app-{i:06}");
    json!({"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": name, "namespace": tenant},
    "spec": {"components": [{"name": name, "type": "webservice",
        "properties": {"image": format!("registry.example.com/{tenant}/{name}:{version}"), "ports": [{"port": 8080, "expose": true}]},
        "traits": [
            {"type": "scaler", "properties": {"replicas": 2}},
            {"type": "gateway", "properties": {"domain": format!("{name}.{tenant}.example.com"), "http": {"/": 8080}}},
        ]}]}})
}

async fn apply(client: &Client, objects: Vec<Value>) -> Result<ApplyResponse> {
    let documents =
        objects.into_iter().enumerate().map(|(i, object)| ApplyDocument { source: format!("bench, document {}", i + 1), object }).collect();
    client.post_json("/api/v1/apply", &ApplyRequest { documents, options: ApplyOptions::default() }).await
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Files and bytes under `dir`.
fn disk_use(dir: &Path) -> (u64, u64) {
    let mut pending = vec![dir.to_path_buf()];
    let (mut files, mut bytes) = (0, 0);
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => {
                    files += 1;
                    bytes += meta.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// Times `count` GETs of `path`; returns the samples and the last answer's size.
async fn time_gets(http: &reqwest::Client, url: &str, headers: &[(&str, &str)], count: usize) -> Result<(Vec<Duration>, usize)> {
    let mut samples = Vec::with_capacity(count);
    let mut size = 0;
    for _ in 0..count {
        let started = Instant::now();
        let mut request = http.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        samples.push(started.elapsed());
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        }
        size = body.len();
    }
    Ok((samples, size))
}

/// A portal session for `token`: the cookie the sign-in form sets.
async fn portal_cookie(hub: &str, token: &str) -> Result<String> {
    // The sign-in answers with a redirect that carries the cookie: not followed here.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let response = http.post(format!("{hub}/sign-in")).header("Origin", hub).form(&[("token", token), ("returnTo", "/")]).send().await?;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("heimdall_session="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("the portal gave no session cookie ({})", response.status()))?;
    Ok(cookie.to_string())
}

/// Runs the fleet benchmark and prints its table.
pub async fn fleet(options: FleetOptions) -> Result<ExitCode> {
    if options.apps == 0 || options.tenants == 0 || options.clusters < 2 {
        bail!("expected --apps ≥ 1, --tenants ≥ 1 and --clusters ≥ 2");
    }
    // A fresh directory of our own: never a leftover of an earlier run, never someone else's.
    let scratch = tempfile::Builder::new().prefix("heimdall-bench-").tempdir().context("creating a scratch directory")?;
    let result = run(&options, scratch.path()).await;
    if options.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    let rows = result?;
    println!("| {} applications, {} tenants, {} clusters | Measured |", options.apps, options.tenants, options.clusters);
    println!("|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(options: &FleetOptions, scratch: &Path) -> Result<Vec<(String, String)>> {
    let data_dir: PathBuf = scratch.join("data");
    let (hub, first_start) = Hub::start(scratch, &data_dir).await?;
    let token = std::fs::read_to_string(data_dir.join("admin-token")).context("reading the admin token")?.trim().to_string();
    let client = Client::new(&hub.url, Some(token.clone()))?;
    let http = crate::client::http_client()?;
    let mut rows: Vec<(String, String)> = vec![("hub start, empty".into(), ms(first_start))];

    let defaults = json!({"apiVersion": "platform.heimdall.dev/v1alpha1", "kind": "Defaults", "metadata": {"name": "default"},
        "spec": {"environments": ["dev", "prod"]}});
    let mut platform = vec![defaults, environment("dev"), environment("prod")];
    platform.extend((0..options.clusters).map(cluster));
    platform.extend((0..options.tenants).map(tenant));
    apply(&client, platform).await.context("applying the platform")?;
    hub.settle(Duration::from_millis(500), Duration::from_secs(60)).await;

    eprintln!("importing {} applications in batches of {}", options.apps, options.batch);
    let (cpu, started) = (hub.cpu_seconds(), Instant::now());
    let batch_size = options.batch as usize;
    let mut batch = Vec::with_capacity(batch_size);
    for i in 0..options.apps {
        batch.push(application(i, options.tenants, 1));
        if batch.len() == batch_size || i + 1 == options.apps {
            apply(&client, std::mem::take(&mut batch)).await.with_context(|| format!("importing up to application {i}"))?;
        }
    }
    let import = started.elapsed();
    let import_cpu = hub.cpu_seconds() - cpu;
    let first: Value = client.get("/api/v1/namespaces/t-000/applications/app-000000").await?;
    let targets = first.pointer("/status/targets").and_then(Value::as_array).map_or(0, Vec::len);
    if targets == 0 {
        bail!("application t-000/app-000000 rendered no target: {}", first.pointer("/status").unwrap_or(&Value::Null));
    }
    rows.push(("targets per application (rendered)".into(), targets.to_string()));
    rows.push((
        format!("importing {} applications (batches of {})", options.apps, options.batch),
        format!(
            "{:.1} s, {:.0} apps/s, {:.1} CPU-s ({:.1} ms of CPU per application)",
            import.as_secs_f64(),
            options.apps as f64 / import.as_secs_f64(),
            import_cpu,
            import_cpu * 1000.0 / options.apps as f64
        ),
    ));
    let after = hub.settle(Duration::from_millis(500), Duration::from_secs(600)).await;
    rows.push(("CPU after the import until idle".into(), format!("{after:.1} CPU-s")));

    let mut changes = Vec::with_capacity(options.changes as usize);
    for k in 0..options.changes as usize {
        let started = Instant::now();
        apply(&client, vec![application((k * 7919) % options.apps, options.tenants, k + 2)]).await?;
        changes.push(started.elapsed());
    }
    rows.push((
        format!("one application changed ({} changes, one after another)", options.changes),
        format!("p50 {}, p99 {}", ms(percentile(&mut changes, 0.5)), ms(percentile(&mut changes, 0.99))),
    ));

    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let (mut page, page_size) = time_gets(&http, &format!("{}/api/v1/applications?limit=100", hub.url), &auth, 20).await?;
    rows.push(("`GET /api/v1/applications?limit=100`".into(), format!("p50 {}, {} KiB", ms(percentile(&mut page, 0.5)), page_size / 1024)));
    let (mut all, all_size) = time_gets(&http, &format!("{}/api/v1/applications", hub.url), &auth, 3).await?;
    rows.push((
        "`GET /api/v1/applications` (no limit: the default page)".into(),
        format!("p50 {}, {} KiB", ms(percentile(&mut all, 0.5)), all_size / 1024),
    ));
    let (mut entity, _) =
        time_gets(&http, &format!("{}/api/catalog/entities/by-name/component/t-000/app-000000", hub.url), &auth, 20).await?;
    rows.push(("catalog entity by name".into(), format!("p50 {}", ms(percentile(&mut entity, 0.5)))));
    let cookie = portal_cookie(&hub.url, &token).await?;
    let (mut portal, _) =
        time_gets(&http, &format!("{}/catalog/t-000/component/app-000000", hub.url), &[("Cookie", cookie.as_str())], 10).await?;
    rows.push((
        "portal entity page of one application".into(),
        format!("p50 {}, p99 {}", ms(percentile(&mut portal, 0.5)), ms(percentile(&mut portal, 0.99))),
    ));

    let (rss, peak) = hub.memory_mib();
    rows.push(("hub memory after these".into(), format!("RSS {rss:.0} MiB, peak {peak:.0} MiB")));
    let (files, bytes) = disk_use(&data_dir.join("git"));
    rows.push(("git storage".into(), format!("{:.0} MiB in {files} files", bytes as f64 / 1048576.0)));
    hub.stop().await;

    let (hub, restart) = Hub::start(scratch, &data_dir).await?;
    let restart_cpu = hub.settle(Duration::from_millis(1000), Duration::from_secs(900)).await;
    let (rss, _) = hub.memory_mib();
    rows.push((
        format!("hub restart with {} applications", options.apps),
        format!("ready in {}, then {restart_cpu:.1} CPU-s until idle, RSS {rss:.0} MiB", ms(restart)),
    ));
    hub.stop().await;
    Ok(rows)
}
