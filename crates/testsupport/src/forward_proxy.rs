//! A **test-only** HTTP forward proxy: absolute-form requests for `http://`
//! URLs and `CONNECT` tunnels for `https://`, as corporate proxies do. It
//! counts the connections it carried, so a test can prove a client used it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct ForwardProxy {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ForwardProxy {
    pub async fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let server = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(carry(client));
            }
        });
        ForwardProxy { addr, connections, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client connections carried so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn carry(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let Some((request_line, rest)) = text.split_once("\r\n") else { return };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else { return };
    if method == "CONNECT" {
        let Ok(mut upstream) = TcpStream::connect(target).await else { return };
        if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    // `GET http://host:port/path HTTP/1.1` -> connect to host:port, send `GET /path HTTP/1.1`.
    let Some(without_scheme) = target.strip_prefix("http://") else { return };
    let (authority, path) = without_scheme.split_once('/').map_or((without_scheme, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let Ok(mut upstream) = TcpStream::connect(authority).await else { return };
    let forwarded = format!("{method} {path} {version}\r\n{rest}");
    if upstream.write_all(forwarded.as_bytes()).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
