// WebSocket benchmark, one run, side by side: the echo backend directly (the ceiling), Sluice and
// nginx (proxy_pass with the Upgrade headers, bench/peers/nginx-websocket.conf.template), one
// worker each ("per core").
//
// Two scenarios:
//   throughput  N clients each keeping M messages in flight: messages/s and p50/p99 per message
//   idle        K idle WebSockets held open through the proxy: proxy RSS growth per connection
//
//   node bench/websocket.js [--duration 5] [--warmup 1] [--clients 50] [--in-flight 10] [--size 64]
//                           [--idle 10000] [--only direct,sluice,nginx] [--workers 1]
//
// Targets (issue 14): >= 1x nginx messages/s per core, p99 <= nginx's, < 10 KiB RSS per idle
// proxied WebSocket. Prints a table of figures and ratios taken in this run and writes the same as
// JSON to bench/results/websocket-<time>.json. Ratios from one run only: the machine is shared.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, processGroup, startProcess, stopProcess, waitForOutput } from './lib/procs.js';
import { formatMs, formatRatio, formatRps, ratio, renderTable, writeResults } from './lib/report.js';
import { BENCH_DIR, REPO_ROOT } from './lib/scenario.js';
import { SkipError, startNginx, startSluice } from './lib/targets.js';

const USAGE = `usage: node bench/websocket.js [options]
  --duration <s>     measured seconds per target (default 5)
  --warmup <s>       unmeasured seconds of load before each measurement (default 1)
  --clients <n>      WebSocket clients (default 50)
  --in-flight <m>    messages each client keeps in flight (default 10)
  --size <bytes>     message size, at least 8 (default 64)
  --idle <k>         idle WebSockets for the memory scenario, 0 to skip (default 10000)
  --workers <n>      Sluice workers and nginx worker processes (default 1)
  --only <list>      comma-separated: direct, sluice, nginx (default all)`;

const GROUPS = ['direct', 'sluice', 'nginx'];

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        clients: { type: 'string' },
        'in-flight': { type: 'string' },
        size: { type: 'string' },
        idle: { type: 'string' },
        workers: { type: 'string' },
        only: { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    console.error(err.message);
    console.error(USAGE);
    process.exit(2);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name, min, dflt) => {
    if (parsed[name] === undefined) return dflt;
    const n = Number(parsed[name]);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name}: expected an integer >= ${min}, got ${parsed[name]}`);
      process.exit(2);
    }
    return n;
  };
  const only = new Set(parsed.only ? parsed.only.split(',').map((s) => s.trim()) : GROUPS);
  for (const g of only) if (!GROUPS.includes(g)) (console.error(`--only: unknown target ${g}`), process.exit(2));
  return {
    durationS: int('duration', 1, 5),
    warmupS: int('warmup', 0, 1),
    clients: int('clients', 1, 50),
    inFlight: int('in-flight', 1, 10),
    size: int('size', 8, 64),
    idle: int('idle', 0, 10_000),
    workers: int('workers', 1, 1),
    only,
  };
}

/** Resident memory of every process in the group `pgid` leads (nginx master + workers; Sluice is one process). */
function groupRssBytes(pgid) {
  let kib = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    try {
      if (processGroup(Number(name)) !== pgid) continue;
      const m = fs.readFileSync(`/proc/${name}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      if (m) kib += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kib * 1024;
}

async function startEcho() {
  const handle = startProcess('ws-backend', process.execPath, [path.join(BENCH_DIR, 'ws-echo-backend.js'), '0']);
  const m = await waitForOutput(handle, /ws backend ready port=(\d+)/);
  return { handle, url: `http://127.0.0.1:${m[1]}` };
}

function wsUrl(httpUrl) {
  return httpUrl.replace(/^http/, 'ws') + '/bench';
}

/** Run the generator as its own process (it must not share this event loop); resolve its JSON line. */
async function throughput(url, o) {
  const gen = startProcess('ws-load', process.execPath, [
    path.join(BENCH_DIR, 'ws-load.js'), 'echo', wsUrl(url), String(o.clients), String(o.inFlight), String(o.size), String(o.durationS), String(o.warmupS),
  ]);
  const m = await waitForOutput(gen, /^\{.*\}$/m, (o.durationS + o.warmupS + 30) * 1000);
  await stopProcess(gen);
  return JSON.parse(m[0]);
}

