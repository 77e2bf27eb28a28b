//! Fetching a URL someone else named (a catalog location, a file its
//! Location entities list): never the hub's own network. A URL whose host
//! is, or resolves to, a loopback, private, link-local (cloud metadata),
//! shared, multicast or unspecified address is refused, unless the platform
//! team allows that host (`catalog.allowedHosts`) or private networks
//! altogether (`catalog.allowPrivateNetworks`). The check is made on the
//! addresses the connection then uses (a resolver of its own, so a name
//! that resolves differently the second time gains nothing), on IP literals,
//! and on every redirect. Errors name the URL and the rule, never what the
//! server answered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The hub's rules for fetching URLs (`catalog:` in its config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchPolicy {
    /// Hosts fetched even on private addresses (`git.internal`, or `.internal` for every subdomain).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Fetch from any address (a hub inside a trusted network only).
    #[serde(default)]
    pub allow_private_networks: bool,
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |high: u16, low: u16| std::net::Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8);
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(s[1], s[2])));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x2001 && s[1] == 0x0000)
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

impl FetchPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_private_networks
            || self.allowed_hosts.iter().any(|allowed| {
                let allowed = allowed.to_ascii_lowercase();
                host == allowed || allowed.starts_with('.') && host.ends_with(&allowed)
            })
    }

    /// Refuses a URL whose host is a non-public IP literal (names are checked when resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{url}: only http and https URLs are fetched"));
        }
        let host = url.host_str().unwrap_or_default();
        if self.host_allowed(host) {
            return Ok(());
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(ip) if !is_public(ip) => Err(refusal(url.as_str(), ip)),
            _ => Ok(()),
        }
    }

    /// The same policy without its allowed hosts, for what a fetched file
    /// names elsewhere: a file may not point the hub at another internal host.
    pub fn without_allowed_hosts(&self) -> FetchPolicy {
        FetchPolicy { allowed_hosts: Vec::new(), allow_private_networks: self.allow_private_networks }
    }

    /// A client that fetches only what this policy allows.
    pub fn client(self: &Arc<Self>, timeout: Duration) -> reqwest::Client {
        let policy = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("more than 5 redirects");
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(message) => attempt.error(message),
            }
        });
        reqwest::Client::builder()
            .timeout(timeout)
            // A proxy would resolve names itself, out of this policy's sight.
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(Guarded(self.clone())))
            .build()
            .unwrap_or_default()
    }
}

fn refusal(what: &str, ip: IpAddr) -> String {
    format!(
        "{what} is at {ip}, an address of the hub's own network (loopback, private, link-local or reserved); the hub fetches only public addresses unless catalog.allowedHosts lists the host"
    )
}

/// Resolves names and keeps only the addresses the policy allows.
struct Guarded(Arc<FetchPolicy>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy.host_allowed(&host) {
                return Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs);
            }
            if let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
                return Err(refusal(&host, private.ip()).into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_fetched() {
        for private in [
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "fec0::1",
            "2002:a00:1::1",
            "2001:0:4136::1",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn literals_are_refused_unless_their_host_is_allowed() {
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        let strict = FetchPolicy::default();
        let refused = strict.check_url(&url("http://169.254.169.254/latest/meta-data/")).expect_err("metadata");
        assert!(refused.contains("169.254.169.254") && refused.contains("catalog.allowedHosts"), "{refused}");
        assert!(strict.check_url(&url("http://[::1]:8080/x")).is_err());
        assert!(strict.check_url(&url("file:///etc/passwd")).is_err());
        assert!(strict.check_url(&url("https://example.com/catalog-info.yaml")).is_ok(), "names are checked when resolved");
        let allowed = FetchPolicy { allowed_hosts: vec!["127.0.0.1".into(), ".internal".into()], allow_private_networks: false };
        assert!(allowed.check_url(&url("http://127.0.0.1:9000/x")).is_ok());
        assert!(allowed.host_allowed("git.internal") && !allowed.host_allowed("internal.evil.com"));
    }

    #[tokio::test]
    async fn names_that_resolve_to_the_hubs_network_are_refused_when_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let app = axum::Router::new().route("/x", axum::routing::get(|| async { "token: SECRET" }));
            let _ = axum::serve(listener, app).await;
        });
        let client = Arc::new(FetchPolicy::default()).client(Duration::from_secs(5));
        let error = client.get(format!("http://localhost:{port}/x")).send().await.expect_err("refused");
        let message = format!("{error:?}");
        assert!(message.contains("address of the hub's own network") && !message.contains("SECRET"), "{message}");
        let allowed =
            Arc::new(FetchPolicy { allowed_hosts: vec!["localhost".into()], ..Default::default() }).client(Duration::from_secs(5));
        assert_eq!(
            allowed.get(format!("http://localhost:{port}/x")).send().await.expect("allowed").text().await.expect("body"),
            "token: SECRET"
        );
        server.abort();
    }
}
