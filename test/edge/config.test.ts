// Every edge key is validated with a message that names the route, the key and what is wrong;
// `sluice --check` prints them and exits 1. A good file yields the EdgeSpec the workers compile,
// with defaults: merged under each route's own keys and policy-set headers removed from clients.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { parseConfigFile } from '../../src/config/file.js';
import { BUILT_CLI, ensureBuilt } from '../helpers/sluice.js';
import { writeConfig } from './helpers.js';

t.before(ensureBuilt);

const POOLS = 'pools: { api: { upstreams: ["http://127.0.0.1:1"] } }\n';
const HEX = 'a'.repeat(64);

function errors(yaml: string, files: Record<string, string> = {}): string[] {
  const { file } = writeConfig(POOLS + yaml, files);
  const r = parseConfigFile(POOLS + yaml, file, { externalPools: new Set() });
  return r.ok ? [] : r.errors.map((e) => e.message.slice(file.length + 2));
}

function ok(yaml: string, files: Record<string, string> = {}) {
  const { file } = writeConfig(POOLS + yaml, files);
  const r = parseConfigFile(POOLS + yaml, file, { externalPools: new Set() });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.content.routes!;
}

t.test('rate_limit', async (t) => {
  const e = errors(`routes:
  - match: {}
    pool: api
    rate_limit:
      - { key: client_ip, rate: 100/x }
      - { key: "cookie:a", rate: 1/s }
      - { key: "jwt:sub", rate: 1/s }
      - { rate: 1/s, burst: 0 }
      - { rate: 1/h, burst: 100000 }
      - { rate: 1/s, global: "http://redis" }
      - { rate: 1/s, fail: closed }
      - { rat: 1/s }
`);
  t.same(e, [
    'routes[0]: rate_limit[0].rate: got "100/x", expected <count>/<period> such as 100/s, 1000/m, 5/10s (periods: ms, s, m, h, d)',
    'routes[0]: rate_limit[1].key: got "cookie:a", expected client_ip, route, "header:<name>" or "jwt:<claim>"',
    'routes[0]: rate_limit[2].key: "jwt:sub" needs auth: jwt or auth: introspection on the route',
    'routes[0]: rate_limit[3].burst: got 0, expected a whole number from 1 to 1000000000',
    'routes[0]: rate_limit[4]: burst 100000 at 1 per 3600000 ms takes more than 6 days to refill; lower the burst or raise the rate',
    'routes[0]: rate_limit[5].global: got "http://redis", expected a URL such as redis://127.0.0.1:6379 or rediss://host:6380/0',
    'routes[0]: rate_limit[6].fail: only means something with global (a Redis URL)',
    'routes[0]: rate_limit[7]: unknown key "rat" (did you mean "rate"?); known keys: key, rate, burst, global, fail, name',
    'routes[0]: rate_limit[7]: missing key "rate" (such as rate: 100/s)',
  ]);
});

t.test('auth, ip lists, cors, max_in_flight, and edge keys on a respond route', async (t) => {
  const e = errors(
    `routes:
  - match: { path: /a }
    pool: api
    auth: { jwt: { jwks_file: missing.json } }
  - match: { path: /b }
    pool: api
    auth: { jwt: { secret: short, algorithms: [RS256] } }
  - match: { path: /c }
    pool: api
    auth: { api_keys: { sha256: [not-hex] }, basic: { htpasswd: x } }
  - match: { path: /d }
    pool: api
    auth: { basic: { htpasswd: bad.htpasswd } }
  - match: { path: /e }
    pool: api
    ip_allow: ["10.0.0.0/33", "::ffff:1.2.3.4/64"]
    ip_deny: [banana]
    max_in_flight: 0
  - match: { path: /f }
    pool: api
    cors: { origins: ["*", "https://app.example.com/path"], credentials: true }
  - match: { path: /g }
    respond: { status: 200 }
    rate_limit: [{ rate: 1/s }]
  - match: { path: /h }
    pool: api
    auth: { forward: { url: "ftp://x", copy_headers: [content-length] } }
`,
    { 'bad.htpasswd': 'alice:{SHA}abc\n' },
  );
  t.same(e, [
    'routes[0]: auth.jwt.jwks_file: cannot read "missing.json" (ENOENT)',
    'routes[1]: auth.jwt.secret: an HMAC secret needs at least 32 bytes (RFC 7518 §3.2 asks for the hash size)',
    'routes[1]: auth.jwt.algorithms: "RS256" does not go with a secret; expected some of HS256, HS384, HS512',
    'routes[2]: auth: give one kind of auth, not api_keys and basic',
    'routes[3]: auth.basic.htpasswd: "bad.htpasswd" line 1: expected user:<bcrypt hash> (htpasswd -B); other hash kinds are not accepted',
    'routes[4]: max_in_flight: got 0, expected a whole number from 1 to 1000000',
    'routes[4]: ip_allow[0]: "10.0.0.0/33": prefix length must be 0-32',
    'routes[4]: ip_allow[1]: "::ffff:1.2.3.4/64": an IPv4-mapped block needs a prefix length of at least 96',
    'routes[4]: ip_deny[0]: "banana" is not an IPv4 or IPv6 address or CIDR block',
    'routes[5]: cors.origins[1]: got "https://app.example.com/path", expected "*" or scheme://host[:port] (no path), "*" standing for labels as in https://*.example.com',
    'routes[5]: cors.credentials: true cannot go with origins ["*"] (browsers refuse it): list the origins',
    'routes[6]: rate_limit: only means something with pool or split (this route answers with respond)',
    'routes[7]: auth.forward.url: got "ftp://x", expected an http:// or https:// URL',
    'routes[7]: auth.forward.copy_headers[0]: got "content-length", expected a header name Sluice may set',
  ]);
  t.same(errors('defaults: { rate_limt: [] }\nroutes: [{ match: {}, pool: api }]\n'), [
    'defaults: unknown key "rate_limt" (did you mean "rate_limit"?); known keys: rate_limit, max_in_flight, auth, ip_allow, ip_deny, cors',
  ]);
});

