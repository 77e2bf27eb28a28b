// Test-only OpenID Connect provider for heimdall's Rust integration tests.
//
// Usage: node provider.mjs [config.json]
//
// Listens on 127.0.0.1 (random port unless the config says otherwise) and prints exactly one
// line `LISTENING http://127.0.0.1:PORT` on stdout once ready; that URL is the issuer.
// Everything else (oidc-provider notices, request errors) goes to stderr.
//
// NOT FOR PRODUCTION: no real authentication, test hooks without auth, keys in memory.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints its "you SHOULD change this default" notices with console.info, i.e. on
// stdout. stdout belongs to the LISTENING line only, so route every console writer to stderr
// before anything else can log.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

let Provider;
let interactionPolicy;
try {
  ({ default: Provider, interactionPolicy } = await import('oidc-provider'));
} catch (e) {
  console.error(`cannot load oidc-provider (${e.message}); run \`npm ci\` in ${new URL('.', import.meta.url).pathname}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------------------------

const DEFAULT_USERS = [
  { sub: 'alice', username: 'alice', password: 'alice', email: 'alice@example.test', name: 'Alice Example', groups: ['shop-devs'] },
  { sub: 'bob', username: 'bob', password: 'bob', email: 'bob@example.test', name: 'Bob Example', groups: ['shop-viewers'] },
  { sub: 'carol', username: 'carol', password: 'carol', email: 'carol@example.test', name: 'Carol Example', groups: ['payments-devs'] },
  { sub: 'admin', username: 'admin', password: 'admin', email: 'admin@example.test', name: 'Admin Example', groups: ['platform-admins'] },
];

function loadConfig() {
  const path = process.argv[2];
  if (!path) return {};
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}

const config = loadConfig();

const users = (config.users ?? DEFAULT_USERS).map((u) => ({
  sub: String(u.sub ?? u.username),
  username: String(u.username ?? u.sub),
  password: String(u.password ?? u.username ?? u.sub),
  email: u.email ?? `${u.username ?? u.sub}@example.test`,
  name: u.name ?? String(u.username ?? u.sub),
  groups: Array.isArray(u.groups) ? u.groups.map(String) : [],
}));
const usersBySub = new Map(users.map((u) => [u.sub, u]));
const usersByLogin = new Map(users.map((u) => [u.username, u]));

function buildClients() {
  const web = config.heimdall ?? {};
  const cli = config.cli ?? {};
  const heimdall = {
    client_id: web.client_id ?? 'heimdall',
    client_secret: web.client_secret ?? 'heimdall-secret',
    application_type: web.application_type ?? 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: web.redirect_uris ?? config.redirect_uris ?? ['http://127.0.0.1:9999/auth/callback'],
    post_logout_redirect_uris: web.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: web.token_endpoint_auth_method ?? 'client_secret_basic',
  };
  const heimdallCli = {
    client_id: cli.client_id ?? 'heimdall-cli',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    // native + http loopback: oidc-provider ignores the port when matching (RFC 8252 7.3), so
    // http://127.0.0.1:<anyport>/callback is accepted.
    redirect_uris: cli.redirect_uris ?? ['http://127.0.0.1/callback'],
  };
  return [heimdall, heimdallCli, ...(config.extra_clients ?? [])];
}

let clients = buildClients();

const ttl = {
  AccessToken: 3600,
  IdToken: 3600,
  AuthorizationCode: 60,
  DeviceCode: 600,
  RefreshToken: 14 * 24 * 60 * 60,
  Interaction: 3600,
  Session: 14 * 24 * 60 * 60,
  Grant: 14 * 24 * 60 * 60,
  ...(config.ttl ?? {}),
};

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

function generateSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = crypto.randomBytes(12).toString('base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

// Newest first: oidc-provider signs with the first matching key.
const signingKeys = [generateSigningKey()];
// Cookie signing keys are shared by every Provider instance so cookies survive a rotation.
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

// ---------------------------------------------------------------------------------------------
// shared in-memory adapter (survives Provider re-creation on key rotation)
// ---------------------------------------------------------------------------------------------

const store = new Map(); // key -> { value, expiresAt }
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

function storeSet(key, value, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
  store.set(key, { value, expiresAt });
}

class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') {
      storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    }
    const { grantId, userCode } = payload;
    if (GRANTABLE.has(this.model) && grantId) {
      const grantKey = `grant:${grantId}`;
      const members = storeGet(grantKey) ?? new Set();
      members.add(key);
      storeSet(grantKey, members);
    }
    if (userCode) {
      storeSet(`userCode:${userCode}`, id, expiresIn);
    }
    storeSet(key, payload, expiresIn);
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const value = storeGet(this.key(id));
    if (value) value.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    const members = storeGet(grantKey);
    if (members) {
      for (const key of members) store.delete(key);
      store.delete(grantKey);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// provider construction
// ---------------------------------------------------------------------------------------------

const SCOPES = ['openid', 'profile', 'email', 'groups', 'offline_access'];

async function findAccount(ctx, sub) {
  const user = usersBySub.get(sub);
  if (!user) return undefined;
  return {
    accountId: user.sub,
    async claims() {
      return {
        sub: user.sub,
        name: user.name,
        preferred_username: user.username,
        email: user.email,
        email_verified: true,
        groups: user.groups,
      };
    },
  };
}

// Auto-consent: every client gets a grant covering whatever it asked for.
async function loadExistingGrant(ctx) {
  const { client, session, account } = ctx.oidc;
  const accountId = account?.accountId ?? session.accountId;
  const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
  let grant;
  if (grantId) {
    grant = await ctx.oidc.provider.Grant.find(grantId);
    if (grant && (grant.accountId !== accountId || grant.clientId !== client.clientId)) {
      grant = undefined;
    }
  }
  if (!grant) {
    grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
  }
  const scopes = [...(ctx.oidc.requestParamScopes ?? [])].filter((s) => SCOPES.includes(s));
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  const claims = [...(ctx.oidc.requestParamClaims ?? [])];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

function htmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${htmlEscape(title)}</title></head>
<body>
<h1>${htmlEscape(title)}</h1>
${body}
</body></html>
`;
}

// The default policy always asks native clients (heimdall-cli) for consent; consent is
// auto-granted here, so drop that check to keep the flows to one login form.
function interactionPolicyWithoutNativeConsent() {
  const policy = interactionPolicy.base();
  policy.get('consent').checks.remove('native_client_prompt');
  return policy;
}

function providerConfiguration() {
  return {
    adapter: SharedMemoryAdapter,
    clients,
    jwks: { keys: signingKeys },
    cookies: {
      keys: cookieKeys,
      // lax everywhere: we are on plain http, where SameSite=None cookies are dubious.
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    findAccount,
    loadExistingGrant,
    scopes: SCOPES,
    responseTypes: ['code'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Put scope-requested claims (name, preferred_username, email, groups) in the ID token too,
    // not only in the userinfo response.
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true },
    // Refresh tokens for every client allowed the refresh_token grant, no offline_access dance.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Tokens do not die with the browser session (tests often drop the cookie jar).
    expiresWithSession: async () => false,
    clientBasedCORS: () => true,
    ttl,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      claimsParameter: { enabled: false },
      deviceFlow: {
        enabled: true,
        // The input form also carries confirm=yes, so one POST /device both enters the user code
        // and confirms it (no separate confirmation page).
        async userCodeInputSource(ctx, form, out, err) {
          let msg = '<p>Enter the code displayed on your device</p>';
          if (err && (err.userCode || err.name === 'NoCodeError')) {
            msg = '<p class="error">invalid user code, try again</p>';
          } else if (err && err.name === 'AbortedError') {
            msg = '<p class="error">The sign-in request was interrupted</p>';
          } else if (err) {
            msg = '<p class="error">There was an error processing your request</p>';
          }
          const withConfirm = form.replace('</form>', '<input type="hidden" name="confirm" value="yes"/>\n</form>');
          ctx.body = page('Device sign-in', `${msg}\n${withConfirm}\n<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
          ctx.body = page('Confirm device', `<p>Client <strong>${htmlEscape(client.clientId)}</strong>, code <code>${htmlEscape(userCode)}</code></p>\n${form}\n<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
        },
        async successSource(ctx) {
          ctx.body = page('Sign-in Success', '<p>Device sign-in successful, you can now close this page.</p>');
        },
      },
    },
    interactions: {
      policy: interactionPolicyWithoutNativeConsent(),
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out).map(([k, v]) => `<pre>${htmlEscape(k)}: ${htmlEscape(v)}</pre>`).join('\n'));
    },
  };
}

