// Routing cost (issue 10): what a large route table costs per request, and what a `respond` route
// costs next to uWS answering directly. Four rows, measured in interleaved rounds of one run:
//
//   direct        the uWS bench backend, no proxy (the ceiling)
//   1 route       Sluice, one catch-all route to a pool of that backend
//   N routes      Sluice, N host/path routes (default 1,000); the request hits the LAST one in file
//                 order, so a table that scanned routes in order would pay for all of them
//   respond       Sluice, one `respond` route answering the same 13 bytes as the backend: no backend
//
// Every Sluice row sends the same request (same Host, same path), so the only difference between
// "1 route" and "N routes" is the table. Rounds alternate the order (A B C D, D C B A, ...) so drift
// on a shared machine spreads over every row; ratios are taken within each round and the median
// is reported. Target: N routes ≥ 0.95× 1 route (the table costs < 5% of req/s).
//
//   node bench/routes.js [--duration 5] [--warmup 1] [--rounds 3] [--routes 1000] [--workers 1]
//                        [--connections 100] [--generator wrk|autocannon] [--threads n]
//
// Results: a table on stdout and bench/results/routes-<time>.json.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, startBackend, stopProcess } from './lib/procs.js';
import { formatMs, formatRatio, formatRps, ratio, renderTable } from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, beginRun, machineAndVersions, measureLoad, parseOptions,
  renderChecks, resultHead, runScenario, saveResults, stopTarget, warnIfBusy,
} from './lib/scenario.js';
import { startSluice } from './lib/targets.js';

const EXPECTED_BODY = 'hello, world\n';
/** Distinct exact host names the generated routes cycle through (each host bucket holds N/50 routes). */
const HOSTS = 50;

