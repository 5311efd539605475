// Quick side-by-side benchmark (≤ 60 s): small GET over keep-alive through Sluice and its peers,
// against one fast uWS backend. Prints a table of req/s, latency and ratios measured in this run,
// and writes the same as JSON to bench/results/quick-<time>.json.
//
//   node bench/quick.js [--duration 6] [--warmup 1] [--connections 100]
//                       [--only sluice,nginx,haproxy,http-proxy] [--generator wrk|autocannon]
//                       [--threads n]
//
// See bench/README.md for what each row means.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chooseGenerator, runLoad, warmUp } from './lib/load.js';
import {
  commandOutput, describeExit, freePort, httpGet, killAll, lastLines, processGroup, sampleCpuBusy, startBackend, stopProcess,
  watchForeignCpu, which,
} from './lib/procs.js';
import { formatMs, formatRatio, formatRps, ratio, renderTable, writeResults } from './lib/report.js';
import { SkipError, startHaproxy, startNginx, startNodeHttpProxy, startSluice } from './lib/targets.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');
const EXPECTED_BODY = 'hello, world\n';

const GROUPS = ['direct', 'sluice', 'nginx', 'haproxy', 'http-proxy'];
const GROUP_ALIASES = { 'node-http-proxy': 'http-proxy', httpproxy: 'http-proxy', node: 'http-proxy', backend: 'direct' };