let issuer;
let provider;
let providerCallback;

function buildProvider() {
  const p = new Provider(issuer, providerConfiguration());
  p.on('server_error', (ctx, err) => console.error('oidc server_error', err));
  provider = p;
  providerCallback = p.callback();
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store' });
  res.end(html);
}

function loginForm(uid, { error, login } = {}) {
  const err = error ? `<p class="error">${htmlEscape(error)}</p>\n` : '';
  return page('Sign-in', `${err}<form method="post" action="/interaction/${htmlEscape(uid)}/login">
<input type="text" name="login" value="${htmlEscape(login ?? '')}" autofocus/>
<input type="password" name="password"/>
<button type="submit">Sign-in</button>
</form>`);
}

async function finishConsent(req, res, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant) {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function handleInteraction(req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return false;
  const uid = decodeURIComponent(m[1]);
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (e) {
    sendHtml(res, 400, page('Error', `<p>interaction not found: ${htmlEscape(e.message)}</p>`));
    return true;
  }
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Error', '<p>interaction mismatch</p>'));
    return true;
  }

  if (process.env.OIDC_DEBUG) {
    console.error('interaction', req.method, uid, JSON.stringify(details.prompt), JSON.stringify(details.params));
  }
  if (req.method === 'GET' && !m[2]) {
    if (details.prompt.name === 'consent') {
      // Normally loadExistingGrant makes this unreachable; auto-grant anyway.
      await finishConsent(req, res, details);
      return true;
    }
    sendHtml(res, 200, loginForm(uid, { login: details.params.login_hint }));
    return true;
  }

  if (req.method === 'POST' && m[2]) {
    const form = new URLSearchParams(await readBody(req));
    const login = form.get('login') ?? '';
    const password = form.get('password') ?? '';
    const user = usersByLogin.get(login) ?? usersBySub.get(login);
    if (!user || user.password !== password) {
      sendHtml(res, 200, loginForm(uid, { error: 'invalid login or password', login }));
      return true;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: user.sub, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    return true;
  }

  sendHtml(res, 405, page('Error', '<p>method not allowed</p>'));
  return true;
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

function mint({ claims = {}, header = {}, key = 'current', alg = 'RS256' } = {}) {
  const current = signingKeys[0];
  if (alg === 'none') {
    return `${b64url({ alg: 'none', ...header })}.${b64url(claims)}.`;
  }
  if (alg !== 'RS256') throw new Error(`unsupported alg ${alg} (use RS256 or none)`);
  let privateKey;
  if (key === 'current') {
    privateKey = crypto.createPrivateKey({ key: current, format: 'jwk' });
  } else if (key === 'unknown') {
    privateKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  } else {
    const found = signingKeys.find((k) => k.kid === key);
    if (!found) throw new Error(`unknown key ${key} (use "current", "unknown" or a known kid)`);
    privateKey = crypto.createPrivateKey({ key: found, format: 'jwk' });
  }
  const kid = key === 'current' || key === 'unknown' ? current.kid : key;
  const signingInput = `${b64url({ alg: 'RS256', kid, ...header })}.${b64url(claims)}`;
  const signature = crypto.sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url');
  return `${signingInput}.${signature}`;
}

async function handleTest(req, res, url) {
  if (!url.pathname.startsWith('/test/')) return false;
  if (req.method !== 'POST' && !(req.method === 'GET' && url.pathname === '/test/keys')) {
    sendJson(res, 405, { error: 'method not allowed' });
    return true;
  }
  const raw = req.method === 'POST' ? await readBody(req) : '';
  let body = {};
  if (raw.trim()) {
    try {
      body = JSON.parse(raw);
    } catch (e) {
      sendJson(res, 400, { error: `invalid JSON: ${e.message}` });
      return true;
    }
  }
  try {
    switch (url.pathname) {
      case '/test/rotate': {
        const key = generateSigningKey();
        signingKeys.unshift(key);
        buildProvider();
        sendJson(res, 200, { kid: key.kid, kids: signingKeys.map((k) => k.kid) });
        return true;
      }
      case '/test/keys': {
        sendJson(res, 200, { kids: signingKeys.map((k) => k.kid) });
        return true;
      }
      case '/test/mint': {
        sendJson(res, 200, { token: mint(body) });
        return true;
      }
      case '/test/client': {
        // Merge metadata into an existing client (by client_id) or add a new one.
        if (!body.client_id) throw new Error('client_id required');
        const i = clients.findIndex((c) => c.client_id === body.client_id);
        const next = i >= 0 ? { ...clients[i], ...body } : body;
        const previous = clients;
        clients = i >= 0 ? clients.map((c, j) => (j === i ? next : c)) : [...clients, next];
        try {
          buildProvider();
        } catch (e) {
          clients = previous;
          buildProvider();
          throw e;
        }
        sendJson(res, 200, { client: next });
        return true;
      }
      default:
        sendJson(res, 404, { error: 'unknown test hook' });
        return true;
    }
  } catch (e) {
    sendJson(res, 400, { error: e.message });
    return true;
  }
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (await handleTest(req, res, url)) return;
    if (await handleInteraction(req, res, url)) return;
    providerCallback(req, res);
  } catch (e) {
    console.error('request failed', e);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: e.message });
    else res.end();
  }
});

const host = config.host ?? '127.0.0.1';
server.listen(config.port ?? 0, host, () => {
  const { port } = server.address();
  issuer = `http://${host}:${port}`;
  buildProvider();
  process.stdout.write(`LISTENING ${issuer}\n`);
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Die with the parent: a Rust test that panics does not kill its children, but the child gets
// re-parented, which changes process.ppid.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) shutdown();
}, 500).unref();
// Optionally also exit when stdin (a pipe held by the parent) closes.
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}
