// Routing through the real proxy: a config file with named pools and routes, named backends that
// say who they are and what they received, and requests that must land where the table says (or be
// answered by Sluice itself: respond, redirect, 404 no-route).

import t from 'tap';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, startSluice, type Sluice } from '../helpers/sluice.js';
import { startBackend, type HttpBackend } from '../helpers/backends.js';

interface Seen {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  seen: Seen | null;
}

/** A backend that answers with its name and the request it received, plus a header of its own. */
function named(name: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'x-debug-backend': name, 'x-powered-by': 'test' });
      res.end(body);
    });
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let seen: Seen | null = null;
        if (res.headers['content-type'] === 'application/json') seen = JSON.parse(body) as Seen;
        resolve({ status: res.statusCode!, headers: res.headers, body, seen });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

let api: HttpBackend;
let web: HttpBackend;
let canary: HttpBackend;
let admin: HttpBackend;
let sluice: Sluice;

t.before(async () => {
  await ensureBuilt();
  api = await startBackend(t, named('api'));
  web = await startBackend(t, named('web'));
  canary = await startBackend(t, named('canary'));
  admin = await startBackend(t, named('admin'));
  const dir = mkdtempSync(join(tmpdir(), 'sluice-routing-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(
    file,
    `pools:
  api: { upstreams: ["${api.url}"], balancer: round-robin }
  web: { upstreams: ["${web.url}"] }
  web-canary: { upstreams: ["${canary.url}"] }
  admin: { upstreams: ["${admin.url}"] }
routes:
  - name: api-v1
    match: { host: api.example.com, path_prefix: /v1 }
    pool: api
    strip_prefix: /v1
  - name: wild-canary
    match: { host: "*.example.com", headers: { x-canary: "1" } }
    pool: web-canary
  - name: exact-beats-wildcard-by-order
    match: { host: www.example.com }
    pool: web
    host_rewrite: internal.web
  - name: wild
    match: { host: "*.example.com" }
    pool: admin
  - name: shop-split
    match: { path_prefix: /shop/, methods: [GET, HEAD] }
    split: [{ pool: web, weight: 90 }, { pool: web-canary, weight: 10 }]
  - name: sticky-split
    match: { path_prefix: /sticky/ }
    split: [{ pool: web, weight: 50 }, { pool: web-canary, weight: 50 }]
    split_key: "header:x-user"
  - name: old
    match: { path: /old }
    redirect: { status: 301, location: /new }
  - name: to-https
    match: { path_prefix: /secure/ }
    redirect: { status: 308, scheme: https }
  - name: robots
    match: { path: /robots.txt }
    respond: { status: 200, body: "User-agent: *\\nDisallow:\\n", headers: { content-type: text/plain } }
  - name: admin-area
    match: { path_prefix: /admin/ }
    pool: admin
  - name: regex
    match: { path_regex: "/users/[0-9]+/profile" }
    pool: api
    regex_rewrite: { pattern: "/users/([0-9]+)/profile", substitution: "/profiles/\\\\1" }
  - name: query
    match: { path: /search, query: { q: sluice } }
    pool: api
  - name: header-present
    match: { path: /hdr, headers: { x-flag: { present: true } } }
    pool: admin
  - name: header-prefix
    match: { path: /hdr, headers: { x-token: { prefix: "abc" } } }
    pool: api
  - name: header-regex
    match: { path: /hdr, headers: { x-id: { regex: "[a-f]{4}" } } }
    pool: web-canary
  - name: rewrite-prefix
    match: { path_prefix: /old-api/ }
    pool: api
    prefix_rewrite: /new-api/
  - name: post-only
    match: { path: /post-only, methods: [POST] }
    pool: admin
  - name: rest
    match: { path_prefix: /app/ }
    pool: web
    request_headers: { set: { x-env: prod }, add: { x-added: yes }, remove: [x-debug] }
    response_headers: { set: { x-served-by: sluice }, remove: [x-powered-by] }
`,
  );
  sluice = await startSluice(t, { upstreams: [], env: { SLUICE_CONFIG: file, SLUICE_RETRIES: '0' } });
});

t.teardown(() => agent.destroy());

t.test('host and path prefix, with the prefix stripped', async (t) => {
  const r = await request(sluice.port, 'GET', '/v1/users?x=1', { host: 'api.example.com' });
  t.equal(r.seen?.backend, 'api');
  t.equal(r.seen?.url, '/users?x=1', 'strip_prefix /v1, query kept');
  t.equal(r.seen?.headers.host, 'api.example.com', 'Host kept');
  const seg = await request(sluice.port, 'GET', '/v10/users', { host: 'api.example.com' });
  t.not(seg.seen?.backend, 'api', 'path_prefix /v1 is segment-aware: /v10 is not under it');
  const port = await request(sluice.port, 'GET', '/v1/x', { host: 'API.Example.com:8443' });
  t.equal(port.seen?.backend, 'api', 'host match ignores case and port');
});

t.test('wildcard and exact hosts: file order decides', async (t) => {
  const exact = await request(sluice.port, 'GET', '/', { host: 'www.example.com' });
  t.equal(exact.seen?.backend, 'web');
  t.equal(exact.seen?.headers.host, 'internal.web', 'host_rewrite');
  t.equal(exact.seen?.headers['x-forwarded-host'], 'www.example.com', 'X-Forwarded-Host is the client host');
  const wild = await request(sluice.port, 'GET', '/', { host: 'shop.example.com' });
  t.equal(wild.seen?.backend, 'admin', '*.example.com');
  const canaryHit = await request(sluice.port, 'GET', '/', { host: 'www.example.com', 'x-canary': '1' });
  t.equal(canaryHit.seen?.backend, 'canary', 'an earlier wildcard route with a header matcher wins over a later exact host');
  const bare = await request(sluice.port, 'GET', '/app/x', { host: 'example.com' });
  t.equal(bare.seen?.backend, 'web', '*.example.com does not match example.com itself');
});

t.test('respond, redirect and no route are answered by Sluice', async (t) => {
  const before = api.requests.length + web.requests.length + canary.requests.length + admin.requests.length;
  const robots = await request(sluice.port, 'GET', '/robots.txt');
  t.equal(robots.status, 200);
  t.equal(robots.body, 'User-agent: *\nDisallow:\n');
  t.equal(robots.headers['content-type'], 'text/plain');
  const head = await request(sluice.port, 'HEAD', '/robots.txt');
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String('User-agent: *\nDisallow:\n'.length), 'HEAD has the length and no body');
  const old = await request(sluice.port, 'GET', '/old');
  t.equal(old.status, 301);
  t.equal(old.headers.location, '/new');
  const secure = await request(sluice.port, 'GET', '/secure/page?a=1', { host: 'h.test' });
  t.equal(secure.status, 308);
  t.equal(secure.headers.location, 'https://h.test/secure/page?a=1', 'scheme redirect keeps host, path and query');
  const none = await request(sluice.port, 'GET', '/nowhere');
  t.equal(none.status, 404);
  t.equal(none.headers['x-sluice-error'], 'no-route');
  const after = api.requests.length + web.requests.length + canary.requests.length + admin.requests.length;
  t.equal(after, before, 'no backend saw any of them');
});