function usage(code) {
  console.log(`usage: node bench/quick.js [options]
  --duration <s>      seconds measured per target (default 6 with wrk, 5 with autocannon, whose
                      worker threads take longer to start: either way the run stays under 60 s)
  --warmup <s>        unrecorded seconds before each measurement (default 1, 0 to skip)
  --connections <n>   concurrent keep-alive connections (default 100)
  --only <list>       comma-separated targets: ${GROUPS.join(', ')}
                      (the direct row is always measured: every ratio needs it)
  --generator <name>  wrk or autocannon (default: wrk when on PATH)
  --threads <n>       wrk threads (default 1) / autocannon workers (default 2)
  --wait-quiet <s>    before each target, wait up to <s> s for other processes to leave the CPUs
                      idle (default 0: off; useful while builds or tests run on the machine)`);
  process.exit(code);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string', default: '1' },
        connections: { type: 'string', default: '100' },
        only: { type: 'string' },
        generator: { type: 'string' },
        threads: { type: 'string' },
        'wait-quiet': { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(err.message);
    usage(2);
  }
  if (values.help) usage(0);
  const int = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}`);
      usage(2);
    }
    return n;
  };
  const only = new Set(['direct']);
  if (values.only) {
    for (const raw of values.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
      const g = GROUP_ALIASES[raw] ?? raw;
      if (!GROUPS.includes(g)) {
        console.error(`--only: unknown target "${raw}" (known: ${GROUPS.join(', ')})`);
        usage(2);
      }
      only.add(g);
    }
  } else {
    for (const g of GROUPS) only.add(g);
  }
  if (values.generator && !['wrk', 'autocannon'].includes(values.generator)) {
    console.error('--generator must be wrk or autocannon');
    usage(2);
  }
  return {
    durationS: values.duration === undefined ? undefined : int('duration', 1),
    warmupS: int('warmup', 0),
    connections: int('connections', 1),
    only,
    generator: values.generator,
    threads: values.threads === undefined ? undefined : int('threads', 1),
    waitQuietS: int('wait-quiet', 0),
  };
}

/** Everything measured, in table order. `start` resolves { handle, url, info? } or throws. */
function plan(ctx) {
  const common = { repoRoot, scratchDir: ctx.scratchDir, upstreams: [ctx.backend.url] };
  return [
    { group: 'direct', target: 'backend direct', workers: 1, start: async () => ({ handle: null, url: ctx.backend.url }) },
    ...[1, 2].map((n) => ({
      group: 'sluice', target: 'sluice', workers: n,
      start: async () => startSluice({ ...common, port: await freePort(), workers: n }),
    })),
    ...[1, 2].map((n) => ({
      group: 'nginx', target: 'nginx', workers: n,
      start: async () => startNginx({ ...common, port: await freePort(), workers: n }),
    })),
    ...[1, 2].map((n) => ({
      group: 'haproxy', target: 'haproxy', workers: n,
      start: async () => startHaproxy({ ...common, port: await freePort(), threads: n }),
    })),
    {
      group: 'http-proxy', target: 'node http-proxy', workers: 1,
      start: async () => startNodeHttpProxy({ ...common, port: await freePort() }),
    },
  ].filter((t) => ctx.only.has(t.group));
}

function loadNotes(result) {
  const notes = [];
  if (result.non2xx > 0) notes.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) notes.push(`${result.errors} socket errors`);
  return notes;
}

async function measureTarget(t, ctx) {
  const row = {
    group: t.group, target: t.target, workers: t.workers,
    status: 'ok', reason: null, rps: null, p50Ms: null, p99Ms: null, requests: null, non2xx: null, errors: null,
    otherCpu: null, notes: [], timingsMs: {},
  };
  if (ctx.backend.handle.exitInfo) {
    row.status = 'failed';
    row.reason = `backend died (${lastLines(ctx.backend.handle.output(), 2)})`;
    return row;
  }
  let started;
  let mark = Date.now();
  try {
    started = await t.start();
    row.timingsMs.start = Date.now() - mark;
  } catch (err) {
    row.status = err instanceof SkipError ? 'skipped' : 'failed';
    row.reason = err.message;
    return row;
  }
  try {
    if (ctx.waitQuietS > 0) {
      const waited = await waitQuiet(ctx.waitQuietS);
      if (!waited.quiet) row.notes.push(`machine still ${(waited.busy * 100).toFixed(0)}% busy after waiting ${ctx.waitQuietS} s`);
    }
    if (started.firstResponse && started.firstResponse.body !== EXPECTED_BODY) {
      row.notes.push(`unexpected body ${JSON.stringify(started.firstResponse.body.slice(0, 40))}`);
    }
    await warmUp(ctx.generator, { url: `${started.url}/`, connections: ctx.connections, durationS: ctx.warmupS });
    // Other processes (builds, tests) on the same cores skew a row: measure how much CPU they took
    // during the middle of the run, where the generator, backend and target are all alive.
    const groups = [processGroup(), ctx.backend.handle.pid, started.handle?.pid];
    const foreign = watchForeignCpu(groups, { startMs: 500, windowMs: Math.max(100, ctx.durationS * 1000 - 1000) });
    const r = await runLoad(ctx.generator, { url: `${started.url}/`, connections: ctx.connections, durationS: ctx.durationS });
    Object.assign(row, { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, non2xx: r.non2xx, errors: r.errors });
    row.otherCpu = await foreign;
    row.notes.push(...loadNotes(r));
    if (row.otherCpu !== null && row.otherCpu > 0.1) {
      row.notes.push(`other processes used ${(row.otherCpu * 100).toFixed(0)}% of the CPUs meanwhile`);
    }
    if (started.handle?.exitInfo) {
      // Numbers stay in the JSON, but a target that died mid-run gets no ratios.
      row.status = 'failed';
      row.reason = `${describeExit(started.handle)} during the run`;
    }
  } catch (err) {
    row.status = 'failed';
    row.reason = err.message;
  } finally {
    if (started.handle) {
      mark = Date.now();
      const stopped = await stopProcess(started.handle, { signal: 'SIGTERM', timeoutMs: 5000 });
      row.timingsMs.stop = Date.now() - mark;
      if (stopped.forced) row.notes.push('did not exit within 5 s of SIGTERM (killed)');
      else if (t.group === 'sluice' && stopped.code !== 0 && stopped.code !== null) row.notes.push(`exit code ${stopped.code} after SIGTERM`);
    }
  }
  return row;
}

function addRatios(rows) {
  const ok = (r) => r && r.status === 'ok' && Number.isFinite(r.rps);
  const direct = rows.find((r) => r.group === 'direct');
  const httpProxy = rows.find((r) => r.group === 'http-proxy');
  for (const row of rows) {
    if (!ok(row)) {
      row.vsDirect = row.vsNginx = row.vsHttpProxy = null;
      continue;
    }
    const nginx = rows.find((r) => r.group === 'nginx' && r.workers === row.workers);
    row.vsDirect = ok(direct) ? ratio(row.rps, direct.rps) : null;
    row.vsNginx = row.group !== 'direct' && ok(nginx) ? ratio(row.rps, nginx.rps) : null;
    row.vsHttpProxy = ok(httpProxy) ? ratio(row.rps, httpProxy.rps) : null;
    if (row.group !== 'direct' && row.vsDirect !== null && row.vsDirect >= 0.8) {
      row.notes.push('near the direct ceiling: bound by the generator/CPUs, not necessarily by the target');
    }
  }
}

const COLUMNS = [
  { key: 'target', title: 'target', align: 'left' },
  { key: 'workers', title: 'workers', align: 'right', format: (v, r) => (r.group === 'direct' ? '-' : String(v)) },
  { key: 'rps', title: 'req/s', align: 'right', format: (v) => (v === null ? '-' : formatRps(v)) },
  { key: 'p50Ms', title: 'p50 ms', align: 'right', format: (v) => (v === null ? '-' : formatMs(v)) },
  { key: 'p99Ms', title: 'p99 ms', align: 'right', format: (v) => (v === null ? '-' : formatMs(v)) },
  { key: 'vsDirect', title: 'vs direct', align: 'right', format: formatRatio },
  { key: 'vsNginx', title: 'vs nginx(same n)', align: 'right', format: formatRatio },
  { key: 'vsHttpProxy', title: 'vs http-proxy', align: 'right', format: formatRatio },
  {
    key: 'notes', title: 'notes', align: 'left',
    format: (v, r) => [r.status === 'ok' ? null : `${r.status}: ${r.reason}`, ...v].filter(Boolean).join('; '),
  },
];

/** Before the warm-up only idle processes are ours (backend, target), so CPU use now is someone else's. */
async function waitQuiet(limitS) {
  const until = Date.now() + limitS * 1000;
  let busy = await sampleCpuBusy(250);
  while (busy > 0.15 && Date.now() < until) busy = await sampleCpuBusy(250);
  return { quiet: busy <= 0.15, busy };
}

async function versions() {
  const first = (s) => (s ? s.split('\n')[0] : null);
  const [nginx, haproxy, wrk] = await Promise.all([
    which('nginx') ? commandOutput('nginx', ['-v']) : null,
    which('haproxy') ? commandOutput('haproxy', ['-v']) : null,
    which('wrk') ? commandOutput('wrk', ['-v']) : null,
  ]);
  return { node: process.version, nginx: first(nginx), haproxy: first(haproxy), wrk: first(wrk) };
}

async function main() {
  const opts = parseOptions();
  const t0 = Date.now();
  const startedAt = new Date();
  const generator = chooseGenerator({ prefer: opts.generator, threads: opts.threads });
  opts.durationS ??= generator.name === 'wrk' ? 6 : 5;
  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  process.on('exit', () => fs.rmSync(scratchDir, { recursive: true, force: true }));

  const [versionInfo, busyBefore] = await Promise.all([versions(), sampleCpuBusy(300)]);
  const loadAvg = os.loadavg();
  const backend = await startBackend(benchDir);
  const probe = await httpGet(`${backend.url}/`);
  if (probe.status !== 200 || probe.body !== EXPECTED_BODY) {
    throw new Error(`backend answered ${probe.status} ${JSON.stringify(probe.body)}`);
  }

  const ctx = { ...opts, generator, scratchDir, backend };
  const targets = plan(ctx);
  const perTarget = opts.warmupS + opts.durationS;
  console.log(`quick bench: ${targets.length} targets x (${opts.warmupS} s warm-up + ${opts.durationS} s), `
    + `${opts.connections} connections, generator ${generator.label}, ${os.cpus().length} CPUs`);
  const estimate = targets.length * perTarget - (targets.length > 1 ? opts.warmupS : 0) + 3;
  console.log(`estimated ~${Math.ceil(estimate)} s; load generator, backend and target share the CPUs`);
  const busyWarning = busyBefore > 0.15
    ? `other processes kept ${(busyBefore * 100).toFixed(0)}% of the CPUs busy just before the run (load average ${loadAvg[0].toFixed(2)}): numbers will be low and noisy`
    : null;
  if (busyWarning) console.log(`WARNING: ${busyWarning}`);
  console.log('');

  // The direct row is printed first but measured last: by then every proxy run has pushed load
  // through the backend, so it needs no warm-up of its own (which keeps the run under a minute).
  const order = [...targets.filter((t) => t.group !== 'direct'), ...targets.filter((t) => t.group === 'direct')];
  const byTarget = new Map();
  let loaded = false;
  for (const t of order) {
    const label = `${t.target}${t.group === 'direct' ? '' : ` (${t.workers})`}`;
    process.stdout.write(`  ${label.padEnd(22)} `);
    const warmupS = t.group === 'direct' && loaded ? 0 : opts.warmupS;
    const row = await measureTarget(t, { ...ctx, warmupS });
    row.warmupS = row.status === 'ok' ? warmupS : null;
    if (row.status === 'ok') loaded = true;
    byTarget.set(t, row);
    console.log(row.status === 'ok'
      ? `${formatRps(row.rps)} req/s, p99 ${formatMs(row.p99Ms)} ms${row.notes.length ? ` (${row.notes.join('; ')})` : ''}`
      : `${row.status}: ${row.reason}`);
  }
  const rows = targets.map((t) => byTarget.get(t));
  await stopProcess(backend.handle);
  addRatios(rows);

  const wallS = (Date.now() - t0) / 1000;
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log(`generator: ${generator.label}, -c ${opts.connections}, ${opts.durationS} s per target after ${opts.warmupS} s warm-up; `
    + `wall time ${wallS.toFixed(1)} s`);
  if (generator.name === 'autocannon') {
    console.log('note: autocannon drives far fewer req/s than wrk on the same cores; rows close to the direct row are generator-bound');
  }
  if (busyWarning) console.log(`WARNING: ${busyWarning}`);
  console.log('ratios compare rows of this run only; absolute req/s drift between runs on a shared 2-core machine');

  const file = writeResults(path.join(benchDir, 'results'), 'quick', {
    scenario: 'quick: GET / keep-alive, 13-byte response, one uWS backend',
    startedAt: startedAt.toISOString(),
    wallSeconds: wallS,
    generator: { name: generator.name, threads: generator.threads, label: generator.label },
    connections: opts.connections,
    durationSeconds: opts.durationS,
    warmupSeconds: opts.warmupS,
    machine: {
      cpus: os.cpus().length,
      cpuBusyBeforeRun: Number(busyBefore.toFixed(3)),
      loadAverage: loadAvg.map((v) => Number(v.toFixed(2))),
      cpuModel: os.cpus()[0]?.model ?? null,
      platform: `${os.platform()} ${os.release()}`,
    },
    versions: versionInfo,
    rows,
  }, startedAt);
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}

main().catch((err) => {
  console.error(`quick bench failed: ${err.stack ?? err.message}`);
  killAll();
  process.exitCode = 1;
});
