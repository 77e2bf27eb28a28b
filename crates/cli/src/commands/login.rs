//! `login`, `logout` and `whoami`: single sign-on with the hub's identity provider.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use heimdall_api::auth::{AuthConfig, WhoAmI};

use crate::client::{Client, http_client};
use crate::context::{ClientConfig, ConfigLock, Context, OidcSession, config_path};
use crate::oidc;
use crate::output::{OutputFormat, serialize};

/// How long `--browser` waits for the browser to come back.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

pub struct LoginOptions {
    pub hub: Option<String>,
    pub context: Option<String>,
    pub browser: bool,
    pub no_open: bool,
}

/// `tenants: shop (developer)`, `platform admin`, or a hint when there is no role.
pub fn describe_roles(me: &WhoAmI) -> String {
    let mut parts = Vec::new();
    if me.platform_admin {
        parts.push("platform admin".to_string());
    }
    if !me.tenants.is_empty() {
        let tenants: Vec<String> = me.tenants.iter().map(|(tenant, role)| format!("{tenant} ({role})")).collect();
        parts.push(format!("tenants: {}", tenants.join(", ")));
    }
    if parts.is_empty() {
        return "no roles yet: ask a tenant's owner to add you (or one of your groups) as a member".to_string();
    }
    parts.join("; ")
}

/// The context a login writes: `--context`; else the current one if it is
/// for this hub and holds no API token (a previous login); else the hub's
/// `host[:port]` (`127.0.0.1:8080` becomes `127.0.0.1-8080`), so a login
/// never overwrites the admin-token context `heimdall up` writes.
fn context_name(config: &ClientConfig, hub: &str, flag: Option<String>) -> String {
    if let Some(name) = flag {
        return name;
    }
    if let (Some(name), Some(current)) = (&config.current_context, config.current())
        && current.hub.trim_end_matches('/') == hub
        && current.token.is_none()
        && current.token_file.is_none()
    {
        return name.clone();
    }
    let authority = reqwest::Url::parse(hub)
        .ok()
        .and_then(|url| url.host_str().map(|host| url.port().map_or_else(|| host.to_string(), |port| format!("{host}:{port}"))))
        .unwrap_or_else(|| hub.to_string());
    authority.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '-' }).collect()
}

async fn hub_auth_config(http: &reqwest::Client, hub: &str) -> Result<AuthConfig> {
    let url = format!("{hub}/api/v1/auth/config");
    let response = http.get(&url).send().await.with_context(|| format!("cannot reach the hub at {hub}"))?;
    if !response.status().is_success() {
        bail!("the hub at {hub} answered {} for {url}; is it a Heimdall hub?", response.status());
    }
    response.json().await.with_context(|| format!("the hub's answer at {url} is not what this CLI expects"))
}

