// IP allow/deny through the real proxy (X-Forwarded-For believed only from SLUICE_TRUSTED_PROXIES,
// right-most untrusted entry, IPv4-mapped forms) and the CORS preflight matrix answered by Sluice.

import t from 'tap';
import { ensureBuilt, type Sluice } from '../helpers/sluice.js';
import { startBackend } from '../helpers/backends.js';
import { echoJson, request, startWithConfig } from './helpers.js';

let trusting: Sluice;
let plain: Sluice;
let backendHits = 0;

const CONFIG = (url: string) => `pools: { api: { upstreams: ["${url}"] } }
routes:
  - match: { path_prefix: /internal/ }
    pool: api
    ip_allow: ["10.0.0.0/8", "2001:db8::/32"]
  - match: { path_prefix: /admin/ }
    pool: api
    ip_deny: ["0.0.0.0/0"]
  - match: { path_prefix: /loop/ }
    pool: api
    ip_allow: ["127.0.0.1/32", "::1/128"]
    ip_deny: ["10.9.9.9"]
  - match: { path_prefix: /api/ }
    pool: api
    cors:
      origins: ["https://app.example.com", "https://*.example.org"]
      methods: [GET, POST, PUT]
      headers: [content-type, x-req]
      expose_headers: [x-trace]
      credentials: true
      max_age: 600
  - match: { path_prefix: /public/ }
    pool: api
    cors: { origins: ["*"] }
`;

t.before(async () => {
  await ensureBuilt();
  const backend = await startBackend(t, (req, res) => {
    backendHits++;
    echoJson(req, res);
  });
  trusting = await startWithConfig(t, CONFIG(backend.url), { env: { SLUICE_TRUSTED_PROXIES: '127.0.0.1,10.0.0.99' } });
  plain = await startWithConfig(t, CONFIG(backend.url));
});

t.test('ip_allow with X-Forwarded-For from a trusted proxy', async (t) => {
  const via = (xff: string) => request(trusting.port, 'GET', '/internal/x', { 'x-forwarded-for': xff });
  t.equal((await via('10.1.2.3')).status, 200);
  t.equal((await via('::ffff:10.1.2.3')).status, 200, 'IPv4-mapped IPv6 is the IPv4 address');
  t.equal((await via('2001:db8::7')).status, 200, 'IPv6 block');
  const denied = await via('11.0.0.1');
  t.equal(denied.status, 403);
  t.equal(denied.headers['x-sluice-error'], 'ip-denied');
  t.equal((await via('10.1.2.3, 11.0.0.1')).status, 403, 'the right-most entry is the one our proxy saw; the left one is the client\'s claim');
  t.equal((await via('11.0.0.1, 10.1.2.3, 10.0.0.99')).status, 200, 'trusted proxies are skipped from the right');
  t.equal((await request(trusting.port, 'GET', '/internal/x')).status, 403, 'no XFF: the peer, 127.0.0.1');
  t.equal((await request(plain.port, 'GET', '/internal/x', { 'x-forwarded-for': '10.1.2.3' })).status, 403, 'XFF from an untrusted peer is ignored');
});

t.test('ip_deny /0, and deny winning over allow', async (t) => {
  t.equal((await request(plain.port, 'GET', '/admin/x')).status, 403);
  t.equal((await request(plain.port, 'GET', '/loop/x')).status, 200, '/32 allow of the loopback peer');
  t.equal((await request(trusting.port, 'GET', '/loop/x', { 'x-forwarded-for': '10.9.9.9' })).status, 403, 'an address with no /len is a /32; deny is checked first');
});

