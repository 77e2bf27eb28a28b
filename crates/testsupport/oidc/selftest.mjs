// End-to-end self test of provider.mjs: `node selftest.mjs` (exit code 0 = all good).
// It is also the executable form of the HTTP sequences described in README.md.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let failures = 0;
let passes = 0;
function check(cond, what) {
  if (cond) {
    passes += 1;
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

// --- minimal cookie jar (name -> {value, path}); enough for this provider ------------------
class Jar {
  cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const pathAttr = attrs.find((a) => a.toLowerCase().startsWith('path='));
      const cpath = pathAttr ? pathAttr.slice(5) : '/';
      const expired = attrs.some((a) => a.toLowerCase().startsWith('expires=') && new Date(a.slice(8)) < new Date());
      const key = `${name} ${cpath}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path: cpath });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

async function req(jar, url, { method = 'GET', form, headers = {} } = {}) {
  const h = { ...headers };
  if (jar) {
    const cookie = jar.header(url);
    if (cookie) h.cookie = cookie;
  }
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  if (jar) jar.store(res);
  return res;
}

function b64urlJson(s) {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

function decode(jwt) {
  const [h, p] = jwt.split('.');
  return { header: b64urlJson(h), payload: b64urlJson(p) };
}

async function verify(issuer, jwt) {
  const { keys } = await (await fetch(`${issuer}/jwks`)).json();
  const [h, p, s] = jwt.split('.');
  const { kid } = b64urlJson(h);
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) return false;
  return crypto.verify('sha256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
}

function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// --- flows ------------------------------------------------------------------------------------
async function authCodeFlow(issuer, { clientId, secret, redirectUri, login, password, jar = new Jar() }) {
  const { verifier, challenge } = pkce();
  const state = crypto.randomBytes(8).toString('hex');
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid profile email groups',
    redirect_uri: redirectUri,
    state,
    nonce: 'n-0S6_WzA2Mj',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  // 1. GET /auth -> 303 Location: /interaction/UID (relative)
  let res = await req(jar, auth.href);
  let location = new URL(res.headers.get('location'), issuer).href;
  if (!location.startsWith(redirectUri.split('?')[0])) {
    check(res.status === 303 && /\/interaction\/[^/]+$/.test(location), `${clientId}: /auth redirects to /interaction/UID`);
    // 2. GET /interaction/UID -> 200 login form
    res = await req(jar, location);
    const html = await res.text();
    const action = html.match(/<form method="post" action="([^"]+)"/)[1];
    check(res.status === 200 && action === `${new URL(location).pathname}/login`, `${clientId}: login form posts to /interaction/UID/login`);
    // 2b. wrong password -> 200 with "invalid"
    res = await req(jar, new URL(action, issuer).href, { method: 'POST', form: { login, password: 'wrong' } });
    check(res.status === 200 && (await res.text()).includes('invalid'), `${clientId}: wrong password re-renders form with "invalid"`);
    // 3. POST /interaction/UID/login -> 303 Location: ISSUER/auth/UID (absolute)
    res = await req(jar, new URL(action, issuer).href, { method: 'POST', form: { login, password } });
    location = res.headers.get('location');
    check(res.status === 303 && location.startsWith(`${issuer}/auth/`), `${clientId}: login redirects to /auth/UID`);
    // 4. GET /auth/UID -> 303 Location: redirect_uri?code=...&state=...&iss=...
    res = await req(jar, location);
    location = res.headers.get('location');
  }
  check(res.status === 303 && location.startsWith(redirectUri.split('?')[0]), `${clientId}: redirected to ${redirectUri}`);
  const cb = new URL(location);
  check(cb.searchParams.get('state') === state, `${clientId}: state round-trips`);
  check(cb.searchParams.get('iss') === issuer, `${clientId}: iss in callback`);
  const code = cb.searchParams.get('code');
  // 5. POST /token
  const headers = {};
  const form = {
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
  };
  if (secret) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  else form.client_id = clientId;
  res = await req(null, `${issuer}/token`, { method: 'POST', form, headers });
  const tokens = await res.json();
  check(res.status === 200 && tokens.id_token && tokens.refresh_token && tokens.access_token, `${clientId}: token endpoint returns id/access/refresh tokens`);
  return { tokens, jar };
}

async function deviceFlow(issuer, { clientId, login, password, jar = new Jar() }) {
  // 1. POST /device/auth
  let res = await req(null, `${issuer}/device/auth`, { method: 'POST', form: { client_id: clientId, scope: 'openid profile email groups' } });
  const da = await res.json();
  check(res.status === 200 && da.device_code && da.user_code && da.verification_uri === `${issuer}/device`, `device: authorization response ${JSON.stringify(da)}`);
  const poll = () => req(null, `${issuer}/token`, {
    method: 'POST',
    form: { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: da.device_code, client_id: clientId },
  });
  res = await poll();
  check(res.status === 400 && (await res.json()).error === 'authorization_pending', 'device: pending before approval');
  // 2. GET /device -> form with hidden xsrf
  res = await req(jar, `${issuer}/device`);
  let html = await res.text();
  let xsrf = html.match(/name="xsrf" value="([^"]+)"/)[1];
  check(res.status === 200 && xsrf, 'device: GET /device has xsrf');
  // 2b. wrong code -> 200, form again, text contains "invalid"
  res = await req(jar, `${issuer}/device`, { method: 'POST', form: { xsrf, user_code: 'BBBB-BBBB', confirm: 'yes' } });
  html = await res.text();
  check(res.status === 200 && html.includes('invalid'), 'device: wrong user code re-renders with "invalid"');
  xsrf = html.match(/name="xsrf" value="([^"]+)"/)[1];
  // 3. POST /device xsrf + user_code + confirm=yes -> 303 /interaction/UID
  res = await req(jar, `${issuer}/device`, { method: 'POST', form: { xsrf, user_code: da.user_code, confirm: 'yes' } });
  let location = res.headers.get('location');
  check(res.status === 303 && /^\/interaction\/[^/]+$/.test(location), 'device: POST /device redirects to /interaction/UID');
  // 4. GET /interaction/UID + 5. POST /interaction/UID/login -> 303 ISSUER/device/UID
  res = await req(jar, new URL(location, issuer).href);
  check(res.status === 200, 'device: login form');
  res = await req(jar, new URL(`${location}/login`, issuer).href, { method: 'POST', form: { login, password } });
  location = res.headers.get('location');
  check(res.status === 303 && location.startsWith(`${issuer}/device/`), 'device: login redirects to /device/UID');
  // 6. GET /device/UID -> 200 success page
  res = await req(jar, location);
  check(res.status === 200 && (await res.text()).includes('Sign-in Success'), 'device: success page');
  // 7. poll
  res = await poll();
  const tokens = await res.json();
  check(res.status === 200 && tokens.id_token && tokens.refresh_token, 'device: token endpoint returns tokens');
  return { tokens, jar };
}

// --- main -------------------------------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oidc-selftest-'));
const cfgPath = path.join(tmp, 'config.json');
fs.writeFileSync(cfgPath, JSON.stringify({
  heimdall: { redirect_uris: ['http://127.0.0.1:9999/auth/callback'] },
  ttl: { IdToken: 600 },
}));
const child = spawn(process.execPath, [path.join(here, 'provider.mjs'), cfgPath], { stdio: ['pipe', 'pipe', 'inherit'] });
const issuer = await new Promise((resolve, reject) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const m = buf.match(/^LISTENING (\S+)\n/);
    if (m) resolve(m[1]);
  });
  child.on('exit', (c) => reject(new Error(`provider exited ${c}`)));
});

try {
  const disco = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  check(disco.issuer === issuer && disco.device_authorization_endpoint === `${issuer}/device/auth`, 'discovery');

  // auth code + PKCE, confidential web client
  const web = await authCodeFlow(issuer, {
    clientId: 'heimdall', secret: 'heimdall-secret', redirectUri: 'http://127.0.0.1:9999/auth/callback', login: 'alice', password: 'alice',
  });
  const id = decode(web.tokens.id_token);
  check(id.header.alg === 'RS256' && await verify(issuer, web.tokens.id_token), 'web: id_token RS256 verifies against /jwks');
  check(id.payload.preferred_username === 'alice' && id.payload.email === 'alice@example.test'
    && JSON.stringify(id.payload.groups) === '["shop-devs"]' && id.payload.name === 'Alice Example', 'web: id_token carries preferred_username/email/name/groups');
  check(id.payload.exp - id.payload.iat === 600, 'web: IdToken TTL from config');

  // SSO: same jar, second authorization goes straight to the callback
  await authCodeFlow(issuer, {
    clientId: 'heimdall', secret: 'heimdall-secret', redirectUri: 'http://127.0.0.1:9999/auth/callback', login: 'alice', password: 'alice', jar: web.jar,
  });

  // PKCE is required
  let res = await req(null, `${issuer}/auth?client_id=heimdall&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:9999/auth/callback')}&state=x`);
  check(res.status === 303 && new URL(res.headers.get('location')).searchParams.get('error') === 'invalid_request', 'PKCE required (error redirect without code_challenge)');

  // refresh, client_secret_post
  res = await req(null, `${issuer}/token`, {
    method: 'POST', form: { grant_type: 'refresh_token', refresh_token: web.tokens.refresh_token, client_id: 'heimdall', client_secret: 'heimdall-secret' },
  });
  const refreshed = await res.json();
  check(res.status === 200 && refreshed.id_token && decode(refreshed.id_token).payload.groups[0] === 'shop-devs', 'web: refresh_token grant (client_secret_post)');

  // public native client, loopback on an arbitrary port
  const cli = await authCodeFlow(issuer, {
    clientId: 'heimdall-cli', redirectUri: 'http://127.0.0.1:54321/callback', login: 'carol', password: 'carol',
  });
  check(decode(cli.tokens.id_token).payload.groups[0] === 'payments-devs', 'cli: loopback any-port auth code flow');

  // device flow
  const dev = await deviceFlow(issuer, { clientId: 'heimdall-cli', login: 'bob', password: 'bob' });
  check(decode(dev.tokens.id_token).payload.groups[0] === 'shop-viewers', 'device: id_token groups');
  res = await req(null, `${issuer}/token`, {
    method: 'POST', form: { grant_type: 'refresh_token', refresh_token: dev.tokens.refresh_token, client_id: 'heimdall-cli' },
  });
  const devRefreshed = await res.json();
  check(res.status === 200 && devRefreshed.refresh_token !== dev.tokens.refresh_token, 'device: refresh rotates the public client refresh token');

  // device flow with an already logged-in session (alice's jar): no login form
  {
    const da = await (await req(null, `${issuer}/device/auth`, { method: 'POST', form: { client_id: 'heimdall-cli', scope: 'openid groups' } })).json();
    res = await req(web.jar, `${issuer}/device`);
    const xsrf = (await res.text()).match(/name="xsrf" value="([^"]+)"/)[1];
    res = await req(web.jar, `${issuer}/device`, { method: 'POST', form: { xsrf, user_code: da.user_code.toLowerCase().replace('-', ''), confirm: 'yes' } });
    // With a logged-in session the POST itself answers 200 with the success page: no redirect.
    check(res.status === 200 && (await res.text()).includes('Sign-in Success'), 'device+SSO: POST /device answers the success page directly (lowercase, dashless code ok)');
    res = await req(null, `${issuer}/token`, {
      method: 'POST', form: { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: da.device_code, client_id: 'heimdall-cli' },
    });
    const t = await res.json();
    check(res.status === 200 && decode(t.id_token).payload.sub === 'alice' && !('preferred_username' in decode(t.id_token).payload), 'device+SSO: tokens for alice, only requested-scope claims');
  }

  // userinfo
  res = await req(null, `${issuer}/me`, { headers: { authorization: `Bearer ${devRefreshed.access_token}` } });
  check(res.status === 200 && (await res.json()).preferred_username === 'bob', 'userinfo');

  // rotation
  const oldKid = id.header.kid;
  res = await req(null, `${issuer}/test/rotate`, { method: 'POST' });
  const { kid: newKid } = await res.json();
  const { keys } = await (await fetch(`${issuer}/jwks`)).json();
  check(keys[0].kid === newKid && keys.some((k) => k.kid === oldKid) && newKid !== oldKid, 'rotate: /jwks lists new kid first and keeps old kid');
  check(keys.every((k) => !('d' in k)), 'rotate: /jwks has no private parts');
  // the session cookie from before the rotation still works (SSO)
  const after = await authCodeFlow(issuer, {
    clientId: 'heimdall', secret: 'heimdall-secret', redirectUri: 'http://127.0.0.1:9999/auth/callback', login: 'alice', password: 'alice', jar: web.jar,
  });
  check(decode(after.tokens.id_token).header.kid === newKid && await verify(issuer, after.tokens.id_token), 'rotate: new id_token signed with new kid');
  res = await req(null, `${issuer}/token`, {
    method: 'POST', form: { grant_type: 'refresh_token', refresh_token: web.tokens.refresh_token, client_id: 'heimdall', client_secret: 'heimdall-secret' },
  });
  check(res.status === 200 && decode((await res.json()).id_token).header.kid === newKid, 'rotate: pre-rotation refresh token still works, new kid');

  // mint
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'https://evil.example', aud: 'heimdall', sub: 'mallory', exp: now - 10, iat: now - 100,
  };
  res = await req(null, `${issuer}/test/mint`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  check(res.status === 200, 'mint: empty body accepted');
  res = await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ claims }) });
  let { token } = await res.json();
  let d = decode(token);
  check(JSON.stringify(d.payload) === JSON.stringify(claims) && d.header.kid === newKid && d.header.alg === 'RS256', 'mint: exact claims, current kid');
  check(await verify(issuer, token), 'mint: current key verifies');
  ({ token } = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ claims, key: 'unknown' }) })).json());
  check(decode(token).header.kid === newKid && !(await verify(issuer, token)), 'mint: unknown key forges with current kid, does not verify');
  ({ token } = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ claims, alg: 'none' }) })).json());
  check(token.endsWith('.') && decode(token).header.alg === 'none', 'mint: alg none');
  ({ token } = await (await fetch(`${issuer}/test/mint`, { method: 'POST', body: JSON.stringify({ claims, key: oldKid, header: { typ: 'JWT' } }) })).json());
  d = decode(token);
  check(d.header.kid === oldKid && d.header.typ === 'JWT' && await verify(issuer, token), 'mint: explicit old kid + extra header');

  // client hook: add a redirect uri at runtime
  res = await fetch(`${issuer}/test/client`, { method: 'POST', body: JSON.stringify({ client_id: 'heimdall', redirect_uris: ['http://127.0.0.1:7777/cb'] }) });
  check(res.status === 200, 'client hook');
  await authCodeFlow(issuer, {
    clientId: 'heimdall', secret: 'heimdall-secret', redirectUri: 'http://127.0.0.1:7777/cb', login: 'admin', password: 'admin',
  });
} catch (e) {
  failures += 1;
  console.log(`FAIL exception ${e.stack}`);
} finally {
  child.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
}

console.log(`${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
