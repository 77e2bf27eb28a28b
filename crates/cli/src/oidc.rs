//! The client side of single sign-on: OpenID discovery, the device
//! authorization flow (RFC 8628), the authorization code flow with PKCE and
//! a loopback redirect (RFC 7636, RFC 8252), refreshing and revoking.
//!
//! The CLI is a public client: it holds no secret. It does not verify ID
//! token signatures itself; the hub does that on every request. It only
//! reads `exp` (to refresh in time) and `nonce` (to bind a browser sign-in
//! to this process).

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Per request to the identity provider: a hung provider must not hang the CLI.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The provider's endpoints (`/.well-known/openid-configuration`), read as the hub reads them.
pub use heimdall_api::auth::Discovery;

/// A token endpoint's answer, success or error.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// What a sign-in or refresh yields.
pub struct Tokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
    /// The ID token's `exp`.
    pub expires_at: i64,
}

pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let response = http.get(&url).timeout(TIMEOUT).send().await.with_context(|| format!("cannot reach the identity provider at {url}"))?;
    if !response.status().is_success() {
        bail!("the identity provider answered {} for {url}", response.status());
    }
    let discovery: Discovery = response.json().await.with_context(|| format!("{url} is not an OpenID configuration"))?;
    // A mismatch means a misconfigured hub or a provider impersonating another.
    if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        bail!("{url} names issuer {:?}, not {issuer:?}", discovery.issuer);
    }
    Ok(discovery)
}

/// The hub's scopes, plus what the CLI needs: `openid` for an ID token,
/// `offline_access` for a refresh token.
pub fn scopes(from_hub: &[String]) -> String {
    let mut scopes: Vec<&str> = from_hub.iter().map(String::as_str).collect();
    for needed in ["openid", "offline_access"] {
        if !scopes.contains(&needed) {
            scopes.push(needed);
        }
    }
    scopes.join(" ")
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a JWT, unverified (the hub verifies).
pub fn claims(jwt: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| anyhow!("the ID token is not a JWT"))?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| anyhow!("the ID token is not a JWT"))?;
    serde_json::from_slice(&bytes).map_err(|_| anyhow!("the ID token is not a JWT"))
}

fn tokens(answer: TokenAnswer, previous_refresh: Option<&str>) -> Result<Tokens> {
    let id_token = answer.id_token.ok_or_else(|| anyhow!("the identity provider sent no ID token (is the openid scope allowed?)"))?;
    let expires_at = claims(&id_token)?.get("exp").and_then(serde_json::Value::as_i64).ok_or_else(|| anyhow!("the ID token has no exp"))?;
    // Providers that do not rotate refresh tokens send none back: keep the old one.
    let refresh_token = answer.refresh_token.or_else(|| previous_refresh.map(String::from));
    Ok(Tokens { id_token, refresh_token, expires_at })
}

/// Posts a form to the token endpoint. `Err(Ok(code))` is an OAuth error
/// code the caller may handle (`authorization_pending`...).
async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> Result<std::result::Result<TokenAnswer, (String, Option<String>)>> {
    let response = http
        .post(endpoint)
        .timeout(TIMEOUT)
        .form(form)
        .send()
        .await
        .with_context(|| format!("cannot reach the identity provider at {endpoint}"))?;
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("reading the answer of {endpoint}"))?;
    let answer: TokenAnswer = serde_json::from_slice(&bytes)
        .map_err(|_| anyhow!("the identity provider answered {status} at {endpoint}, not with OAuth JSON"))?;
    match answer.error.clone() {
        Some(error) => Ok(Err((error, answer.error_description))),
        None if status.is_success() => Ok(Ok(answer)),
        None => bail!("the identity provider answered {status} at {endpoint}"),
    }
}

