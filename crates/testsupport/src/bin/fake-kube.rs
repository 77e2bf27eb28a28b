//! Runs the test-only fake Kubernetes API server by hand, for trying the
//! agent on a machine without a cluster:
//!
//! `fake-kube [--listen 127.0.0.1:6443] [--kubeconfig fake-kubeconfig.yaml]`

use heimdall_testsupport::fake_kube::FakeKube;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let listen = value("--listen").unwrap_or_else(|| "127.0.0.1:6443".into());
    let kubeconfig = value("--kubeconfig").unwrap_or_else(|| "fake-kubeconfig.yaml".into());
    let Ok(addr) = listen.parse() else {
        eprintln!("--listen: expected HOST:PORT, got {listen:?}");
        std::process::exit(2);
    };
    let fake = FakeKube::start_on(addr).await;
    if let Err(e) = std::fs::write(&kubeconfig, fake.kubeconfig()) {
        eprintln!("cannot write {kubeconfig}: {e}");
        std::process::exit(1);
    }
    println!("fake Kubernetes API server on {} (kubeconfig: {kubeconfig}); Ctrl-C stops it", fake.url());
    let _ = tokio::signal::ctrl_c().await;
}
