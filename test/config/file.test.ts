// The config file: the example loads as written, pool settings layer over the environment,
// SLUICE_UPSTREAMS is the pool "default", and every kind of mistake is named by file, pool or route.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigFile, type ConfigFileResult } from '../../src/config/file.js';
import { loadConfig, type LoadResult } from '../../src/config/load.js';
import { compileRoutes, plainRequest } from '../../src/model/index.js';
import { ensureBuilt } from '../helpers/sluice.js';

const EXAMPLE = `
pools:
  api:   { upstreams: ["http://10.0.0.5:8080", "http://10.0.0.6:8080?weight=2"], balancer: peak-ewma, health: { path: /healthz } }
  web:   { upstreams: ["http://10.0.1.5:80"] }
  web-canary: { upstreams: ["http://10.0.1.9:80"] }
routes:
  - match: { host: api.example.com, path_prefix: /v1/ }
    pool: api
    strip_prefix: /v1
  - match: { host: "*.example.com", headers: { x-canary: "1" } }
    pool: web-canary
  - match: { path_prefix: /shop/, methods: [GET, HEAD] }
    split: [{ pool: web, weight: 90 }, { pool: web-canary, weight: 10 }]
  - match: { path: /old }
    redirect: { status: 301, location: /new }
  - match: { path: /robots.txt }
    respond: { status: 200, body: "User-agent: *\\nDisallow:\\n", headers: { content-type: text/plain } }
  - match: { path_prefix: / }
    pool: web
    request_headers: { set: { x-env: prod }, remove: [x-debug] }
    response_headers: { set: { x-served-by: sluice } }
`;

