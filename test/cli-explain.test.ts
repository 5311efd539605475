// `sluice --explain` through the built CLI (exit codes, stdout vs stderr), plus the argument parser
// on its own. --check with a config file is here too: both read SLUICE_CONFIG.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExplainUsageError, parseExplainArgs } from '../src/cli-explain.js';
import { BUILT_CLI, ensureBuilt } from './helpers/sluice.js';

t.before(ensureBuilt);

const CONFIG = `
pools:
  api:   { upstreams: ["http://10.0.0.5:8080", "http://10.0.0.6:8080?weight=2"], balancer: least-request }
  web:   { upstreams: ["http://10.0.1.5:80"] }
  web-canary: { upstreams: ["http://10.0.1.9:80"] }
routes:
  - name: api-v1
    match: { host: api.example.com, path_prefix: /v1/ }
    pool: api
    strip_prefix: /v1
    host_rewrite: api.internal
    request_headers: { set: { x-env: prod }, add: { x-via: sluice }, remove: [x-debug] }
    timeout_ms: 2500
  - name: canary-by-header
    match: { host: "*.example.com", headers: { x-canary: "1" } }
    pool: web-canary
  - name: shop
    match: { path_prefix: /shop/, methods: [GET, HEAD] }
    split: [{ pool: web, weight: 90 }, { pool: web-canary, weight: 10 }]
    split_key: cookie:sid
  - name: old
    match: { path: /old }
    redirect: { status: 308, scheme: https, path: /new }
  - name: robots
    match: { path: /robots.txt }
    respond: { status: 200, body: "User-agent: *\\nDisallow:\\n", headers: { content-type: text/plain } }
    response_headers: { set: { x-served-by: sluice } }
  - name: users
    match: { path_regex: "/users/([0-9]+)" }
    pool: web
    regex_rewrite: { pattern: "^/users/([0-9]+)$", substitution: "/u/\\\\1" }
`;

const dir = mkdtempSync(join(tmpdir(), 'sluice-explain-'));
const configPath = join(dir, 'sluice.yaml');
writeFileSync(configPath, CONFIG);

