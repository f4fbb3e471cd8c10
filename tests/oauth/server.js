// Test-only OAuth2 authorization server for hive's OAuth2 refresh tests.
// Usage: node tests/oauth/server.js --port-file FILE [--access-ttl SECONDS] [--no-stdin]
// See README.md. Never use this outside tests: secrets and keys are throwaway.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import querystring from 'node:querystring';
import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const SCOPES = ['openid', 'offline_access', 'api:read', 'api:write'];
const TOKEN_PATH = '/token';

// ---- arguments --------------------------------------------------------------
const argv = process.argv.slice(2);
function arg(name, dflt) {
  const i = argv.indexOf(name);
  return i === -1 ? dflt : argv[i + 1];
}
const portFile = arg('--port-file');
const accessTtl = Number(arg('--access-ttl', '60'));
if (!portFile || !(accessTtl > 0)) {
  console.error('usage: server.js --port-file FILE [--access-ttl SECONDS] [--no-stdin]');
  process.exit(2);
}

// ---- lifecycle --------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hive-oauth-'));
const servers = [];
let exiting = false;
function shutdown(code = 0) {
  if (exiting) return;
  exiting = true;
  for (const s of servers) s.closeAllConnections?.();
  try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* ignore */ }
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('uncaughtException', (e) => { console.error('fatal:', e); shutdown(1); });
// Exit when the parent goes away (its end of our stdin pipe closes). Only when stdin is a
// pipe/socket: /dev/null would end at once, and reading a TTY from a background job stops us.
let stdinStat;
try { stdinStat = fs.fstatSync(0); } catch { /* no stdin */ }
if (!argv.includes('--no-stdin') && (stdinStat?.isFIFO() || stdinStat?.isSocket())) {
  process.stdin.on('end', () => shutdown(0));
  process.stdin.on('close', () => shutdown(0));
  process.stdin.on('error', () => shutdown(0));
  process.stdin.resume();
}

// ---- TLS material: fresh CA + server cert for 127.0.0.1/localhost -------------
function makeCerts() {
  const f = (n) => path.join(tmp, n);
  const ssl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']; // fast keygen
  ssl('req', '-x509', ...ec, '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-days', '2', '-subj', '/CN=hive test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', ...ec, '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'),
    '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext.cnf'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
  ].join('\n') + '\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-set_serial', '0x' + crypto.randomBytes(8).toString('hex'), '-days', '2',
    '-sha256', '-extfile', f('ext.cnf'), '-out', f('server.pem'));
  return { ca: f('ca.pem'), key: fs.readFileSync(f('server.key')), cert: fs.readFileSync(f('server.pem')) };
}

const listen = (srv) => new Promise((resolve, reject) => {
  srv.once('error', reject);
  srv.listen(0, HOST, () => { servers.push(srv); resolve(srv.address().port); });
});

const json = (res, status, obj, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(obj));
};

// The "id:secret" of an HTTP Basic header, as sent (still form-encoded).
function basicDecoded(h) {
  const m = /^basic\s+(\S+)$/i.exec(h || '');
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : null;
}