t.test('methods, query, header matchers and regex rewrite', async (t) => {
  t.equal((await request(sluice.port, 'POST', '/post-only')).seen?.backend, 'admin');
  t.equal((await request(sluice.port, 'GET', '/post-only')).status, 404, 'methods: [POST] does not match GET');
  t.equal((await request(sluice.port, 'GET', '/search?q=sluice&page=2')).seen?.backend, 'api', 'query exact value');
  t.equal((await request(sluice.port, 'GET', '/search?q=other')).status, 404);
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-flag': 'on' })).seen?.backend, 'admin', 'present');
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-token': 'abcdef' })).seen?.backend, 'api', 'prefix');
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-id': 'beef' })).seen?.backend, 'canary', 'regex');
  t.equal((await request(sluice.port, 'GET', '/hdr', { 'x-id': 'beefy' })).status, 404, 'header regex is anchored');
  const re = await request(sluice.port, 'GET', '/users/42/profile');
  t.equal(re.seen?.backend, 'api');
  t.equal(re.seen?.url, '/profiles/42', 'regex_rewrite with a capture');
  t.equal((await request(sluice.port, 'GET', '/users/42/profile/x')).status, 404, 'path_regex is anchored');
  const pre = await request(sluice.port, 'GET', '/old-api/things');
  t.equal(pre.seen?.url, '/new-api/things', 'prefix_rewrite');
});

t.test('request and response header edits', async (t) => {
  const r = await request(sluice.port, 'GET', '/app/page', { 'x-debug': '1', 'x-env': 'dev' });
  t.equal(r.seen?.backend, 'web');
  t.equal(r.seen?.headers['x-env'], 'prod', 'set replaces the client value');
  t.equal(r.seen?.headers['x-added'], 'yes', 'add');
  t.equal(r.seen?.headers['x-debug'], undefined, 'remove');
  t.equal(r.headers['x-served-by'], 'sluice', 'response set');
  t.equal(r.headers['x-powered-by'], undefined, 'response remove');
  t.equal(r.headers['x-debug-backend'], 'web', 'other response headers pass');
});

t.test('paths are matched as sent: no dot-segment or percent-decoding into another route', async (t) => {
  const dots = await request(sluice.port, 'GET', '/app/../admin/secret');
  t.equal(dots.seen?.backend, 'web', '/app/../admin is under /app/, as sent');
  t.equal(dots.seen?.url, '/app/../admin/secret', 'and forwarded as sent');
  const enc = await request(sluice.port, 'GET', '/app/%2e%2e/admin/secret');
  t.equal(enc.seen?.backend, 'web');
  t.equal(enc.seen?.url, '/app/%2e%2e/admin/secret');
  const encAdmin = await request(sluice.port, 'GET', '/%61dmin/x');
  t.equal(encAdmin.status, 404, '/%61dmin is not /admin');
});

t.test('weighted split within 3 points over 2,000 requests; a split key is sticky', async (t) => {
  let toCanary = 0;
  const n = 2000;
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => request(sluice.port, 'GET', '/shop/item')));
    for (const r of batch) if (r.seen?.backend === 'canary') toCanary++;
  }
  const share = (100 * toCanary) / n;
  t.ok(share >= 7 && share <= 13, `canary share ${share.toFixed(1)}% within 10 ± 3`);
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
  const first = new Map<string, string>();
  for (let round = 0; round < 5; round++) {
    for (const u of users) {
      const r = await request(sluice.port, 'GET', '/sticky/x', { 'x-user': u });
      const b = r.seen!.backend;
      if (round === 0) first.set(u, b);
      else if (first.get(u) !== b) t.fail(`${u} moved from ${first.get(u)} to ${b}`);
    }
  }
  t.ok(new Set(first.values()).size === 2, 'the keys spread over both pools');
});