const USAGE = `usage: node bench/routes.js [options]
  --duration <s>      seconds measured per row and round (default 5)
  --rounds <n>        interleaved rounds (default 3)
  --routes <n>        size of the large table (default 1000)
  --workers <n>       Sluice worker threads (default 1)
  --connections <n>   concurrent keep-alive connections (default 100)
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({ ...COMMON_OPTIONS, rounds: { type: 'string' }, routes: { type: 'string' }, workers: { type: 'string' } }, USAGE);
  return {
    durationS: o.int('duration', 1, 5),
    warmupS: o.int('warmup', 0, 1),
    rounds: o.int('rounds', 1, 3),
    routes: o.int('routes', 1, 1000),
    workers: o.int('workers', 1, 1),
    connections: o.int('connections', 1, 100),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
}

/** The request every Sluice row sends: the last route of the large table matches it. */
function hitRequest(n) {
  const last = n - 1;
  return { host: `svc-${last % HOSTS}.example.com`, path: `/r${last}/items` };
}

/**
 * `n` host/path routes of four kinds (exact host + prefix, wildcard host + prefix, no host + prefix
 * and method, exact host + exact path), each with its own path, all to pool "bench"; the last one
 * is an exact host + prefix route that the bench request matches and no earlier route does.
 */
function manyRoutes(n) {
  const routes = [];
  for (let i = 0; i < n; i++) {
    const host = `svc-${i % HOSTS}.example.com`;
    const kind = i === n - 1 ? 0 : i % 4;
    const match =
      kind === 0 ? { host, path_prefix: `/r${i}/` }
      : kind === 1 ? { host: `*.tenant-${i % HOSTS}.example.com`, path_prefix: `/r${i}/` }
      : kind === 2 ? { path_prefix: `/r${i}/`, methods: ['GET', 'HEAD'] }
      : { host, path: `/r${i}/exact` };
    routes.push({ name: `r${i}`, match, pool: 'bench' });
  }
  return routes;
}

function writeConfig(dir, name, config) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

/** One GET with a Host header; resolves { status, body }. */
function get(url, host) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { host }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-routes-');
  const { generator, scratchDir } = run;
  const loadAvg = os.loadavg();
  const hit = hitRequest(opts.routes);
  const backend = await startBackend(BENCH_DIR);
  const pool = { bench: { upstreams: [backend.url] } };
  const common = {
    repoRoot: REPO_ROOT, upstreams: [], workers: opts.workers, stdout: '/dev/null',
    env: { SLUICE_HEALTH_CHECK: 'off', SLUICE_ADMIN_LISTEN: 'off', SLUICE_LOG_LEVEL: 'warn' },
  };
  const sluice = async (name, config, readyStatus) => {
    const file = writeConfig(scratchDir, name, config);
    return startSluice({ ...common, port: await freePort(), env: { ...common.env, SLUICE_CONFIG: file }, readyStatus });
  };

  console.log(`routes bench: ${opts.rounds} rounds x 4 rows x (${opts.warmupS} s warm-up + ${opts.durationS} s), `
    + `${opts.connections} connections, generator ${generator.label}, Sluice ${opts.workers} worker(s), ${os.cpus().length} CPUs`);
  const warning = warnIfBusy(run.busyBefore, loadAvg);
  const started = [];
  try {
    const one = await sluice('one-route', { pools: pool, routes: [{ name: 'all', match: { path_prefix: '/' }, pool: 'bench' }] }, 200);
    started.push(one);
    // GET / (Host 127.0.0.1) matches none of the large table's routes: 404 means it is up.
    const many = await sluice('many-routes', { pools: pool, routes: manyRoutes(opts.routes) }, 404);
    started.push(many);
    const respond = await sluice('respond', {
      pools: pool,
      routes: [{ name: 'hello', match: { path_prefix: '/' }, respond: { status: 200, body: EXPECTED_BODY } }],
    }, 200);
    started.push(respond);

    const rows = [
      { key: 'direct', target: 'uWS direct (backend)', url: `${backend.url}${hit.path}`, headers: undefined, handle: null },
      { key: 'one', target: 'sluice, 1 route', url: `${one.url}${hit.path}`, headers: { Host: hit.host }, handle: one.handle },
      { key: 'many', target: `sluice, ${opts.routes} routes (last hit)`, url: `${many.url}${hit.path}`, headers: { Host: hit.host }, handle: many.handle },
      { key: 'respond', target: 'sluice, respond route', url: `${respond.url}${hit.path}`, headers: { Host: hit.host }, handle: respond.handle },
    ];
    // Every row must answer the bench request with the backend's 13 bytes before anything is timed.
    for (const row of rows) {
      const res = await get(row.url, row.headers?.Host ?? new URL(row.url).host);
      if (res.status !== 200 || res.body !== EXPECTED_BODY) {
        throw new Error(`${row.target}: ${row.url} (Host ${row.headers?.Host ?? '-'}) answered ${res.status} ${JSON.stringify(res.body.slice(0, 60))}`);
      }
      row.results = [];
    }

    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? rows : [...rows].reverse();
      console.log(`round ${round + 1}/${opts.rounds}`);
      for (const row of order) {
        const m = await measureLoad({
          generator, url: row.url, headers: row.headers, connections: opts.connections, durationS: opts.durationS,
          warmupS: opts.warmupS, waitQuietS: opts.waitQuietS, pids: [backend.handle.pid, row.handle?.pid].filter(Boolean),
        });
        row.results.push({ round, rps: m.result.rps, p50Ms: m.result.p50Ms, p99Ms: m.result.p99Ms, non2xx: m.result.non2xx, errors: m.result.errors, otherCpu: m.otherCpu, notes: m.notes });
        console.log(`  ${row.target.padEnd(34)} ${formatRps(m.result.rps)} req/s, p99 ${formatMs(m.result.p99Ms)} ms${m.notes.length ? ` (${m.notes.join('; ')})` : ''}`);
      }
    }

    const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
    const perRound = (a, b) => byKey[a].results.map((r, i) => ratio(r.rps, byKey[b].results[i].rps));
    const manyVsOne = perRound('many', 'one');
    const respondVsDirect = perRound('respond', 'direct');
    const oneVsDirect = perRound('one', 'direct');
    const table = rows.map((r) => ({
      target: r.target,
      rounds: r.results.map((x) => formatRps(x.rps)).join(' / '),
      rps: median(r.results.map((x) => x.rps)),
      p99Ms: median(r.results.map((x) => x.p99Ms)),
      ratio: r.key === 'many' ? median(manyVsOne) : r.key === 'respond' ? median(respondVsDirect) : r.key === 'one' ? median(oneVsDirect) : null,
      vs: r.key === 'many' ? '1 route' : r.key === 'direct' ? '' : 'direct',
      failures: r.results.reduce((n, x) => n + x.non2xx + x.errors, 0),
    }));
    const columns = [
      { key: 'target', title: 'row', align: 'left' },
      { key: 'rounds', title: 'req/s per round', align: 'right' },
      { key: 'rps', title: 'median req/s', align: 'right', format: formatRps },
      { key: 'p99Ms', title: 'p99 ms', align: 'right', format: formatMs },
      { key: 'ratio', title: 'ratio (median of rounds)', align: 'right', format: (v, r) => (v === null ? '-' : `${formatRatio(v)} ${r.vs}`) },
      { key: 'failures', title: 'non-2xx+errors', align: 'right' },
    ];
    console.log(`\n${renderTable(columns, table)}\n`);
    const m = median(manyVsOne);
    // A row with non-2xx answers or socket errors measured something else than routing (a 400, a
    // 404): its ratio proves nothing.
    const failed = table.filter((r) => r.failures > 0).map((r) => r.target);
    const checks = [
      {
        label: `${opts.routes}-route table costs < 5% of req/s (last route hit)`,
        pass: m === null ? null : failed.length > 0 ? false : m >= 0.95,
        detail: m === null ? 'not measured'
          : `${formatRatio(m)} of 1 route (rounds: ${manyVsOne.map(formatRatio).join(', ')})${failed.length ? `; INVALID: non-2xx or errors in ${failed.join(', ')}` : ''}`,
      },
      {
        label: 'respond route near uWS direct',
        pass: null,
        detail: `${formatRatio(median(respondVsDirect))} of direct (rounds: ${respondVsDirect.map(formatRatio).join(', ')}); informational`,
      },
    ];
    console.log(renderChecks(checks));
    if (warning) console.log(`WARNING: ${warning}`);
    console.log('ratios compare rows of the same round only; absolute req/s drift between runs on a shared machine');
    const wallS = run.elapsedS();
    saveResults('routes', run, {
      ...resultHead(`routes: 1 route vs ${opts.routes} routes (last hit), respond route vs uWS direct`, run, opts, wallS),
      ...machineAndVersions(run, loadAvg),
      rounds: opts.rounds,
      workers: opts.workers,
      request: hit,
      rows: rows.map((r) => ({ key: r.key, target: r.target, results: r.results })),
      ratios: { manyVsOne, respondVsDirect, oneVsDirect },
      checks,
    });
  } finally {
    for (const s of started) await stopTarget(s.handle);
    await stopProcess(backend.handle);
  }
}

runScenario('routes', main);