// ---- the failure server -------------------------------------------------------
function failServer() {
  let counts = {};
  const polls = {}; // device_code -> {n, last}
  const token = (extra = {}) => ({
    access_token: 'fail-access-' + crypto.randomBytes(6).toString('hex'),
    token_type: 'Bearer', expires_in: 3600, ...extra,
  });
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const p = new URL(req.url, 'http://x').pathname;
      const body = Buffer.concat(chunks).toString('utf8');
      if (p === '/test/stats') return json(res, 200, { by_path: counts });
      if (p === '/test/reset') { counts = {}; return json(res, 200, { ok: true }); }
      const n = counts[p] = (counts[p] || 0) + 1;
      switch (p) {
        case '/500': return json(res, 500, { error: 'server_error' });
        case '/503': return n === 1
          ? json(res, 503, { error: 'temporarily_unavailable' })
          : json(res, 200, token({ refresh_token: 'fail-refresh-503', scope: 'api:read' }));
        case '/hang': return undefined; // never answer; socket stays open
        case '/garbage':
          res.writeHead(200, { 'content-type': 'text/html' });
          return res.end('<html>not a token</html>');
        case '/form':
          res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
          return res.end('access_token=form-access-1&token_type=bearer&expires_in=3600&refresh_token=form-refresh-2&scope=a%20b');
        case '/string-expires':
          return json(res, 200, { access_token: 'str-access', token_type: 'Bearer', expires_in: '120' });
        case '/echo':
          return json(res, 200, {
            access_token: 'echo', token_type: 'Bearer', expires_in: 3600,
            seen: {
              method: req.method,
              path: req.url,
              content_type: req.headers['content-type'] ?? null,
              authorization: req.headers.authorization ?? null,
              body,
              form: { ...querystring.parse(body) },
            },
          });
        case '/reflect': {
          // A careless server: its error_description quotes the request, secrets and all, with
          // terminal control characters around them.
          const form = querystring.parse(body);
          return json(res, 400, {
            error: 'invalid_request\u001b[31m',
            error_description: `cannot use client ${form.client_id} secret ${form.client_secret} `
              + `refresh ${form.refresh_token} body ${body} authorization ${req.headers.authorization} `
              + `basic ${basicDecoded(req.headers.authorization)}\u001b[2J\r\nhive-cred: error: forged line`,
          });
        }
        case '/device/code': {
          // A device authorization endpoint whose codes behave as ?mode= says, polled at /device/token.
          const mode = new URL(req.url, 'http://x').searchParams.get('mode') || 'slow';
          const code = `dc-${mode}-${crypto.randomBytes(4).toString('hex')}`;
          polls[code] = { mode, n: 0, last: 0 };
          return json(res, 200, {
            device_code: code, user_code: 'WDJB-MJHT', verification_uri: 'https://example.test/device',
            expires_in: mode === 'expire' ? 3 : 60, interval: 1,
          });
        }
        case '/device/token': {
          // slow: slow_down at the first poll, then a token only if the next poll waited the
          // interval plus 5 s (RFC 8628 3.5); expire: always authorization_pending; deny: pending,
          // then access_denied.
          const form = querystring.parse(body);
          const st = polls[form.device_code];
          if (!st || form.grant_type !== 'urn:ietf:params:oauth:grant-type:device_code') {
            return json(res, 400, { error: 'invalid_grant', error_description: 'unknown device code' });
          }
          const now = Date.now();
          const gap = now - st.last;
          st.n += 1;
          st.last = now;
          if (st.mode === 'slow') {
            if (st.n === 1) return json(res, 400, { error: 'slow_down' });
            if (gap < 5900) return json(res, 400, { error: 'invalid_request', error_description: `polled ${gap} ms after slow_down` });
            return json(res, 200, token({ refresh_token: 'device-refresh-1', scope: 'api:read' }));
          }
          if (st.mode === 'deny' && st.n > 1) return json(res, 400, { error: 'access_denied', error_description: 'the user said no' });
          return json(res, 400, { error: 'authorization_pending' });
        }
        case '/400-invalid-client':
          return json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
        default: return json(res, 404, { error: 'not_found', path: p });
      }
    });
  });
}

