//! A real OpenID provider for tests: npm's `oidc-provider`, run by node from
//! `crates/testsupport/oidc/provider.mjs` on a loopback port (see its
//! README for the users, clients and `/test/*` hooks). Missing node or
//! packages are a failure with what to install, never a skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{Value, json};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

fn ensure_packages() {
    crate::npm_ci(&folder(), "oidc-provider");
}

pub struct Provider {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
    _config: tempfile::NamedTempFile,
}

impl Provider {
    /// Starts a provider; `config` is merged into the script's defaults
    /// (e.g. `{"heimdall": {"redirect_uris": [...]}}`).
    pub fn start(config: Value) -> Provider {
        ensure_packages();
        let mut file = tempfile::NamedTempFile::new().expect("config file");
        std::io::Write::write_all(&mut file, config.to_string().as_bytes()).expect("write config");
        let mut child = Command::new("node")
            .arg(folder().join("provider.mjs"))
            .arg(file.path())
            .env("OIDC_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js (Debian: apt-get install nodejs)"));
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let issuer = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("LISTENING ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("the OpenID provider exited before it listened"),
            }
        };
        // Keep draining stdout so the provider never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Provider { child, _stdin: stdin, issuer, _config: file }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Rotates the signing key (the old one stays published); returns the new kid.
    pub async fn rotate(&self) -> String {
        let answer: Value =
            reqwest::Client::new().post(format!("{}/test/rotate", self.issuer)).send().await.expect("rotate").json().await.expect("json");
        answer["kid"].as_str().expect("kid").to_string()
    }

    /// A JWT with exactly `claims`, signed with the provider's current key
    /// (`key: "unknown"` signs with a throwaway key under the current kid;
    /// `alg: "none"` makes an unsigned token).
    pub async fn mint(&self, claims: Value, options: Value) -> String {
        let mut body = json!({"claims": claims});
        if let (Some(body), Some(options)) = (body.as_object_mut(), options.as_object()) {
            body.extend(options.clone());
        }
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/test/mint", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("mint")
            .json()
            .await
            .expect("json");
        answer["token"].as_str().expect("token").to_string()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