fn describe(error: &str, description: Option<&str>) -> String {
    match description {
        Some(description) if !description.is_empty() => format!("{error} ({description})"),
        _ => error.to_string(),
    }
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    /// Google says `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

/// The device flow: shows a code to enter in any browser and polls until
/// the person has signed in. `poll` overrides the provider's interval.
pub async fn device_flow(
    http: &reqwest::Client,
    discovery: &Discovery,
    client_id: &str,
    scope: &str,
    poll: Option<Duration>,
) -> Result<Tokens> {
    let endpoint = discovery
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| anyhow!("the identity provider offers no device sign-in; use heimdall login --browser"))?;
    let response = http
        .post(endpoint)
        .timeout(TIMEOUT)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .with_context(|| format!("cannot reach the identity provider at {endpoint}"))?;
    let status = response.status();
    if !status.is_success() {
        let answer: Option<TokenAnswer> = response.json().await.ok();
        let error = answer.and_then(|a| a.error.map(|e| describe(&e, a.error_description.as_deref()))).unwrap_or_default();
        bail!("the identity provider refused the device sign-in for client {client_id}: {status} {error}");
    }
    let device: DeviceAuthorization = response.json().await.context("the device authorization answer is not what this CLI expects")?;
    eprintln!("To sign in, open {} and enter the code {}", device.verification_uri, device.user_code);
    if let Some(complete) = &device.verification_uri_complete {
        eprintln!("Or open {complete}");
    }
    let mut interval = poll.unwrap_or(Duration::from_secs(device.interval.unwrap_or(5).max(1)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(device.expires_in.unwrap_or(600));
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device.device_code.as_str()),
        ("client_id", client_id),
    ];
    loop {
        tokio::time::sleep(interval).await;
        match token_request(http, &discovery.token_endpoint, &form).await? {
            Ok(answer) => return tokens(answer, None),
            Err((error, description)) => match error.as_str() {
                "authorization_pending" => {}
                // RFC 8628 3.5: wait 5 seconds longer from now on.
                "slow_down" => interval += Duration::from_secs(5),
                "expired_token" => bail!("the code expired before the sign-in was finished; run heimdall login again"),
                "access_denied" => bail!("the sign-in was denied"),
                _ => bail!("the identity provider refused the sign-in: {}", describe(&error, description.as_deref())),
            },
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the code expired before the sign-in was finished; run heimdall login again");
        }
    }
}

/// What arrived at the loopback redirect.
#[derive(Debug, PartialEq, Eq)]
enum Callback {
    /// Not the callback path (a favicon request, say).
    Other,
    /// The callback, but not for this sign-in.
    Foreign,
    Failed(String),
    Code(String),
}

/// Reads the request target of one loopback request.
fn classify(target: &str, state: &str, issuer: &str) -> Callback {
    let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else { return Callback::Other };
    if url.path() != "/callback" {
        return Callback::Other;
    }
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if param("state").as_deref() != Some(state) {
        return Callback::Foreign;
    }
    // RFC 9207: a provider that names itself must be the one we asked.
    if let Some(iss) = param("iss")
        && iss.trim_end_matches('/') != issuer.trim_end_matches('/')
    {
        return Callback::Failed(format!("the answer came from {iss:?}, not {issuer:?}"));
    }
    if let Some(error) = param("error") {
        return Callback::Failed(describe(&error, param("error_description").as_deref()));
    }
    match param("code") {
        Some(code) => Callback::Code(code),
        None => Callback::Failed("the identity provider sent no code".into()),
    }
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads a request head; returns its target (`/callback?...`).
async fn request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.ok()?.ok()?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next()?.split_whitespace();
    if parts.next()? != "GET" {
        return None;
    }
    parts.next().map(String::from)
}

/// Waits for the provider to send the browser back with the code; returns
/// the connection too, to answer it once the code is exchanged.
async fn wait_for_code(listener: &tokio::net::TcpListener, state: &str, issuer: &str) -> Result<(String, tokio::net::TcpStream)> {
    loop {
        let (mut stream, _) = listener.accept().await.context("waiting for the browser")?;
        let Some(target) = request_target(&mut stream).await else {
            respond(&mut stream, "400 Bad Request", "Bad request", "Expected a GET request.").await;
            continue;
        };
        match classify(&target, state, issuer) {
            Callback::Code(code) => return Ok((code, stream)),
            Callback::Failed(reason) => {
                respond(&mut stream, "200 OK", "Sign-in failed", "Heimdall could not sign you in; see the terminal.").await;
                bail!("the sign-in failed: {reason}");
            }
            // Keep waiting: an unrelated request must not end the sign-in.
            Callback::Foreign => {
                respond(&mut stream, "400 Bad Request", "Unknown sign-in", "This answer belongs to no running heimdall login.").await;
            }
            Callback::Other => respond(&mut stream, "404 Not Found", "Not found", "Nothing here.").await,
        }
    }
}

/// Starts the browser; failing to is fine, the URL is printed.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        std::thread::spawn(move || child.wait());
    }
}

