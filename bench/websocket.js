// WebSocket benchmark, one run, side by side: the echo backend directly (the ceiling), Sluice and
// nginx (proxy_pass with the Upgrade headers, bench/peers/nginx-websocket.conf.template), one
// worker each ("per core").
//
// Two scenarios:
//   throughput  N clients each keeping M messages in flight: messages/s and p50/p99 per message,
//               and the proxy's own CPU time (messages per proxy CPU-second: the per-core figure
//               that the machine's other tenants disturb least), split into user and kernel µs
//               per message (Sluice's code can only change the first)
//   idle        K idle WebSockets held open through the proxy: proxy RSS growth per connection
//
//   node bench/websocket.js [--duration 5] [--warmup 1] [--clients 50] [--in-flight 10] [--size 64]
//                           [--idle 10000] [--only direct,sluice,nginx] [--workers 1] [--rounds 3]
//
// Every target is started once; the throughput runs are interleaved (direct, sluice, nginx, then
// again) --rounds times and the median of each figure is reported, so a burst of load from another
// tenant of this shared machine lands on one sample of each target rather than on one target.
// The share of the machine's CPU used by processes outside the benchmark during each sample is
// recorded too (foreign CPU).
//
// Targets (issue 14): >= 1x nginx messages/s per core, p99 <= nginx's, < 10 KiB RSS per idle
// proxied WebSocket. Prints a table of figures and ratios taken in this run and writes the same as
// JSON to bench/results/websocket-<time>.json. Ratios from one run only: the machine is shared.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, groupCpu, processGroup, startProcess, stopProcess, waitForOutput, watchForeignCpu } from './lib/procs.js';
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
  --only <list>      comma-separated: direct, sluice, nginx (default all)
  --rounds <r>       interleaved throughput samples per target, median reported (default 3)`;

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
        rounds: { type: 'string' },
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
    rounds: int('rounds', 1, 3),
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

/**
 * Run the generator as its own process (it must not share this event loop); resolve its JSON line,
 * plus the CPU seconds the proxy's process group (`pgid`, null for direct) used in the measured
 * window and the share of the machine other processes used meanwhile.
 */
async function throughput(url, o, pgid, ours) {
  const gen = startProcess('ws-load', process.execPath, [
    path.join(BENCH_DIR, 'ws-load.js'), 'echo', wsUrl(url), String(o.clients), String(o.inFlight), String(o.size), String(o.durationS), String(o.warmupS),
  ]);
  try {
    await waitForOutput(gen, /^measuring$/m, (o.warmupS + 30) * 1000);
    const foreign = watchForeignCpu([...ours, gen.pid], { startMs: 100, windowMs: o.durationS * 1000 - 200 });
    const before = pgid === null ? null : groupCpu(pgid);
    const m = await waitForOutput(gen, /^\{.*\}$/m, (o.durationS + 30) * 1000);
    const after = pgid === null ? null : groupCpu(pgid);
    const r = JSON.parse(m[0]);
    r.proxyCpuS = before && after ? after.userS + after.sysS - before.userS - before.sysS : null;
    // Split, because Sluice's own code can only change the user part; the kernel part follows
    // the socket calls, whose count per message depends on how many messages each call carries.
    r.proxyUserS = before && after ? after.userS - before.userS : null;
    r.proxySysS = before && after ? after.sysS - before.sysS : null;
    r.foreignCpu = await foreign;
    return r;
  } finally {
    await stopProcess(gen);
  }
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
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
  const started = new Map();
  try {
    for (const t of targets) {
      const row = { target: t.group, workers: t.group === 'direct' ? '-' : o.workers, status: 'ok', notes: [], samples: [] };
      rows.push(row);
      try {
        started.set(row, await t.start());
      } catch (err) {
        row.status = err instanceof SkipError ? 'skipped' : 'failed';
        row.notes.push(err.message);
      }
    }
    const ours = [processGroup(), backend.handle.pid, ...[...started.values()].map((s) => s.handle?.pid)].filter((g) => g != null);
    for (let round = 0; round < o.rounds; round++) {
      for (const [row, s] of started) {
        if (row.status !== 'ok') continue;
        try {
          const r = await throughput(s.url, o, s.handle ? s.handle.pid : null, ours);
          row.samples.push(r);
          console.error(`round ${round + 1}/${o.rounds} ${row.target}: ${formatRps(r.rate)} msg/s, p99 ${formatMs(r.p99Ms)} ms, foreign CPU ${r.foreignCpu === null ? '-' : (r.foreignCpu * 100).toFixed(0) + '%'}`);
        } catch (err) {
          row.status = 'failed';
          row.notes.push(err.message);
        }
      }
    }
    for (const [row, s] of started) {
      if (row.status !== 'ok') continue;
      row.rate = median(row.samples.map((r) => r.rate));
      row.p50Ms = median(row.samples.map((r) => r.p50Ms));
      row.p99Ms = median(row.samples.map((r) => r.p99Ms));
      row.errors = row.samples.reduce((n, r) => n + r.errors, 0);
      row.perCpuS = median(row.samples.map((r) => (r.proxyCpuS > 0 ? r.messages / r.proxyCpuS : null)));
      row.userUs = median(row.samples.map((r) => (r.proxyUserS != null && r.messages > 0 ? (r.proxyUserS * 1e6) / r.messages : null)));
      row.sysUs = median(row.samples.map((r) => (r.proxySysS != null && r.messages > 0 ? (r.proxySysS * 1e6) / r.messages : null)));
      row.foreignCpu = median(row.samples.map((r) => r.foreignCpu));
      if (o.idle > 0 && s.handle) {
        try {
          row.idle = await idleCost(s.url, s.handle.pid, o.idle);
        } catch (err) {
          row.notes.push(`idle: ${err.message}`);
        }
      }
    }
  } finally {
    for (const s of started.values()) if (s.handle) await stopProcess(s.handle);
    await stopProcess(backend.handle);
  }
  const nginx = rows.find((r) => r.target === 'nginx' && r.status === 'ok');
  const direct = rows.find((r) => r.target === 'direct' && r.status === 'ok');
  for (const r of rows) {
    r.vsNginx = ratio(r.rate, nginx?.rate);
    r.vsDirect = ratio(r.rate, direct?.rate);
    r.p99VsNginx = ratio(r.p99Ms, nginx?.p99Ms);
    r.perCpuVsNginx = ratio(r.perCpuS, nginx?.perCpuS);
  }
  console.log(
    `WebSocket echo: ${o.clients} clients x ${o.inFlight} in flight, ${o.size} B messages, ${o.durationS} s measured, median of ${o.rounds} interleaved rounds; idle: ${o.idle} WebSockets`,
  );
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
        { key: 'perCpuS', title: 'msg/proxy CPU-s', align: 'right', format: formatRps },
        { key: 'perCpuVsNginx', title: 'per CPU vs nginx', align: 'right', format: formatRatio },
        { key: 'userUs', title: 'user/sys µs per msg', align: 'right', format: (v, r) => (v == null ? '-' : `${v.toFixed(2)}/${r.sysUs.toFixed(2)}`) },
        { key: 'foreignCpu', title: 'foreign CPU', align: 'right', format: (v) => (v == null ? '-' : `${(v * 100).toFixed(0)}%`) },
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
