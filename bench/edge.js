// Edge policy cost and limiter accuracy, one run (docs/edge.md cites it).
//
//   node bench/edge.js [--duration 5] [--connections 100] [--workers 2] [--skip-accuracy]
//
// 1. req/s of GET over keep-alive (autocannon, the same connections for each row) through one
//    Sluice process, route by route: no policy (the baseline), then (a) a rate limit that is never
//    hit, (b) JWT RS256 with a warm verified-token cache, (c) an IP allow list of 1,000 CIDRs with
//    the client's block last. Each row's ratio to the baseline; the target is >= 0.95.
// 2. RS256 verifications per second with jose on one thread (what a cache miss costs a worker).
// 3. Limiter accuracy: 1/m with burst 200, 1,000 requests over 64 connections; admitted vs 200 for
//    1, 2 and 4 workers, and for two Sluice processes sharing one Redis (when redis-server is on
//    PATH; skipped otherwise).
// Prints a table and writes bench/results/edge-<time>.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { freePort, startBackend, startProcess, stopProcess, waitForOutput, which } from './lib/procs.js';
import { startSluice } from './lib/targets.js';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(BENCH_DIR, '..');

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '100' },
    workers: { type: 'string', default: '2' },
    'skip-accuracy': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: node bench/edge.js [--duration 5] [--connections 100] [--workers 2] [--skip-accuracy]');
  process.exit(0);
}
const durationS = Number(values.duration);
const connections = Number(values.connections);
const workers = Number(values.workers);

function loadFor(url, headers, seconds) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections, duration: seconds, headers }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

function load(url, headers = {}) {
  return loadFor(url, headers, durationS);
}

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-edge-'));
}

async function costRows(backend) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256' };
  const token = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'RS256', kid: 'bench' }).setExpirationTime('1h').sign(privateKey);
  const cidrs = [];
  for (let i = 0; i < 999; i++) cidrs.push(`10.${i >> 8}.${i & 255}.0/24`);
  cidrs.push('127.0.0.0/8');
  const dir = scratch();
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  fs.writeFileSync(
    path.join(dir, 'sluice.yaml'),
    `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - { match: { path_prefix: /rl/ }, pool: api, rate_limit: [{ key: client_ip, rate: 100000000/s }] }
  - { match: { path_prefix: /jwt/ }, pool: api, auth: { jwt: { jwks_file: jwks.json } } }
  - { match: { path_prefix: /ip/ }, pool: api, ip_allow: ${JSON.stringify(cidrs)} }
  - { match: { path_prefix: / }, pool: api }
`,
  );
  const port = await freePort();
  const s = await startSluice({ repoRoot: REPO_ROOT, port, upstreams: [], workers, env: { SLUICE_CONFIG: path.join(dir, 'sluice.yaml') }, stdout: '/dev/null' });
  const rows = [];
  try {
    // Every row sends the same request, token included: only the route's policy differs, so a
    // ratio is the policy's cost, not the cost of a 0.6 KiB header the other rows do not carry.
    const same = { authorization: `Bearer ${token}` };
    const cases = [
      ['no policy', '/plain', same],
      ['rate limit, never hit', '/rl/x', same],
      ['JWT RS256, warm cache', '/jwt/x', same],
      ['IP allow, 1,000 CIDRs', '/ip/x', same],
    ];
    // Unrecorded warm-up of every route (JIT, pooled connections, the token cache).
    for (const [, p, headers] of cases) await loadFor(`${s.url}${p}`, headers, Math.min(1, durationS / 4));
    for (const [name, p, headers] of cases) {
      const r = await load(`${s.url}${p}`, headers);
      rows.push({ name, rps: r.requests.average, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors });
    }
  } finally {
    await stopProcess(s.handle);
  }
  const base = rows[0].rps;
  for (const r of rows) r.ratio = base > 0 ? r.rps / base : NaN;
  return { rows, verifyPerSecond: await rs256PerSecond(token, jwk) };
}

async function rs256PerSecond(token, jwk) {
  const key = await importJWK(jwk, 'RS256');
  const end = performance.now() + Math.min(1000, durationS * 1000);
  let n = 0;
  while (performance.now() < end) {
    await jwtVerify(token, key);
    n++;
  }
  return n / (Math.min(1000, durationS * 1000) / 1000);
}