t.test('CORS preflight matrix, answered without the backend', async (t) => {
  const before = backendHits;
  const pre = (origin: string, method: string, headers?: string) =>
    request(plain.port, 'OPTIONS', '/api/items', { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) });
  const ok = await pre('https://app.example.com', 'PUT', 'X-Req, Content-Type');
  t.equal(ok.status, 204);
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
  t.equal(ok.headers['access-control-allow-methods'], 'GET, POST, PUT');
  t.equal(ok.headers['access-control-allow-headers'], 'x-req, content-type');
  t.equal(ok.headers['access-control-allow-credentials'], 'true');
  t.equal(ok.headers['access-control-max-age'], '600');
  t.match(ok.headers.vary, /origin/);
  const cases: [string, string, string | undefined, number][] = [
    ['https://app.example.com', 'GET', undefined, 204],
    ['https://a.example.org', 'POST', 'content-type', 204],
    ['https://a.b.example.org', 'GET', undefined, 204],
    ['https://example.org', 'GET', undefined, 403],
    ['http://app.example.com', 'GET', undefined, 403],
    ['https://evil.com', 'GET', undefined, 403],
    ['https://app.example.com', 'DELETE', undefined, 403],
    ['https://app.example.com', 'PUT', 'x-evil', 403],
    ['https://app.example.com', 'POST', 'accept', 204],
  ];
  for (const [origin, method, headers, status] of cases) {
    const r = await pre(origin, method, headers);
    t.equal(r.status, status, `${origin} ${method} ${headers ?? ''}`);
    if (status === 403) t.equal(r.headers['access-control-allow-origin'], undefined);
  }
  t.equal(backendHits, before, 'no preflight reached the backend');
  const options = await request(plain.port, 'OPTIONS', '/api/items', { origin: 'https://app.example.com' });
  t.equal(options.status, 200, 'OPTIONS without Access-Control-Request-Method is not a preflight');
  t.equal(backendHits, before + 1);
});

t.test('CORS headers on actual requests', async (t) => {
  const r = await request(plain.port, 'GET', '/api/items', { origin: 'https://app.example.com' });
  t.equal(r.status, 200);
  t.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  t.equal(r.headers['access-control-allow-credentials'], 'true');
  t.equal(r.headers['access-control-expose-headers'], 'x-trace');
  t.equal(r.headers.vary, 'origin');
  const other = await request(plain.port, 'GET', '/api/items', { origin: 'https://evil.com' });
  t.equal(other.status, 200, 'the request itself is not refused (the browser enforces CORS)');
  t.equal(other.headers['access-control-allow-origin'], undefined);
  const any = await request(plain.port, 'GET', '/public/x', { origin: 'https://whoever.net' });
  t.equal(any.headers['access-control-allow-origin'], '*', 'any origin without credentials');
  const none = await request(plain.port, 'GET', '/api/items');
  t.equal(none.headers['access-control-allow-origin'], undefined, 'no Origin, no CORS headers');
});

t.test('SIGHUP recompiles the edge policies: a changed file takes effect, an invalid one is refused', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { writeConfig } = await import('./helpers.js');
  const { startSluice } = await import('../helpers/sluice.js');
  const backend = await startBackend(t, echoJson);
  const yaml = (policy: string) => `pools: { api: { upstreams: ["${backend.url}"] } }\nroutes:\n  - match: { path_prefix: / }\n    pool: api\n${policy}`;
  const { file, dir } = writeConfig(yaml('    ip_deny: ["0.0.0.0/0"]\n'));
  // A reload re-reads SLUICE_ENV_FILE, and through it the config file. The reloader refuses an
  // empty SLUICE_UPSTREAMS (so the pool "default" is set, unused), and today it only applies a
  // reload when a variable changed: each step also changes SLUICE_REQUEST_TIMEOUT_MS.
  const envFile = `${dir}/sluice.env`;
  const env = (timeout: number) => writeFileSync(envFile, `SLUICE_CONFIG=${file}\nSLUICE_UPSTREAMS=${backend.url}\nSLUICE_REQUEST_TIMEOUT_MS=${timeout}\n`);
  env(15000);
  const s = await startSluice(t, { upstreams: [backend.url], env: { SLUICE_ENV_FILE: envFile } });
  t.equal((await request(s.port, 'GET', '/x')).status, 403);
  writeFileSync(file, yaml('    rate_limit: [{ key: route, rate: 1/m, burst: 1 }]\n'));
  env(15001);
  let mark = s.logs().length;
  s.child.kill('SIGHUP');
  await s.waitForLog((l) => l.msg === 'configuration reloaded', 10_000, mark);
  t.equal((await request(s.port, 'GET', '/x')).status, 200, 'the deny list is gone');
  t.equal((await request(s.port, 'GET', '/x')).status, 429, 'the new limit applies');
  writeFileSync(file, yaml('    rate_limit: [{ key: route, rate: often }]\n'));
  env(15002);
  mark = s.logs().length;
  s.child.kill('SIGHUP');
  const refused = await s.waitForLog((l) => l.msg.startsWith('reload refused'), 10_000, mark);
  t.match(JSON.stringify(refused), /rate_limit\[0\]\.rate: got \\"often\\"/);
  t.equal((await request(s.port, 'GET', '/x')).status, 429, 'the running policy keeps its state');
});