const dir = mkdtempSync(join(tmpdir(), 'sluice-file-'));
let files = 0;
function tempFile(text: string, ext = 'yaml'): string {
  const path = join(dir, `config-${files++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

const NO_EXTERNAL = { externalPools: new Set<string>() };

function parse(text: string, name = 'sluice.yaml'): ConfigFileResult {
  return parseConfigFile(text, name, NO_EXTERNAL);
}

/** Error messages of a file that must fail. */
function errors(text: string, name = 'sluice.yaml'): string[] {
  const r = parse(text, name);
  if (r.ok) throw new Error('the file was accepted');
  return r.errors.map((e) => e.message);
}

async function load(env: NodeJS.ProcessEnv): Promise<Extract<LoadResult, { ok: true }>> {
  const r = await loadConfig(env);
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r;
}

const pools = (body: string) => `pools:\n  web: { upstreams: ["http://10.0.1.5:80"] }\n  api: { upstreams: ["http://10.0.0.5:80"] }\n${body}`;

t.test("the issue's example loads, resolves and routes", async (t) => {
  const { config, warnings } = await load({ SLUICE_CONFIG: tempFile(EXAMPLE), SLUICE_CONNECT_TIMEOUT_MS: '1234' });
  t.same(warnings, []);
  t.same(config.pools.map((p) => p.name), ['api', 'web', 'web-canary']);
  const api = config.pools[0];
  t.equal(api.healthPath, '/healthz', 'a pool key');
  t.equal(api.connectTimeoutMs, 1234, 'an env default');
  t.equal(api.requestTimeoutMs, 15000, 'a built-in default');
  t.same(api.upstreams.map((u) => [u.url, u.weight]), [['http://10.0.0.5:8080', 1], ['http://10.0.0.6:8080', 2]]);
  t.same(config.routes.map((r) => r.name), ['route-0', 'route-1', 'route-2', 'route-3', 'route-4', 'route-5']);
  t.same(config.routes[0], {
    name: 'route-0',
    match: { host: 'api.example.com', pathPrefix: '/v1/' },
    action: { kind: 'pool', pool: 'api' },
    rewrite: { kind: 'strip-prefix', prefix: '/v1' },
  });
  t.same(config.routes[1].match.headers, [{ name: 'x-canary', match: { kind: 'exact', value: '1' } }]);
  t.same(config.routes[2].action, { kind: 'split', targets: [{ pool: 'web', weight: 90 }, { pool: 'web-canary', weight: 10 }], key: null });
  t.same(config.routes[4].action, { kind: 'respond', respond: { status: 200, headers: [{ name: 'content-type', value: 'text/plain' }], body: 'User-agent: *\nDisallow:\n' } });
  t.same(config.routes[5].requestHeaders, { set: [{ name: 'x-env', value: 'prod' }], remove: ['x-debug'] });
  const table = compileRoutes(config.routes);
  t.equal(table.match(plainRequest('GET', 'api.example.com', '/v1/users'))?.name, 'route-0');
  t.equal(table.match(plainRequest('GET', 'www.example.com', '/x', [['x-canary', '1']]))?.name, 'route-1');
  t.equal(table.match(plainRequest('POST', 'x.org', '/shop/cart'))?.name, 'route-5');
  t.equal(config.configFile.endsWith('.yaml'), true);
});

t.test('JSON is accepted, by extension or by content', async (t) => {
  const json = JSON.stringify({ pools: { web: { upstreams: ['http://a:80'] } }, routes: [{ name: 'all', match: {}, pool: 'web' }] });
  for (const path of [tempFile(json, 'json'), tempFile(json, 'conf')]) {
    const { config } = await load({ SLUICE_CONFIG: path });
    t.same(config.routes.map((r) => r.name), ['all'], path);
  }
  t.match(errors('{"pools": {},}', 'x.json'), [/^x\.json: not valid JSON: /]);
});

t.test('without a file: the pool "default" from SLUICE_UPSTREAMS and one catch-all route', async (t) => {
  const { config } = await load({ SLUICE_UPSTREAMS: 'http://a,http://b', SLUICE_BALANCER: 'random' });
  t.equal(config.pools.length, 1);
  t.match(config.pools[0], { name: 'default', balancer: 'random' });
  t.equal(config.pools[0].upstreams.length, 2);
  t.same(config.routes, [{ name: 'route-0', match: {}, action: { kind: 'pool', pool: 'default' } }]);
  const demo = await load({});
  t.same(demo.config.pools[0].upstreams, [], 'empty: the demo pool, as before');
});

t.test('SLUICE_UPSTREAMS with a file', async (t) => {
  const fileOnly = pools('routes:\n  - { match: { path_prefix: /api }, pool: api }\n  - { match: {}, pool: default }\n');
  const withEnv = await load({ SLUICE_CONFIG: tempFile(fileOnly), SLUICE_UPSTREAMS: 'http://d:80' });
  t.same(withEnv.config.pools.map((p) => p.name), ['default', 'web', 'api'], 'the env pool "default" joins the file pools');
  t.same(withEnv.config.upstreams.map((u) => u.url), ['http://d:80']);
  t.match(withEnv.warnings, [/pools\.web: no route sends traffic to this pool/]);

  const r = await loadConfig({ SLUICE_CONFIG: tempFile(fileOnly) });
  t.notOk(r.ok, 'without SLUICE_UPSTREAMS, "default" is unknown');
  if (!r.ok) t.match(r.errors.map((e) => e.message), [/routes\[1\]: unknown pool "default"/]);

  const both = `pools:\n  default: { upstreams: ["http://file:80"], balancer: maglev, retries: 3 }\n`;
  const merged = await load({ SLUICE_CONFIG: tempFile(both), SLUICE_UPSTREAMS: 'http://env:80', SLUICE_RETRIES: '0' });
  const def = merged.config.pools[0];
  t.same(def.upstreams.map((u) => u.url), ['http://env:80'], 'env upstreams win');
  t.equal(def.balancer, 'maglev', "the file's other settings for default still apply");
  t.equal(def.retries, 3, 'a pool key wins over the env default');
  t.equal(merged.config.retries, 0, 'the env default stays the default');
  t.match(merged.warnings, [/pools\.default\.upstreams: SLUICE_UPSTREAMS is set and wins/]);
  t.same(merged.config.routes, [{ name: 'route-0', match: {}, action: { kind: 'pool', pool: 'default' } }], 'no routes: everything to default');
  const fileDefault = await load({ SLUICE_CONFIG: tempFile(both) });
  t.same(fileDefault.config.upstreams.map((u) => u.url), ['http://file:80'], 'config.upstreams mirrors the default pool');
});

t.test('every pool setting key maps to its Config field and is checked like its variable', async (t) => {
  const text = `pools:
  p:
    upstreams: ["https://a:443"]
    balancer: ring-hash
    connect_timeout_ms: 100
    request_timeout_ms: 200
    idle_timeout_ms: 300
    max_body_bytes: 400
    upstream_connections: 5
    retries: 2
    retry_budget_percent: 12.5
    max_requests_per_backend: 50
    pipeline: 8
    pipeline_hol_ms: 35
    slow_start_ms: 600
    panic_threshold_percent: 0
    hash_key: "header:X-User"
    least_request_bias: 1.5
    maglev_table_size: 13
    ewma: { decay_ms: 700, default_rtt_ms: 2.5 }
    health: { enabled: false, path: /hz, expect: [200, "3xx"], interval_ms: 800, timeout_ms: 90, healthy_threshold: 4, unhealthy_threshold: 5 }
    outlier: { consecutive_5xx: 6, consecutive_failures: 7, base_ejection_ms: 1000, max_ejection_ms: 2000, max_ejection_percent: 25 }
    tls: { insecure: true }
routes:
  - { match: {}, pool: p }
`;
  const { config } = await load({ SLUICE_CONFIG: tempFile(text) });
  t.match(config.pools[0], {
    balancer: 'ring-hash',
    connectTimeoutMs: 100,
    requestTimeoutMs: 200,
    idleTimeoutMs: 300,
    maxBodyBytes: 400,
    upstreamConnections: 5,
    retries: 2,
    retryBudgetPercent: 12.5,
    maxRequestsPerBackend: 50,
    upstreamPipeline: 8,
    upstreamPipelineHolMs: 35,
    slowStartMs: 600,
    panicThresholdPercent: 0,
    hashKey: { kind: 'header', name: 'x-user' },
    leastRequestBias: 1.5,
    maglevTableSize: 13,
    ewmaDecayMs: 700,
    ewmaDefaultRttMs: 2.5,
    healthCheck: 'off',
    healthPath: '/hz',
    healthExpect: [{ from: 200, to: 200 }, { from: 300, to: 399 }],
    healthIntervalMs: 800,
    healthTimeoutMs: 90,
    healthyThreshold: 4,
    unhealthyThreshold: 5,
    outlierConsecutive5xx: 6,
    outlierConsecutiveFailures: 7,
    outlierBaseEjectionMs: 1000,
    outlierMaxEjectionMs: 2000,
    outlierMaxEjectionPercent: 25,
    upstreamInsecure: true,
  });
});

t.test('pool errors name the pool and the key', async (t) => {
  t.same(errors('pools:\n  api: { upstreams: ["http://a"], balancer: fast }\n  default: { upstreams: ["http://b"] }\n'), [
    'sluice.yaml: pools.api.balancer: got "fast", expected one of round-robin, weighted-round-robin, random, weighted-random, least-request, peak-ewma, peak-ewma-classic, least-conn, ring-hash, maglev',
  ]);
  const found = errors(`pools:
  api: { upstreams: ["http://a", "http://a:80", "ftp://x"], connect_timeout_ms: "5s", helth: {}, health: { interval_ms: 0, enabled: "yes" }, tls: { ca: 7 } }
  Bad: { upstreams: [] }
  web: "http://x"
  default: { balancer: random }
`);
  t.match(found, [
    /pools\.api: unknown key "helth" \(did you mean "health"\?\)/,
    /pools\.api\.upstreams\[1\]: "http:\/\/a:80" is the same backend as item 0/,
    /pools\.api\.upstreams\[2\]: "ftp:\/\/x": expected an http:\/\/ or https:\/\/ URL/,
    /pools\.api\.connect_timeout_ms: expected a number, got a string \("5s"\)/,
    /pools\.api\.health\.enabled: expected true or false, got a string/,
    /pools\.api\.health\.interval_ms: got "0", expected an integer from 10 to 3600000/,
    /pools\.api\.tls\.ca: expected a string, got a number \(7\)/,
    /pools\.Bad: a pool name is lower-case/,
    /pools\.Bad\.upstreams: at least one upstream URL/,
    /pools\.web: expected a map of keys, got a string/,
    /pools\.default: missing key "upstreams"/,
  ]);
  t.equal(found.length, 11);
});

t.test('route errors: unknown pool, bad regex, duplicate name, unreachable, unknown keys, bad types', async (t) => {
  const found = errors(
    pools(`routes:
  - { name: all-api, match: { path_prefix: /api }, pool: api }
  - { match: { path_regex: "(a+)+" }, pool: web }
  - { name: shop, match: { path_prefix: /shop/ }, pool: web }
  - { name: shop, match: { path_prefix: /shop2/ }, pool: wbe }
  - { name: v2, match: { path_prefix: /api/v2 }, pool: web }
  - { match: { path: /x, mtach: 1 }, pol: web, pool: web }
  - { match: { path: /y, methods: GET, headers: { x-canary: 1 } }, pool: web, redirect: { location: /z } }
  - { match: { host: "a*.example.com", path: /s }, split: [{ pool: web, weight: "90" }, { pool: nope, weight: 10 }] }
  - { match: { path: /q }, pool: web, timeout_ms: 0, retries: 11 }
  - { match: { host: "a*.example.com" }, pool: web }
`),
  );
  t.same(found, [
    'sluice.yaml: routes[1]: match.path_regex: a quantifier inside a repeated group can stop at more than one place, as in (a+)+ or (\\w+\\s?)*: it could backtrack catastrophically',
    'sluice.yaml: routes[3] (name "shop"): name "shop" is already used by routes[2]',
    'sluice.yaml: routes[3] (name "shop"): unknown pool "wbe" (did you mean "web"?)',
    'sluice.yaml: routes[5]: unknown key "pol" (did you mean "pool"?); known keys: name, match, pool, split, redirect, respond, split_key, strip_prefix, prefix_rewrite, regex_rewrite, host_rewrite, request_headers, response_headers, timeout_ms, retries, max_body_bytes, websocket, rate_limit, max_in_flight, auth, ip_allow, ip_deny, cors',
    'sluice.yaml: routes[5]: match: unknown key "mtach"; known keys: host, path, path_prefix, path_regex, methods, headers, query',
    'sluice.yaml: routes[6]: match.methods: expected a list, got a string ("GET")',
    'sluice.yaml: routes[6]: match.headers.x-canary: expected a string or one of { exact | prefix | regex | present }, got a number (1) (quote it: "1")',
    'sluice.yaml: routes[6]: give one action, not pool and redirect',
    'sluice.yaml: routes[7]: split[0].weight: expected a number, got a string ("90")',
    'sluice.yaml: routes[7]: split[1]: unknown pool "nope"',
    'sluice.yaml: routes[8]: timeout_ms: got 0, expected an integer from 1 to 3600000',
    'sluice.yaml: routes[8]: retries: got 11, expected an integer from 0 to 10',
    'sluice.yaml: routes[9]: match.host: "a*.example.com": a wildcard is only allowed as a leading "*." label',
    'sluice.yaml: routes[4] (name "v2"): unreachable: routes[0] (name "all-api") already matches every request this route matches',
  ]);
});

t.test('the brief examples, word for word', async (t) => {
  const text = pools(`routes:\n${'  - { match: { path: /p%i }, pool: web }\n'.repeat(3).replace(/%i/g, () => String(files++))}  - { name: shop, match: { path_prefix: /shop/ }, pool: wbe }\n`);
  t.same(errors(text), ['sluice.yaml: routes[3] (name "shop"): unknown pool "wbe" (did you mean "web"?)']);
});

t.test('an earlier catch-all makes every later route unreachable', async (t) => {
  const found = errors(pools('routes:\n  - { name: everything, match: {}, pool: web }\n  - { match: { path: /a }, pool: api }\n  - { match: { host: x.com }, redirect: { location: /b } }\n'));
  t.same(found, [
    'sluice.yaml: routes[1]: unreachable: routes[0] (name "everything") already matches every request this route matches',
    'sluice.yaml: routes[2]: unreachable: routes[0] (name "everything") already matches every request this route matches',
  ]);
});

t.test('action-specific checks come from the model', async (t) => {
  const found = errors(
    pools(`routes:
  - { match: { path: /a }, redirect: { status: 200, location: /b }, strip_prefix: /a }
  - { match: { path: /b }, respond: { status: 204, body: x } }
  - { match: { path: /c }, pool: web, request_headers: { set: { x-bad: "a\\r\\nb" } } }
  - { match: { path: /d }, pool: web, strip_prefix: /d, prefix_rewrite: /e }
  - { match: { path: /e }, split: [{ pool: web, weight: 1 }], split_key: "session" }
  - { match: { path: /f }, pool: web, split_key: "header:x" }
`),
  );
  t.match(found, [
    /routes\[0\]: redirect\.status: 200 is not a redirect status/,
    /routes\[0\]: strip_prefix: has no effect with a redirect action/,
    /routes\[1\]: respond\.body: a 204 response has no body/,
    /routes\[2\]: request_headers\.set\.x-bad: .*control character/,
    /routes\[3\]: give at most one path rewrite, not strip_prefix and prefix_rewrite/,
    /routes\[4\]: split_key: got "session", expected "header:<name>" or "cookie:<name>"/,
    /routes\[5\]: split_key: only means something with split/,
  ]);
});

t.test('file-level problems', async (t) => {
  t.same(errors(''), ['sluice.yaml: expected a map with pools: and routes:, got an empty file']);
  t.same(errors('- a\n'), ['sluice.yaml: expected a map with pools: and routes:, got a list']);
  t.match(errors('pools: {}\nroutse: []\n'), [/^sluice\.yaml: unknown key "routse" \(did you mean "routes"\?\)/, /no routes: and no pool "default"/]);
  t.match(errors('routes:\n  - { match: {}, pool: web }\n'), [/no pools: declare them under pools:, or set SLUICE_UPSTREAMS/, /unknown pool "web"/]);
  t.match(errors(pools('routes: []\n')), [/routes: an empty list routes nothing/]);
  t.match(errors('pools:\n  a: 1\n  a: 2\n'), [/^sluice\.yaml:3:3: not valid YAML: Map keys must be unique/]);
  t.match(errors('pools: {a: [}\n'), [/^sluice\.yaml:\d+:\d+: not valid YAML: /]);
});

t.test('x- keys are ignored, so YAML anchors can hold shared settings', async (t) => {
  const text = `x-common: &common { balancer: least-request, retries: 0 }
pools:
  a: { <<: *common, upstreams: ["http://a"] }
  b: { <<: *common, upstreams: ["http://b"], retries: 2 }
routes:
  - { match: { host: a.com }, pool: a, x-comment: first }
  - { match: {}, pool: b }
`;
  const r = parse(text);
  t.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  if (r.ok) t.same(r.content.pools.map((p) => p.overrides), [{ balancer: 'least-request', retries: 0 }, { balancer: 'least-request', retries: 2 }]);
});

t.test('tls.ca: relative to the file, and must be a readable PEM bundle', async (t) => {
  const sub = mkdtempSync(join(dir, 'ca-'));
  writeFileSync(join(sub, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(sub, 'junk.pem'), 'hello');
  const file = join(sub, 'sluice.yaml');
  writeFileSync(file, 'pools:\n  default: { upstreams: ["https://a"], tls: { ca: ca.pem } }\n');
  const { config } = await load({ SLUICE_CONFIG: file });
  t.equal(config.pools[0].upstreamCa, join(sub, 'ca.pem'));
  for (const [ca, why] of [['junk.pem', /no PEM certificate/], ['missing.pem', /cannot be read \(ENOENT\)/]] as const) {
    writeFileSync(file, `pools:\n  default: { upstreams: ["https://a"], tls: { ca: ${ca} } }\n`);
    const r = await loadConfig({ SLUICE_CONFIG: file });
    t.notOk(r.ok);
    if (!r.ok) t.match(r.errors[0]?.message, why);
    if (!r.ok) t.match(r.errors[0]?.message, `${file}: pools.default.tls.ca: `);
  }
});

t.test('more upstreams than the shared table holds', async (t) => {
  const list = (n: number, p: string) => JSON.stringify(Array.from({ length: n }, (_, i) => `http://${p}${i}:80`));
  const r = await loadConfig({ SLUICE_CONFIG: tempFile(`pools:\n  a: { upstreams: ${list(600, 'a')} }\n  default: { upstreams: ${list(500, 'b')} }\n`) });
  t.notOk(r.ok);
  if (!r.ok) t.match(r.errors.map((e) => e.message), [/pools: 1100 upstreams in all, more than the 1024/]);
});