t.test('defaults apply under each route, a route key replaces the default one', async (t) => {
  const routes = ok(
    `defaults:
  rate_limit: [{ key: client_ip, rate: 100/s, burst: 200 }]
  ip_deny: ["192.0.2.0/24"]
routes:
  - match: { path: /a }
    pool: api
  - match: { path: /b }
    pool: api
    rate_limit: [{ key: "header:X-Api-Key", rate: 1000/m }]
    auth: { jwt: { jwks_file: jwks.json, issuer: "https://id", audience: api, forward_claims: { sub: x-user }, strip_token: true } }
  - match: { path: /c }
    respond: { status: 204 }
`,
    { 'jwks.json': '{"keys":[]}' },
  );
  t.same(routes[0]!.edge, { rateLimit: [{ key: { kind: 'client_ip' }, count: 100, periodMs: 1000, burst: 200, global: null, fail: 'open', name: 'client_ip' }], ipDeny: ['192.0.2.0/24'] });
  t.same(routes[1]!.edge!.rateLimit, [{ key: { kind: 'header', name: 'x-api-key' }, count: 1000, periodMs: 60000, burst: 1000, global: null, fail: 'open', name: 'header' }]);
  t.same(routes[1]!.edge!.ipDeny, ['192.0.2.0/24']);
  t.same(routes[1]!.requestHeaders, { remove: ['x-user', 'authorization'] }, 'forwarded claim headers and the token never come from the client');
  t.equal(routes[2]!.edge, undefined, 'a fixed response gets no defaults');
});

t.test('sluice --check names each bad edge key and exits 1', async (t) => {
  const { file } = writeConfig(`${POOLS}routes:
  - match: {}
    pool: api
    rate_limit: [{ key: client_ip, rate: fast }]
    auth: { api_keys: { header: x-api-key, sha256: ["${HEX}"] } }
`);
  const r = spawnSync(process.execPath, [BUILT_CLI, '--check'], { env: { PATH: process.env.PATH, SLUICE_CONFIG: file }, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /routes\[0\]: rate_limit\[0\]\.rate: got "fast", expected <count>\/<period>/);
});

t.test('a route opts out of a default with none', async (t) => {
  const routes = ok(`defaults:
  auth: { api_keys: { sha256: ["${HEX}"] } }
  rate_limit: [{ rate: 10/s }]
routes:
  - { match: { path: /healthz }, pool: api, auth: none }
  - { match: { path: /open }, pool: api, auth: none, rate_limit: none }
  - { match: {}, pool: api }
`);
  t.same(Object.keys(routes[0]!.edge!), ['rateLimit'], 'the default limit, no auth');
  t.equal(routes[1]!.edge, undefined, 'nothing left');
  t.same(Object.keys(routes[2]!.edge!).sort(), ['auth', 'rateLimit']);
});

t.test('--explain names the route\'s edge policy', async (t) => {
  const { file } = writeConfig(`${POOLS}routes:
  - match: {}
    pool: api
    rate_limit: [{ key: "header:x-api-key", rate: 1000/m, global: "redis://127.0.0.1:1" }]
    auth: { api_keys: { sha256: ["${HEX}"] } }
    ip_allow: ["10.0.0.0/8"]
    max_in_flight: 50
`);
  const r = spawnSync(process.execPath, [BUILT_CLI, '--explain', 'GET', 'http://a.test/x'], { env: { PATH: process.env.PATH, SLUICE_CONFIG: file }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^edge: ip_allow 1 block\(s\), rate_limit header:x-api-key 1000\/60000ms burst 1000 global \(fail open\), auth api_keys, max_in_flight 50$/m);
});
