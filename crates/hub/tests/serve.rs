//! Serving over real sockets: plain HTTP and TLS, and graceful shutdown.

use heimdall_hub::config::TlsConfig;
use heimdall_hub::{AppState, server};
use heimdall_store::Store;

async fn state(dir: &std::path::Path) -> AppState {
    let store = Store::connect(&format!("sqlite://{}", dir.join("h.db").display())).await.expect("store");
    AppState::new(store, dir.join("git"))
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let tls = TlsConfig { cert_file: dir.path().join("tls.crt"), key_file: dir.path().join("tls.key") };
    std::fs::write(&tls.cert_file, certified.cert.pem()).expect("write cert");
    std::fs::write(&tls.key_file, certified.signing_key.serialize_pem()).expect("write key");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = state(dir.path()).await;
    let tls_for_server = tls.clone();
    let serving = tokio::spawn(async move {
        server::serve(listener, state, Some(&tls_for_server), async {
            let _ = stopped.await;
        })
        .await
    });

    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("root");
    let client = reqwest::Client::builder().add_root_certificate(root).build().expect("client");
    let url = format!("https://localhost:{port}/healthz");
    let mut answer = None;
    for _ in 0..100 {
        match client.get(&url).send().await {
            Ok(response) => {
                answer = Some(response);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    let response = answer.expect("the TLS server answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), r#"{"status":"ok"}"#);

    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "plain HTTP is not served on a TLS port");

    stop.send(()).expect("stop");
    serving.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn a_bad_certificate_fails_start_up_with_its_path() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = TlsConfig { cert_file: dir.path().join("missing.crt"), key_file: dir.path().join("missing.key") };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let err = server::serve(listener, state(dir.path()).await, Some(&tls), std::future::pending()).await.expect_err("must fail");
    assert!(err.to_string().contains("missing.crt"), "{err}");
}
