// Membership churn under load (issue 16): wrk (or autocannon) against Sluice while a script adds
// and removes one backend per second, alternately through etcd (a key under a lease) and through
// the registration API (PUT/DELETE on the admin listener, which writes to etcd too), compared with
// the same pool held static. Rows, in one run:
//
//   static   Sluice, pool of 2 fixed backends + 2 more, listed statically
//   churn    Sluice, 2 fixed backends + an etcd prefix; every second one backend joins and the
//            oldest discovered one leaves, so the pool stays at 4 (about) while it keeps changing
//
// Targets: zero non-2xx and zero socket errors in the churn row; churn req/s within 10% of static.
// Also reported: watch latency, from a put to etcd (or the API's answer) to the first request the
// new backend served (its --count counter polled every 2 ms), p50 and p99.
//
// Needs etcd on PATH (apt-get install -y etcd-server); it is started on free loopback ports with a
// data dir in the scratch folder.
//
//   node bench/churn.js [--duration 60] [--warmup 1] [--workers 1] [--connections 100]
//                       [--generator wrk|autocannon] [--threads n]
//
// Results: a table on stdout and bench/results/churn-<time>.json.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { backendCount, freePort, startBackend, startProcess, stopProcess, which } from './lib/procs.js';
import { formatMs, formatRatio, formatRps, ratio, renderTable } from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, beginRun, machineAndVersions, measureLoad, parseOptions,
  renderChecks, resultHead, runScenario, saveResults, stopTarget, warnIfBusy,
} from './lib/scenario.js';
import { startSluice } from './lib/targets.js';

const PREFIX = '/sluice/bench/churn/';
/** Backends that come and go (one joins, the oldest leaves, every second). */
const CHURNERS = 6;
/** Discovered backends kept in the pool at once (the static row lists this many extra too). */
const DISCOVERED = 2;
/** Lease of a backend put straight into etcd, and of a registration: far longer than a round. */
const TTL_S = 30;