/// The authorization code flow with PKCE and a loopback redirect: the
/// browser signs in and comes back to `http://127.0.0.1:PORT/callback`.
pub async fn browser_flow(
    http: &reqwest::Client,
    discovery: &Discovery,
    client_id: &str,
    scope: &str,
    open: bool,
    timeout: Duration,
) -> Result<Tokens> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("listening on a loopback port for the browser")?;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr()?.port());
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
        .with_context(|| format!("the authorization endpoint {:?} is not a URL", discovery.authorization_endpoint))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    eprintln!("Open this URL to sign in: {url}");
    if open {
        open_browser(url.as_str());
    }
    let (code, mut stream) = tokio::time::timeout(timeout, wait_for_code(&listener, &state, &discovery.issuer))
        .await
        .map_err(|_| anyhow!("nobody signed in within {} minutes; run heimdall login again", timeout.as_secs() / 60))??;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
        ("client_id", client_id),
    ];
    let exchanged = match token_request(http, &discovery.token_endpoint, &form).await {
        Ok(Ok(answer)) => tokens(answer, None),
        Ok(Err((error, description))) => {
            Err(anyhow!("the identity provider refused the code: {}", describe(&error, description.as_deref())))
        }
        Err(e) => Err(e),
    }
    .and_then(|tokens| {
        // The token must answer this sign-in, not one started elsewhere.
        match claims(&tokens.id_token)?.get("nonce").and_then(serde_json::Value::as_str) {
            Some(got) if got != nonce => bail!("the ID token answers another sign-in (nonce mismatch)"),
            _ => Ok(tokens),
        }
    });
    match &exchanged {
        Ok(_) => respond(&mut stream, "200 OK", "Signed in to Heimdall", "Signed in to Heimdall; you can close this tab.").await,
        Err(_) => respond(&mut stream, "200 OK", "Sign-in failed", "Heimdall could not sign you in; see the terminal.").await,
    }
    exchanged
}

/// Trades a refresh token for new tokens. Provider error descriptions are
/// left out: some echo the request, which holds the refresh token.
pub async fn refresh(http: &reqwest::Client, token_endpoint: &str, client_id: &str, refresh_token: &str) -> Result<Tokens> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
    match token_request(http, token_endpoint, &form).await? {
        Ok(answer) => tokens(answer, Some(refresh_token)),
        Err((error, _)) => bail!("the identity provider refused to refresh the session: {error}"),
    }
}

/// Revokes a refresh token (RFC 7009), best effort.
pub async fn revoke(http: &reqwest::Client, endpoint: &str, client_id: &str, refresh_token: &str) -> Result<()> {
    let form = [("token", refresh_token), ("token_type_hint", "refresh_token"), ("client_id", client_id)];
    let response = http.post(endpoint).timeout(TIMEOUT).form(&form).send().await.with_context(|| format!("cannot reach {endpoint}"))?;
    if !response.status().is_success() {
        bail!("{endpoint} answered {}", response.status());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_always_ask_for_an_id_and_a_refresh_token() {
        assert_eq!(scopes(&["openid".into(), "groups".into()]), "openid groups offline_access");
        assert_eq!(scopes(&[]), "openid offline_access");
    }

    #[test]
    fn claims_are_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1900000000,"nonce":"n"}"#);
        let claims = claims(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")).expect("claims");
        assert_eq!(claims["exp"], 1_900_000_000);
        assert!(super::claims("not-a-jwt").is_err());
    }

    #[test]
    fn the_callback_must_carry_this_sign_ins_state() {
        let issuer = "http://127.0.0.1:5000";
        assert_eq!(classify("/callback?code=c&state=s", "s", issuer), Callback::Code("c".into()));
        assert_eq!(classify("/callback?code=c&state=s&iss=http%3A%2F%2F127.0.0.1%3A5000", "s", issuer), Callback::Code("c".into()));
        assert_eq!(classify("/callback?code=c&state=other", "s", issuer), Callback::Foreign);
        assert_eq!(classify("/favicon.ico", "s", issuer), Callback::Other);
        assert!(matches!(classify("/callback?state=s&error=access_denied", "s", issuer), Callback::Failed(e) if e == "access_denied"));
        assert!(matches!(classify("/callback?code=c&state=s&iss=http%3A%2F%2Fevil", "s", issuer), Callback::Failed(_)));
    }
}
