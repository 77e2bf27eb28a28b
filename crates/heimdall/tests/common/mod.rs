//! What the process tests share: the binary, free ports, running a command
//! and waiting for something to become true.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_heimdall");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Runs `heimdall` with `env`, ignoring any hub or token of the caller's environment.
pub fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("HEIMDALL_HUB").env_remove("HEIMDALL_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run heimdall")
}

/// The stdout of a command that must have succeeded.
pub fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}\n{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `check` every 200 ms until it gives something; panics after 90 s.
pub fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    eventually_or(what, check).unwrap_or_else(|| panic!("timed out waiting until {what}"))
}

/// [`eventually`], returning `None` on time-out so the caller can say more.
pub fn eventually_or<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            eprintln!("timed out waiting until {what}");
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running hub process; killed on drop.
pub struct Running {
    pub child: Child,
    pub url: String,
    /// Everything it printed, for failure messages.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    pub fn last_lines(&self, n: usize) -> String {
        let output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        output[output.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `heimdall ARGS` and waits until it says it is ready (on stdout for
/// `up`, in its log for `hub`), or fails with what it printed.
pub fn start(args: &[&str], env: &[(&str, String)], ready_marker: &str, port: u16) -> Running {
    let mut command = Command::new(BIN);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start heimdall");
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let sender = sender.clone();
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                output.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
                let _ = sender.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let ready = line.contains(ready_marker);
                seen.push(line);
                if ready {
                    return Running { child, url: format!("http://127.0.0.1:{port}"), output };
                }
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("heimdall exited with {status} before it was ready:\n{}", seen.join("\n"));
                }
                assert!(Instant::now() < deadline, "heimdall was not ready within 60s:\n{}", seen.join("\n"));
            }
        }
    }
}

/// `heimdall up` with its data in `dir/data` and its CLI context in `dir/client.yaml`.
pub fn up(dir: &Path, extra: &[&str]) -> ([(&'static str, String); 1], u16, Running) {
    up_on(dir, free_port(), extra)
}

/// [`up`] on a given port (a restart keeps the address agents know).
pub fn up_on(dir: &Path, port: u16, extra: &[&str]) -> ([(&'static str, String); 1], u16, Running) {
    let env = [("HEIMDALL_CONFIG", dir.join("client.yaml").display().to_string())];
    let listen = format!("127.0.0.1:{port}");
    let data = dir.join("data");
    let mut args = vec!["up", "--data-dir", data.to_str().expect("utf-8"), "--listen", &listen];
    args.extend_from_slice(extra);
    let hub = start(&args, &env, "Heimdall hub ready at", port);
    (env, port, hub)
}