function sluice(argv: string[], env: NodeJS.ProcessEnv = { SLUICE_CONFIG: configPath }) {
  const child = spawnSync(process.execPath, [BUILT_CLI, ...argv], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

t.test('the issue example: route, rewritten request, pool', async (t) => {
  const { code, stdout, stderr } = sluice(['--explain', 'GET', 'http://api.example.com/v1/users?page=2', '-H', 'x-canary: 1', '-H', 'X-Debug: yes']);
  t.equal(code, 0, stderr);
  t.equal(stderr, '');
  t.equal(
    stdout,
    [
      'route: api-v1 (routes[0])',
      'action: pool api',
      'pool api: balancer least-request, http://10.0.0.5:8080, http://10.0.0.6:8080',
      'upstream request: GET /users?page=2',
      'host: api.internal',
      'headers:',
      '  x-canary: 1',
      '  x-env: prod',
      '  x-via: sluice',
      'overrides: timeout_ms 2500',
      '',
    ].join('\n'),
  );
});

t.test('wildcard host with a header; the exact-host route earlier in the file does not hold', async (t) => {
  const { code, stdout } = sluice(['--explain', 'GET', 'http://api.example.com/v2/x', '-H', 'x-canary: 1']);
  t.equal(code, 0);
  t.match(stdout, /^route: canary-by-header \(routes\[1\]\)\naction: pool web-canary\n/);
});

t.test('split: weights, and stickiness when the key is present', async (t) => {
  const loose = sluice(['--explain', 'GET', 'http://x.org/shop/cart']);
  t.equal(loose.code, 0);
  t.match(loose.stdout, 'action: split web 90 (90.0%), web-canary 10 (10.0%)\n');
  t.match(loose.stdout, 'sticky on cookie:sid: not in this request, chosen per request\n');
  t.match(loose.stdout, 'pool web: ');
  t.match(loose.stdout, 'pool web-canary: ');
  const sticky = sluice(['--explain', 'GET', 'http://x.org/shop/cart', '-H', 'cookie: sid=abc']);
  t.match(sticky.stdout, /sticky on cookie:sid: this request's value always goes to (web|web-canary)\n/);
  t.equal(sluice(['--explain', 'GET', 'http://x.org/shop/cart', '-H', 'cookie: sid=abc']).stdout, sticky.stdout, 'the same every time');
  t.equal(sluice(['--explain', 'POST', 'http://x.org/shop/cart']).code, 1, 'methods still apply');
});

t.test('redirect, respond and regex rewrite', async (t) => {
  const redirect = sluice(['--explain', 'GET', 'http://shop.example.com:8080/old?x=1']);
  t.equal(redirect.code, 0);
  t.equal(redirect.stdout, 'route: old (routes[3])\naction: redirect 308 Permanent Redirect\nlocation: https://shop.example.com/new?x=1\n');
  const respond = sluice(['--explain', 'HEAD', '/robots.txt', '-H', 'Host: x.org']);
  t.equal(respond.stdout, 'route: robots (routes[4])\naction: respond 200 OK (24 body bytes)\n  content-type: text/plain\nresponse headers:\n  x-served-by: sluice\n');
  const users = sluice(['--explain', 'GET', 'http://x.org/users/42']);
  t.match(users.stdout, 'upstream request: GET /u/42\n');
});

t.test('no route: 404 no-route, exit 1', async (t) => {
  const { code, stdout, stderr } = sluice(['--explain', 'GET', 'http://x.org/nothing']);
  t.equal(code, 1);
  t.equal(stdout, 'no route (404 no-route)\n');
  t.equal(stderr, '');
});

t.test('paths are explained as sent, never normalised', async (t) => {
  const { stdout } = sluice(['--explain', 'GET', 'http://api.example.com/v1/../admin']);
  t.match(stdout, 'route: api-v1 (routes[0])\n');
  t.match(stdout, 'upstream request: GET /../admin\n');
});

t.test('usage and configuration errors: exit 2', async (t) => {
  for (const argv of [['--explain'], ['--explain', 'GET'], ['--explain', 'GET', 'ftp://x/'], ['--explain', 'G T', '/'], ['--explain', 'GET', '/', '-H'], ['--explain', 'GET', '/', '-X', 'POST']]) {
    const { code, stdout, stderr } = sluice(argv);
    t.equal(code, 2, argv.join(' '));
    t.equal(stdout, '');
    t.match(stderr, /^sluice: --explain: .+\nUsage: sluice --explain METHOD URL/);
  }
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'pools:\n  web: { upstreams: ["http://a"] }\nroutes:\n  - { match: {}, pool: wbe }\n');
  const { code, stdout, stderr } = sluice(['--explain', 'GET', 'http://x/'], { SLUICE_CONFIG: bad });
  t.equal(code, 2);
  t.equal(stdout, '');
  t.match(stderr, `sluice: ${bad}: routes[0]: unknown pool "wbe" (did you mean "web"?)\n`);
});

t.test('without SLUICE_CONFIG: everything goes to the pool "default"', async (t) => {
  const { code, stdout } = sluice(['--explain', 'DELETE', 'http://any/thing'], { SLUICE_UPSTREAMS: 'http://10.0.0.1:80' });
  t.equal(code, 0);
  t.match(stdout, /^route: route-0 \(routes\[0\]\)\naction: pool default\npool default: balancer peak-ewma, http:\/\/10\.0\.0\.1:80\n/);
});

t.test('--check with a config file: a routing summary, or every error', async (t) => {
  const ok = sluice(['--check']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, `sluice: ${configPath}: 3 pools [api (2), web (1), web-canary (1)], 6 routes\n`);
  t.match(ok.stdout, ', 4 upstreams, ');
  const bad = join(dir, 'bad2.yaml');
  writeFileSync(bad, 'pools:\n  web: { upstreams: ["http://a"], balancer: fast }\nroutes:\n  - { match: {}, pool: web }\n  - { match: { path: /x }, pool: web }\n');
  const failed = sluice(['--check'], { SLUICE_CONFIG: bad });
  t.equal(failed.code, 1);
  t.equal(failed.stdout, '');
  t.same(failed.stderr.trimEnd().split('\n'), [
    `sluice: ${bad}: pools.web.balancer: got "fast", expected one of round-robin, weighted-round-robin, random, weighted-random, least-request, peak-ewma, peak-ewma-classic, least-conn, ring-hash, maglev`,
    `sluice: ${bad}: routes[1]: unreachable: routes[0] already matches every request this route matches`,
    'sluice: configuration has 2 errors',
  ]);
});

t.test('parseExplainArgs', async (t) => {
  t.same(parseExplainArgs(['get', 'https://A.example.com:8443', '-Hx-a: 1', '--header', 'Host: b.example.com']), {
    method: 'GET',
    scheme: 'https',
    host: 'b.example.com',
    target: '/',
    headers: [{ name: 'x-a', value: '1' }],
  });
  t.same(parseExplainArgs(['GET', 'http://h/a/./b/%2e%2e?q=1#frag']).target, '/a/./b/%2e%2e?q=1', 'raw target, fragment dropped');
  t.same(parseExplainArgs(['GET', 'http://h?q=1']).target, '/?q=1');
  t.throws(() => parseExplainArgs(['GET', '/', '-H', 'no colon']), ExplainUsageError);
});