const USAGE = `usage: node bench/churn.js [options]
  --duration <s>      seconds measured per row (default 60)
  --workers <n>       Sluice worker threads (default 1)
  --connections <n>   concurrent keep-alive connections (default 100)
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({ ...COMMON_OPTIONS, workers: { type: 'string' } }, USAGE);
  return {
    durationS: o.int('duration', 1, 60),
    warmupS: o.int('warmup', 0, 1),
    workers: o.int('workers', 1, 1),
    connections: o.int('connections', 1, 100),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
}

async function startEtcd(scratchDir) {
  if (!which('etcd')) throw new Error('etcd is not on PATH (apt-get install -y etcd-server)');
  const client = await freePort();
  const peer = await freePort();
  const endpoint = `http://127.0.0.1:${client}`;
  const handle = startProcess('etcd', 'etcd', [
    '--name', 'bench', '--data-dir', path.join(scratchDir, 'etcd'),
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `bench=http://127.0.0.1:${peer}`, '--log-level', 'error',
  ]);
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const r = await fetch(`${endpoint}/health`);
      if (r.ok && (await r.json()).health === 'true') break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`etcd did not start: ${handle.output().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { handle, endpoint };
}

function adminCall(admin, method, pathName, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${admin}${pathName}`, { method, headers: { 'x-sluice-admin': '1', 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${method} ${pathName}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** ms from `since` until the backend has answered a request (its counter moved), polled every 2 ms. */
async function firstServed(backend, since, limitMs = 10_000) {
  for (;;) {
    if ((await backendCount(backend)) > 0) return Date.now() - since;
    if (Date.now() - since > limitMs) return null;
    await new Promise((r) => setTimeout(r, 2));
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * The churn script: every second, one churner joins (even seconds through etcd with a lease, odd
 * ones through the registration API) and, once DISCOVERED are in, the oldest leaves the same way it
 * came. Runs until `stop()`; resolves the watch latencies measured.
 */
function churn({ etcd, admin, churners }) {
  const latencies = { etcd: [], api: [] };
  const errors = [];
  const joined = [];
  let i = 0;
  let stopped = false;
  let timer = null;
  let pending = Promise.resolve();
  const tick = async () => {
    if (stopped) return;
    const b = churners[i % churners.length];
    const via = i % 2 === 0 ? 'etcd' : 'api';
    i++;
    try {
      if (joined.length >= DISCOVERED) {
        const old = joined.shift();
        if (old.via === 'etcd') await etcd.delete().key(`${PREFIX}${old.id}`);
        else await adminCall(admin, 'DELETE', `/api/registry/churn/${old.id}`);
      }
      await backendCount(b, { reset: true });
      const id = `b${b.port}`;
      let since;
      if (via === 'etcd') {
        const lease = etcd.lease(TTL_S, { autoKeepAlive: false });
        await lease.grant();
        since = Date.now();
        await lease.put(`${PREFIX}${id}`).value(JSON.stringify({ url: b.url }));
      } else {
        since = Date.now();
        await adminCall(admin, 'PUT', '/api/registry/churn', { url: b.url, id, ttl_s: TTL_S });
      }
      joined.push({ id, via });
      const ms = await firstServed(b, since);
      if (ms === null) errors.push(`${b.url} (${via}) never served`);
      else latencies[via].push(ms);
    } catch (err) {
      errors.push(err.message);
    }
  };
  const loop = () => {
    timer = setTimeout(() => {
      pending = tick();
      if (!stopped) loop();
    }, 1000);
  };
  loop();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      // The change in progress finishes (and is measured) before Sluice is stopped.
      await pending;
      for (const j of joined) {
        if (j.via === 'etcd') await etcd.delete().key(`${PREFIX}${j.id}`).catch(() => undefined);
        else await adminCall(admin, 'DELETE', `/api/registry/churn/${j.id}`).catch(() => undefined);
      }
      return { latencies, errors, changes: i };
    },
  };
}

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-churn-');
  warnIfBusy(run.busyBefore);
  const { generator, scratchDir } = run;
  const fixed = [await startBackend(BENCH_DIR), await startBackend(BENCH_DIR)];
  const churners = [];
  for (let i = 0; i < CHURNERS; i++) churners.push(await startBackend(BENCH_DIR, { count: true }));
  const etcdProc = await startEtcd(scratchDir);
  const etcd = new Etcd3({ hosts: etcdProc.endpoint });
  const rows = [];
  let watch = null;
  try {
    for (const name of ['static', 'churn']) {
      const port = await freePort();
      const adminPort = await freePort();
      const pool = name === 'static'
        ? { upstreams: [...fixed, ...churners.slice(0, DISCOVERED)].map((b) => b.url) }
        : { upstreams: fixed.map((b) => b.url), etcd: { endpoints: [etcdProc.endpoint], prefix: PREFIX } };
      const configFile = path.join(scratchDir, `${name}.json`);
      fs.writeFileSync(configFile, JSON.stringify({ pools: { churn: pool }, routes: [{ match: { path_prefix: '/' }, pool: 'churn' }] }));
      const target = await startSluice({
        repoRoot: REPO_ROOT, port, upstreams: [], workers: opts.workers, stdout: '/dev/null',
        env: { SLUICE_CONFIG: configFile, SLUICE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` },
      });
      const row = { name, status: 'ok', rps: null, p50Ms: null, p99Ms: null, non2xx: null, errors: null, notes: [] };
      let churning = null;
      try {
        const m = await measureLoad({
          generator, url: target.url, connections: opts.connections, durationS: opts.durationS, warmupS: opts.warmupS,
          waitQuietS: opts.waitQuietS, pids: [target.handle.pid, ...fixed, ...churners].map((x) => x.pid ?? x.handle?.pid).filter(Boolean),
          beforeRun: async () => {
            if (name === 'churn') churning = churn({ etcd, admin: `http://127.0.0.1:${adminPort}`, churners });
          },
        });
        Object.assign(row, { rps: m.result.rps, p50Ms: m.result.p50Ms, p99Ms: m.result.p99Ms, non2xx: m.result.non2xx, errors: m.result.errors, notes: m.notes });
      } catch (err) {
        row.status = 'failed';
        row.notes.push(err.message);
      } finally {
        if (churning) watch = await churning.stop();
        const note = await stopTarget(target.handle);
        if (note) row.notes.push(note);
      }
      rows.push(row);
      console.log(`${name}: ${row.status === 'ok' ? `${formatRps(row.rps)} req/s` : row.status}${row.notes.length ? ` (${row.notes.join('; ')})` : ''}`);
    }
  } finally {
    etcd.close();
    await stopProcess(etcdProc.handle);
    for (const b of [...fixed, ...churners]) await stopProcess(b.handle);
  }

  const [stat, ch] = rows;
  const all = watch ? [...watch.latencies.etcd, ...watch.latencies.api].sort((a, b) => a - b) : [];
  const lat = (list) => {
    const s = [...list].sort((a, b) => a - b);
    return { n: s.length, p50Ms: percentile(s, 50), p99Ms: percentile(s, 99) };
  };
  const latency = watch ? { all: lat(all), etcd: lat(watch.latencies.etcd), api: lat(watch.latencies.api), changes: watch.changes, errors: watch.errors } : null;
  console.log(renderTable(
    [
      { key: 'name', title: 'row' },
      { key: 'rps', title: 'req/s', align: 'right', format: (v) => (v === null ? '-' : formatRps(v)) },
      { key: 'p50Ms', title: 'p50 ms', align: 'right', format: (v) => (v === null ? '-' : formatMs(v)) },
      { key: 'p99Ms', title: 'p99 ms', align: 'right', format: (v) => (v === null ? '-' : formatMs(v)) },
      { key: 'non2xx', title: 'non-2xx', align: 'right', format: (v) => String(v ?? '-') },
      { key: 'errors', title: 'socket errors', align: 'right', format: (v) => String(v ?? '-') },
    ],
    rows,
  ));
  if (latency) {
    console.log(`watch latency (put → first request served): p50 ${formatMs(latency.all.p50Ms)} ms, p99 ${formatMs(latency.all.p99Ms)} ms over ${latency.all.n} joins`
      + ` (etcd: p50 ${formatMs(latency.etcd.p50Ms)}, p99 ${formatMs(latency.etcd.p99Ms)}; API: p50 ${formatMs(latency.api.p50Ms)}, p99 ${formatMs(latency.api.p99Ms)})`);
    if (latency.errors.length) console.log(`churn errors: ${latency.errors.slice(0, 5).join('; ')}`);
  }
  const r = stat?.rps && ch?.rps ? ratio(ch.rps, stat.rps) : null;
  const checks = [
    { label: 'churn: zero non-2xx and zero socket errors', pass: ch?.status === 'ok' ? ch.non2xx === 0 && ch.errors === 0 : null, detail: ch?.status === 'ok' ? `${ch.non2xx} non-2xx, ${ch.errors} socket errors` : 'not measured' },
    { label: 'churn req/s within 10% of static', pass: r === null ? null : r >= 0.9, detail: r === null ? 'not measured' : `${formatRatio(r)}` },
    { label: 'every join served', pass: latency ? latency.errors.length === 0 : null, detail: latency ? `${latency.all.n} of ${latency.changes} joins measured` : '' },
  ];
  console.log(renderChecks(checks));
  if (opts.durationS < 10) console.log(`note: a ${opts.durationS} s run is a smoke run; the issue's figure is --duration 60`);
  const wallS = run.elapsedS();
  saveResults('churn', run, {
    ...resultHead('churn: membership changes once a second (etcd and registry API) vs a static pool', run, opts, wallS),
    ...machineAndVersions(run),
    workers: opts.workers,
    rows,
    watchLatency: latency,
    checks,
  });
}

runScenario('churn', main);
