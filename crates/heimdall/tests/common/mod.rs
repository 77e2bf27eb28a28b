//! What the process tests share: the binary, free ports, running a command
//! and waiting for something to become true.

#![allow(dead_code)]

use std::process::{Command, Output};
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