function blast(url, n, conns) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const one = () =>
    new Promise((resolve) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', () => resolve(0));
    });
  return Promise.all(Array.from({ length: n }, one)).finally(() => agent.destroy());
}

async function accuracy(backend) {
  const out = [];
  const limitYaml = (extra) => `pools: { api: { upstreams: ["${backend.url}"] } }
routes:
  - { match: { path_prefix: /limited/ }, pool: api, rate_limit: [{ key: route, rate: 1/m, burst: 200${extra} }] }
  - { match: { path_prefix: / }, pool: api }
`;
  for (const w of [1, 2, 4]) {
    const dir = scratch();
    fs.writeFileSync(path.join(dir, 'sluice.yaml'), limitYaml(''));
    const s = await startSluice({ repoRoot: REPO_ROOT, port: await freePort(), upstreams: [], workers: w, env: { SLUICE_CONFIG: path.join(dir, 'sluice.yaml') }, stdout: '/dev/null' });
    try {
      const st = await blast(`${s.url}/limited/x`, 1000, 64);
      out.push({ setup: `${w} worker(s)`, limit: 200, admitted: st.filter((x) => x === 200).length });
    } finally {
      await stopProcess(s.handle);
    }
  }
  if (!which('redis-server')) {
    out.push({ setup: '2 processes + Redis', limit: 200, admitted: null, note: 'skipped: redis-server not on PATH' });
    return out;
  }
  const redisPort = await freePort();
  const redis = startProcess('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', scratch()]);
  try {
    await waitForOutput(redis, /Ready to accept connections/, 10_000);
    const dir = scratch();
    fs.writeFileSync(path.join(dir, 'sluice.yaml'), limitYaml(`, global: "redis://127.0.0.1:${redisPort}"`));
    const env = { SLUICE_CONFIG: path.join(dir, 'sluice.yaml') };
    const a = await startSluice({ repoRoot: REPO_ROOT, port: await freePort(), upstreams: [], workers: 2, env, stdout: '/dev/null' });
    const b = await startSluice({ repoRoot: REPO_ROOT, port: await freePort(), upstreams: [], workers: 2, env, stdout: '/dev/null' });
    try {
      const [x, y] = await Promise.all([blast(`${a.url}/limited/x`, 500, 32), blast(`${b.url}/limited/x`, 500, 32)]);
      out.push({ setup: '2 processes × 2 workers + Redis', limit: 200, admitted: [...x, ...y].filter((s) => s === 200).length });
    } finally {
      await Promise.all([stopProcess(a.handle), stopProcess(b.handle)]);
    }
  } finally {
    await stopProcess(redis);
  }
  return out;
}

const backend = await startBackend(BENCH_DIR);
try {
  const cost = await costRows(backend);
  console.log(`\nEdge policy cost: ${workers} worker(s), ${connections} connections, ${durationS} s per row`);
  console.log('row                         req/s      ratio   p99 ms  non-2xx');
  for (const r of cost.rows) console.log(`${r.name.padEnd(26)} ${String(Math.round(r.rps)).padStart(8)}  ${r.ratio.toFixed(3).padStart(7)} ${String(r.p99Ms).padStart(8)}  ${r.non2xx}`);
  console.log(`RS256 verifications per second, one thread (jose): ${Math.round(cost.verifyPerSecond)}`);
  const acc = values['skip-accuracy'] ? [] : await accuracy(backend);
  if (acc.length > 0) {
    console.log('\nLimiter accuracy: 1/m, burst 200, 1,000 requests');
    for (const a of acc) console.log(`${a.setup.padEnd(32)} admitted ${a.admitted ?? '-'} of ${a.limit}${a.note ? `  (${a.note})` : ''}`);
  }
  const resultsDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `edge-${new Date().toISOString().replace(/:/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ node: process.version, cpus: os.cpus().length, workers, connections, durationS, cost, accuracy: acc }, null, 2));
  console.log(`\nwrote ${path.relative(REPO_ROOT, file)}`);
} finally {
  await stopProcess(backend.handle);
}