pub async fn login(options: LoginOptions) -> Result<ExitCode> {
    let path = config_path();
    let config = ClientConfig::load(&path)?;
    let hub = options
        .hub
        .or_else(|| config.current().map(|c| c.hub.clone()))
        .ok_or_else(|| anyhow!("which hub? pass --hub URL"))?
        .trim_end_matches('/')
        .to_string();
    let http = http_client()?;
    let sso = hub_auth_config(&http, &hub)
        .await?
        .oidc
        .ok_or_else(|| anyhow!("this hub has no single sign-on; use its admin token or an API token (heimdall token create)"))?;
    let discovery = oidc::discover(&http, &sso.issuer).await?;
    let scope = oidc::scopes(&sso.scopes);
    let tokens = if options.browser {
        oidc::browser_flow(&http, &discovery, &sso.client_id, &scope, !options.no_open, BROWSER_TIMEOUT).await?
    } else {
        // Tests poll faster than a person needs (the provider's interval is for people).
        let poll = std::env::var("HEIMDALL_LOGIN_POLL_INTERVAL_MS").ok().and_then(|ms| ms.parse().ok()).map(Duration::from_millis);
        oidc::device_flow(&http, &discovery, &sso.client_id, &scope, poll).await?
    };

    let session = OidcSession {
        issuer: sso.issuer,
        client_id: sso.client_id,
        token_endpoint: discovery.token_endpoint,
        id_token: tokens.id_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_at,
    };
    let whoami_client = Client::from_options(Some(hub.clone()), Some(session.id_token.clone())).await?;
    let me: WhoAmI = whoami_client.get("/api/v1/auth/whoami").await.context("the hub did not accept the sign-in")?;

    let _lock = ConfigLock::acquire(&path).await?;
    let mut config = ClientConfig::load(&path)?;
    let name = context_name(&config, &hub, options.context);
    // An API token next to the session would win over it; the session replaces it.
    config.contexts.insert(name.clone(), Context { hub: hub.clone(), token: None, token_file: None, oidc: Some(session) });
    config.current_context = Some(name.clone());
    config.save(&path)?;
    println!("Logged in to {hub} as {}", me.name);
    println!("{}", describe_roles(&me));
    eprintln!("Context {name:?} saved in {} and made current.", path.display());
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(context: Option<String>) -> Result<ExitCode> {
    let path = config_path();
    let _lock = ConfigLock::acquire(&path).await?;
    let mut config = ClientConfig::load(&path)?;
    let name = context.or_else(|| config.current_context.clone()).ok_or_else(|| anyhow!("no current context: pass --context NAME"))?;
    let entry = config.contexts.get_mut(&name).ok_or_else(|| anyhow!("no context named {name:?} in {}", path.display()))?;
    let Some(session) = entry.oidc.take() else {
        eprintln!("Context {name:?} has no sign-in; nothing to do.");
        return Ok(ExitCode::SUCCESS);
    };
    let hub = entry.hub.clone();
    config.save(&path)?;
    // Best effort: the local copy is gone either way.
    if let Some(refresh_token) = &session.refresh_token {
        let http = http_client()?;
        let revoked = async {
            let discovery = oidc::discover(&http, &session.issuer).await?;
            match discovery.revocation_endpoint {
                Some(endpoint) => oidc::revoke(&http, &endpoint, &session.client_id, refresh_token).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = revoked {
            eprintln!("warning: could not revoke the sign-in at the identity provider: {e:#}");
        }
    }
    println!("Logged out of {hub} (context {name:?})");
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(client: &Client, output: OutputFormat) -> Result<ExitCode> {
    let me: WhoAmI = client.get("/api/v1/auth/whoami").await?;
    if output != OutputFormat::Table {
        print!("{}", serialize(&me, output)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("name: {}", me.name);
    println!("roles: {}", describe_roles(&me));
    println!("groups: {}", if me.groups.is_empty() { "-".to_string() } else { me.groups.join(", ") });
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_name_their_context_after_the_hub_unless_told() {
        let mut config = ClientConfig::default();
        assert_eq!(context_name(&config, "http://127.0.0.1:8080", None), "127.0.0.1-8080");
        assert_eq!(context_name(&config, "https://hub.example.com", None), "hub.example.com");
        assert_eq!(context_name(&config, "https://hub.example.com", Some("prod".into())), "prod");
        config.contexts.insert(
            "local".into(),
            Context { hub: "http://127.0.0.1:8080".into(), token_file: Some("/data/admin-token".into()), ..Context::default() },
        );
        config.current_context = Some("local".into());
        assert_eq!(context_name(&config, "http://127.0.0.1:8080", None), "127.0.0.1-8080", "the admin context is kept");
        config.contexts.insert("prod".into(), Context { hub: "https://hub.example.com".into(), ..Context::default() });
        config.current_context = Some("prod".into());
        assert_eq!(context_name(&config, "https://hub.example.com", None), "prod", "a new login replaces the old one");
    }

    #[test]
    fn roles_read_naturally() {
        let mut me = WhoAmI { name: "alice".into(), platform_admin: false, tenants: Default::default(), groups: vec![] };
        assert!(describe_roles(&me).starts_with("no roles yet"));
        me.tenants.insert("shop".into(), "developer".into());
        me.tenants.insert("payments".into(), "viewer".into());
        assert_eq!(describe_roles(&me), "tenants: payments (viewer), shop (developer)");
        me.platform_admin = true;
        assert_eq!(describe_roles(&me), "platform admin; tenants: payments (viewer), shop (developer)");
    }
}