/** Open `count` idle WebSockets through `url`; resolve RSS growth of the proxy group per connection. */
async function idleCost(url, pgid, count) {
  const before = groupRssBytes(pgid);
  const gen = startProcess('ws-idle', process.execPath, [path.join(BENCH_DIR, 'ws-load.js'), 'idle', wsUrl(url), String(count)]);
  try {
    const m = await waitForOutput(gen, /idle ready (\d+) failed=(\d+)/, 120_000);
    // Let allocations settle (a quiet moment, not a measurement window).
    await new Promise((r) => setTimeout(r, 500));
    const after = groupRssBytes(pgid);
    const opened = Number(m[1]);
    return { opened, failed: Number(m[2]), rssBefore: before, rssAfter: after, bytesPerConnection: opened > 0 ? (after - before) / opened : null };
  } finally {
    await stopProcess(gen);
  }
}

async function main() {
  const o = options();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-ws-'));
  const backend = await startEcho();
  const rows = [];
  const targets = [
    { group: 'direct', start: async () => ({ handle: null, url: backend.url }) },
    {
      group: 'sluice',
      start: async () =>
        startSluice({
          repoRoot: REPO_ROOT, port: await freePort(), upstreams: [backend.url], workers: o.workers,
          env: { SLUICE_ADMIN_LISTEN: 'off', SLUICE_HEALTH_CHECK: 'off' },
        }),
    },
    {
      group: 'nginx',
      start: async () =>
        startNginx({
          repoRoot: REPO_ROOT, scratchDir: scratch, port: await freePort(), upstreams: [backend.url], workers: o.workers,
          template: 'nginx-websocket.conf.template',
        }),
    },
  ].filter((t) => o.only.has(t.group));
  try {
    for (const t of targets) {
      const row = { target: t.group, workers: t.group === 'direct' ? '-' : o.workers, status: 'ok', notes: [] };
      rows.push(row);
      let started;
      try {
        started = await t.start();
      } catch (err) {
        row.status = err instanceof SkipError ? 'skipped' : 'failed';
        row.notes.push(err.message);
        continue;
      }
      try {
        Object.assign(row, await throughput(started.url, o));
        if (o.idle > 0 && started.handle) row.idle = await idleCost(started.url, started.handle.pid, o.idle);
      } catch (err) {
        row.status = 'failed';
        row.notes.push(err.message);
      } finally {
        if (started.handle) await stopProcess(started.handle);
      }
    }
  } finally {
    await stopProcess(backend.handle);
  }
  const nginx = rows.find((r) => r.target === 'nginx' && r.status === 'ok');
  const direct = rows.find((r) => r.target === 'direct' && r.status === 'ok');
  for (const r of rows) {
    r.vsNginx = ratio(r.rate, nginx?.rate);
    r.vsDirect = ratio(r.rate, direct?.rate);
    r.p99VsNginx = ratio(r.p99Ms, nginx?.p99Ms);
  }
  console.log(`WebSocket echo: ${o.clients} clients x ${o.inFlight} in flight, ${o.size} B messages, ${o.durationS} s measured; idle: ${o.idle} WebSockets`);
  console.log(
    renderTable(
      [
        { key: 'target', title: 'target', align: 'left' },
        { key: 'workers', title: 'workers', align: 'right' },
        { key: 'rate', title: 'msg/s', align: 'right', format: formatRps },
        { key: 'p50Ms', title: 'p50 ms', align: 'right', format: formatMs },
        { key: 'p99Ms', title: 'p99 ms', align: 'right', format: formatMs },
        { key: 'vsNginx', title: 'vs nginx', align: 'right', format: formatRatio },
        { key: 'p99VsNginx', title: 'p99 vs nginx', align: 'right', format: formatRatio },
        { key: 'vsDirect', title: 'vs direct', align: 'right', format: formatRatio },
        { key: 'idle', title: 'KiB/idle ws', align: 'right', format: (v) => (v?.bytesPerConnection == null ? '-' : (v.bytesPerConnection / 1024).toFixed(1)) },
        { key: 'notes', title: 'notes', align: 'left', format: (v, r) => [r.status === 'ok' ? null : r.status, ...v].filter(Boolean).join('; ') },
      ],
      rows,
    ),
  );
  const file = writeResults(path.join(BENCH_DIR, 'results'), 'websocket', { options: { ...o, only: [...o.only] }, loadavg: os.loadavg(), rows });
  console.log(`results: ${path.relative(REPO_ROOT, file)}`);
  fs.rmSync(scratch, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
