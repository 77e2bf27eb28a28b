//! Test-only support. Never a dependency of production code.
//!
//! [`Postgres`] starts a real PostgreSQL server (Debian's `postgresql`
//! package) in a temporary directory on a free loopback port, and stops it on
//! drop. If the server binaries are missing, it panics with what to install:
//! a PostgreSQL test must never pass by not running.

pub mod catalog_fixture;
pub mod fake_kube;
pub mod forward_proxy;
pub mod layering;
pub mod oidc;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared conformance corpus: `HEIMDALL_CONFORMANCE_DIR`, else
/// `shared/conformance` beside the repository. Missing is a failure, never a skip.
pub fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("HEIMDALL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    assert!(dir.is_dir(), "conformance corpus not found at {}: set HEIMDALL_CONFORMANCE_DIR", dir.display());
    dir
}

static NPM_INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Installs a folder's pinned npm packages once (`npm ci`), if `package`
/// is not in its `node_modules` yet. Missing npm is a failure, never a skip.
pub fn npm_ci(folder: &Path, package: &str) {
    let _one_at_a_time = NPM_INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if folder.join("node_modules").join(package).is_dir() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(folder)
        .status()
        .unwrap_or_else(|e| panic!("cannot run npm ({e}): install Node.js and npm (Debian: apt-get install nodejs npm)"));
    assert!(status.success(), "npm ci failed in {}", folder.display());
}

/// Runs Backstage's own catalog client (`backstage/client.mjs`, with
/// `@backstage/catalog-client` pinned) against the hub at `hub` and returns
/// what it printed, as JSON. Panics with the client's error if a call fails.
pub fn backstage_catalog_client(hub: &str, token: &str) -> serde_json::Value {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("backstage");
    npm_ci(&folder, "@backstage/catalog-client");
    let output = std::process::Command::new("node")
        .arg(folder.join("client.mjs"))
        .env("HUB", hub)
        .env("TOKEN", token)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js (Debian: apt-get install nodejs)"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the Backstage catalog client failed:\n{}{}", stdout, String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("the client printed no JSON ({e}): {stdout}"))
}

/// The peak resident memory of this process so far, in MiB (benchmarks report it).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Every `.yaml`/`.yml` file under `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

pub struct Postgres {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a fresh server with trust authentication for user `postgres`.
    pub fn start() -> Postgres {
        let bin = find_bin_dir();
        let dir = tempfile::Builder::new().prefix("heimdall-pg-").tempdir().expect("create temp dir for PostgreSQL");
        let data = dir.path().join("data");
        let owner = service_user();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown PostgreSQL temp dir");
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        run_as(&mut initdb, owner);
        let output = initdb.output().expect("run initdb");
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));

        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("create PostgreSQL log");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path().join("postgres.log"), Some(uid), Some(gid)).expect("chown log");
        }
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .args(["-D", &data.to_string_lossy(), "-p", &port.to_string(), "-k", &dir.path().to_string_lossy()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log);
        run_as(&mut postgres, owner);
        let child = postgres.spawn().expect("start postgres");
        let mut server = Postgres { child, port, _dir: dir };
        server.wait_ready(&bin);
        server
    }

    /// A URL for the `postgres` database of this server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn wait_ready(&mut self, bin: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("postgres.log")).unwrap_or_default();
                panic!("postgres exited with {status} before it was ready:\n{log}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ready = Command::new(bin.join("pg_isready"))
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "postgres did not become ready within 60s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("find a free loopback port")
}

/// PostgreSQL refuses to run as root; when we are root, run it as the
/// `postgres` user that Debian's package creates.
fn service_user() -> Option<(u32, u32)> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("running as root, but there is no `postgres` user: install Debian's postgresql package (apt-get install postgresql)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().expect("uid"), fields[3].parse().expect("gid")))
}

fn run_as(command: &mut Command, owner: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
}

/// `HEIMDALL_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
fn find_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HEIMDALL_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists());
    on_path.expect(
        "PostgreSQL server binaries not found: install Debian's postgresql package (apt-get install postgresql) or set HEIMDALL_PG_BIN",
    )
}