t.test('a generated 1,000-route file loads and compiles in under a second', async (t) => {
  await ensureBuilt();
  const lines = ['pools:', '  web: { upstreams: ["http://10.0.1.5:80"] }', '  api: { upstreams: ["http://10.0.0.5:80"] }', 'routes:'];
  for (let i = 0; i < 1000; i++) {
    const kind = i % 5;
    if (kind === 0) lines.push(`  - { name: r${i}, match: { host: svc${i}.example.com, path_prefix: /v1 }, pool: api, strip_prefix: /v1 }`);
    else if (kind === 1) lines.push(`  - { name: r${i}, match: { host: "*.zone${i}.example.com", path: /p }, pool: web }`);
    else if (kind === 2) lines.push(`  - { name: r${i}, match: { path_prefix: /static/${i}/, methods: [GET, HEAD] }, pool: web }`);
    else if (kind === 3) lines.push(`  - { name: r${i}, match: { path_regex: "/r/${i}/[0-9]+", headers: { x-t: { prefix: a } } }, pool: api }`);
    else lines.push(`  - { name: r${i}, match: { path: /exact/${i} }, redirect: { status: 308, path: /new/${i} } }`);
  }
  const path = tempFile(`${lines.join('\n')}\n`);
  const { config } = await load({ SLUICE_CONFIG: path });
  const table = compileRoutes(config.routes);
  t.equal(table.routes.length, 1000);
  t.equal(table.match(plainRequest('GET', 'svc500.example.com', '/v1/x'))?.name, 'r500');
  // Timed in a fresh process on the built code, as `sluice` starts: cold, and without the coverage
  // instrumentation this test runs under (which roughly doubles the time). Read, YAML parse,
  // validation (the unreachable-route check included) and compile; about 0.5 s on a dev machine.
  const script = `
    const { loadConfig } = await import(${JSON.stringify(new URL('../../dist/src/config/load.js', import.meta.url).href)});
    const { compileRoutes } = await import(${JSON.stringify(new URL('../../dist/src/model/index.js', import.meta.url).href)});
    const start = process.cpuUsage();
    const r = await loadConfig({ SLUICE_CONFIG: ${JSON.stringify(path)} });
    const n = r.ok ? compileRoutes(r.config.routes).routes.length : -1;
    const used = process.cpuUsage(start);
    console.log(JSON.stringify({ ms: (used.user + used.system) / 1000, n }));`;
  // CPU time, not wall time: what the load costs does not depend on how busy the machine is.
  const env = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env });
  const { ms, n } = JSON.parse(child.stdout) as { ms: number; n: number };
  t.equal(n, 1000);
  t.ok(ms < 1000, `loaded and compiled in ${ms.toFixed(0)} ms of CPU time`);
});

t.test('docs/routing.md lists every pool key with the variable it defaults from', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { POOL_KEYS } = await import('../../src/config/file-pools.js');
  const { variableFor } = await import('../../src/config/variables.js');
  const doc = readFileSync(new URL('../../docs/routing.md', import.meta.url), 'utf8');
  for (const [field, { key }] of Object.entries(POOL_KEYS)) {
    const variable = variableFor(field as keyof typeof POOL_KEYS).name;
    t.ok(doc.split('\n').some((line) => line.startsWith(`| \`${key}\` | \`${variable}\``)), `${key} (${variable})`);
  }
});