// ---- the authorization server ----------------------------------------------
async function main() {
  const tls = makeCerts();
  const httpServer = http.createServer();
  const httpPort = await listen(httpServer);
  const issuer = `http://${HOST}:${httpPort}`;

  // ID token signing key, fresh per run (ES256: RSA keygen is slow; clients default to RS256,
  // hence clientDefaults below).
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'hive-test', alg: 'ES256', use: 'sig' };
  const grantTypes = ['authorization_code', 'refresh_token', 'client_credentials'];
  const common = { grant_types: grantTypes, redirect_uris: ['http://127.0.0.1/cb'], response_types: ['code'] };
  // hive-cred login: native clients (RFC 8252), so that the loopback redirect may use any port;
  // one confidential, one public (PKCE only).
  const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';
  const native = {
    application_type: 'native', response_types: ['code'], redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', deviceGrant],
  };

  const provider = new Provider(issuer, {
    clients: [
      { client_id: 'hive-post', client_secret: 'post-secret-123', token_endpoint_auth_method: 'client_secret_post', ...common },
      { client_id: 'hive-basic', client_secret: 'b@sic:s3cr3t/+%&=', token_endpoint_auth_method: 'client_secret_basic', ...common },
      { client_id: 'hive-login', client_secret: 'login-s3cret/+%', token_endpoint_auth_method: 'client_secret_post', ...native },
      { client_id: 'hive-public', token_endpoint_auth_method: 'none', ...native },
    ],
    jwks: { keys: [signingKey] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: SCOPES, // all static: opaque access tokens, no resource indicators needed
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true }, // login (any name) and consent pages, for hive-cred login
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      RefreshToken: 24 * 60 * 60,
      Grant: 2 * 24 * 60 * 60,
      IdToken: 60 * 60,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60,
    },
  });

  // The wire error_description is generic ("grant request is invalid"); log the real reason.
  provider.on('grant.error', (ctx, e) => console.error(`token error: ${e.error}: ${e.error_detail || e.error_description}`));
  provider.on('server_error', (ctx, e) => console.error('server_error:', e));

  // ---- token endpoint counters ----
  let stats;
  let tokenDelayMs = 0; // POST /test/delay?ms=N holds every token request back that long
  // POST /test/delay?ms=N&after=1 lets the provider answer (and rotate the
  // refresh token) at once, then holds the answer back that long: a client
  // that gives up meanwhile never learns the new token.
  let answerDelayMs = 0;
  const resetStats = () => {
    stats = { token_requests: 0, by_grant: {}, by_client: {}, by_auth: {} };
    tokenDelayMs = 0;
    answerDelayMs = 0;
  };
  resetStats();
  const bump = (o, k) => { o[k] = (o[k] || 0) + 1; };
  function basicClientId(h) {
    const m = /^basic\s+(\S+)$/i.exec(h || '');
    if (!m) return undefined;
    const s = Buffer.from(m[1], 'base64').toString('utf8');
    try { return decodeURIComponent(s.slice(0, s.indexOf(':')).replace(/\+/g, '%20')); } catch { return undefined; }
  }

  provider.use(async (ctx, next) => {
    if (ctx.path === TOKEN_PATH && ctx.method === 'POST') {
      stats.token_requests += 1; // counted before the provider answers
      if (tokenDelayMs > 0) await new Promise((resolve) => { setTimeout(resolve, tokenDelayMs); });
      try {
        await next();
        if (answerDelayMs > 0) await new Promise((resolve) => { setTimeout(resolve, answerDelayMs); });
      } finally {
        const params = ctx.oidc?.params || {};
        bump(stats.by_grant, params.grant_type || 'unknown');
        bump(stats.by_client, ctx.oidc?.client?.clientId || params.client_id
          || basicClientId(ctx.get('authorization')) || 'unknown');
        // How the client authenticated (oidc-provider itself accepts either for both clients).
        const basic = /^basic\s/i.test(ctx.get('authorization'));
        bump(stats.by_auth, params.client_secret ? (basic ? 'both' : 'client_secret_post')
          : (basic ? 'client_secret_basic' : 'none'));
      }
      return;
    }
    if (!ctx.path.startsWith('/test/')) return next();
    try {
      await adminApi(ctx);
    } catch (e) {
      ctx.status = 500;
      ctx.body = { error: 'admin_error', error_description: String(e?.message || e) };
    }
    return undefined;
  });

  async function adminApi(ctx) {
    // ---- test-only admin API: plain http, loopback only ----
    if (ctx.req.socket.encrypted || ctx.req.socket.remoteAddress !== HOST) {
      ctx.status = 404;
      return undefined;
    }
    ctx.set('cache-control', 'no-store');
    const q = ctx.query;
    if (ctx.method === 'GET' && ctx.path === '/test/stats') {
      ctx.body = stats;
    } else if (ctx.method === 'POST' && ctx.path === '/test/reset') {
      resetStats();
      ctx.body = { ok: true };
    } else if (ctx.method === 'POST' && ctx.path === '/test/delay') {
      const ms = Number(q.ms);
      if (!(ms >= 0 && ms <= 120000)) {
        ctx.status = 400;
        ctx.body = { error: 'ms must be 0 to 120000' };
        return undefined;
      }
      if (q.after) answerDelayMs = ms; else tokenDelayMs = ms;
      ctx.body = { delay_ms: ms, after: Boolean(q.after) };
    } else if (ctx.method === 'POST' && ctx.path === '/test/mint') {
      const client = await provider.Client.find(String(q.client || ''));
      const scope = String(q.scope || 'openid offline_access api:read').split(' ').filter(Boolean);
      if (!client || scope.some((s) => !SCOPES.includes(s))) {
        ctx.status = 400;
        ctx.body = { error: 'bad client or scope' };
        return undefined;
      }
      const accountId = String(q.account || `acct-${crypto.randomUUID()}`);
      const grant = new provider.Grant({ clientId: client.clientId, accountId });
      grant.addOIDCScope(scope.join(' '));
      const grantId = await grant.save();
      const rt = new provider.RefreshToken({
        client, accountId, grantId, scope: scope.join(' '), gty: 'authorization_code',
        authTime: Math.floor(Date.now() / 1000), expiresWithSession: false,
      });
      ctx.body = { refresh_token: await rt.save(), grant_id: grantId, account_id: accountId };
    } else if (ctx.method === 'POST' && ctx.path === '/test/revoke') {
      const rt = await provider.RefreshToken.find(String(q.token || ''), { ignoreExpiration: true });
      if (!rt) {
        ctx.status = 404;
        ctx.body = { error: 'refresh token not found' };
        return undefined;
      }
      await Promise.all([
        rt.destroy(),
        provider.RefreshToken.revokeByGrantId(rt.grantId),
        provider.AccessToken.revokeByGrantId(rt.grantId),
        provider.Grant.adapter.destroy(rt.grantId),
      ]);
      ctx.body = { revoked: true, grant_id: rt.grantId };
    } else {
      ctx.status = 404;
      ctx.body = { error: 'unknown test endpoint' };
    }
    return undefined;
  }

  httpServer.on('request', provider.callback());
  const httpsServer = https.createServer({ key: tls.key, cert: tls.cert }, provider.callback());
  const httpsPort = await listen(httpsServer);
  const failPort = await listen(failServer());

  const info = { http: httpPort, https: httpsPort, fail: failPort, ca_file: tls.ca, issuer, token_path: TOKEN_PATH };
  const tmpFile = `${portFile}.tmp.${process.pid}`;
  fs.writeFileSync(tmpFile, JSON.stringify(info) + '\n');
  fs.renameSync(tmpFile, portFile);
  console.error(`hive oauth test server ready: ${JSON.stringify(info)}`);
}

main().catch((e) => { console.error('startup failed:', e); shutdown(1); });
