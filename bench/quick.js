// Quick side-by-side benchmark (about a minute): small GET over keep-alive through Sluice and its peers,
// against one fast uWS backend. Prints a table of req/s, latency and ratios measured in this run,
// and writes the same as JSON to bench/results/quick-<time>.json.
//
//   node bench/quick.js [--duration 6] [--warmup 1] [--connections 100] [--rounds 1]
//                       [--only sluice,nginx,haproxy,http-proxy] [--generator wrk|autocannon]
//                       [--threads n]
//
// The headline figure is CPU per request: user + system time of all the target's processes and
// threads (from /proc, over the measured run) divided by the requests it served. It does not
// depend on how much of a core the target got, which req/s on a shared 2-core machine does.
// With --rounds N every target is measured N times, interleaved, and each figure is the median.
//
// See bench/README.md for what each row means.
import os from 'node:os';
import { describeExit, freePort, httpGet, lastLines, startBackend, stopProcess } from './lib/procs.js';
import {
  formatMs, formatRatio, formatRps, notesColumn, p50Column, p99Column, ratio, renderTable, rpsColumn,
} from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, REPO_ROOT, applyLoad, beginRun, loadRow, machineAndVersions, measureLoad, parseOptions,
  quietNote, resultHead, rowLine, runScenario, runSummaryLine, saveResults, startFailed, warnIfBusy,
} from './lib/scenario.js';
import { startHaproxy, startNginx, startNodeHttpProxy, startSluice } from './lib/targets.js';

const EXPECTED_BODY = 'hello, world\n';

const GROUPS = ['direct', 'sluice', 'nginx', 'haproxy', 'http-proxy'];
const GROUP_ALIASES = { 'node-http-proxy': 'http-proxy', httpproxy: 'http-proxy', node: 'http-proxy', backend: 'direct' };

const USAGE = `usage: node bench/quick.js [options]
  --duration <s>      seconds measured per target (default 6 with wrk, 5 with autocannon, whose
                      worker threads take longer to start: either way the run takes about a minute)
  --warmup <s>        unrecorded seconds before each measurement (default 1, 0 to skip)
  --connections <n>   concurrent keep-alive connections (default 100)
  --only <list>       comma-separated targets: ${GROUPS.join(', ')}
                      (the direct row is always measured: every ratio needs it)
  --generator <name>  wrk or autocannon (default: wrk when on PATH)
  --threads <n>       wrk threads (default 1) / autocannon workers (default 2)
  --rounds <n>        measure every target n times, interleaved; report medians (default 1)
  --wait-quiet <s>    before each target, wait up to <s> s for other processes to leave the CPUs
                      idle (default 0: off; useful while builds or tests run on the machine)`;

function options() {
  // --only takes aliases and always keeps the direct row; --generator is checked after it, and an
  // empty --generator= means the default.
  const o = parseOptions({ ...COMMON_OPTIONS, only: { type: 'string' }, rounds: { type: 'string' } }, USAGE, { checkGenerator: false });
  const { values, usage } = o;
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
    durationS: o.int('duration', 1, undefined),
    warmupS: o.int('warmup', 0, 1),
    connections: o.int('connections', 1, 100),
    only,
    generator: values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
    rounds: o.int('rounds', 1, 1),
  };
}

/** Everything measured, in table order. `start` resolves { handle, url, info? } or throws. */
function plan(ctx) {
  const common = { repoRoot: REPO_ROOT, scratchDir: ctx.scratchDir, upstreams: [ctx.backend.url] };
  return [
    { group: 'direct', target: 'backend direct', workers: 1, start: async () => ({ handle: null, url: ctx.backend.url }) },
    ...[1, 2].map((n) => ({
      group: 'sluice', target: 'sluice', workers: n,
      start: async () => startSluice({ ...common, port: await freePort(), workers: n }),
    })),
    // Upstream pipelining off (docs/performance.md): one request per backend connection at a time,
    // as nginx and HAProxy do, to show what the default pipelining is worth.
    {
      group: 'sluice', target: 'sluice pipeline=1', workers: 1,
      start: async () => startSluice({ ...common, port: await freePort(), workers: 1, env: { SLUICE_UPSTREAM_PIPELINE: '1' } }),
    },
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

async function measureTarget(t, ctx) {
  const row = loadRow({ group: t.group, target: t.target, workers: t.workers }, {}, { timingsMs: {} });
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
    return startFailed(row, err);
  }
  try {
    const quiet = await quietNote(ctx.waitQuietS);
    if (quiet) row.notes.push(quiet);
    if (started.firstResponse && started.firstResponse.body !== EXPECTED_BODY) {
      row.notes.push(`unexpected body ${JSON.stringify(started.firstResponse.body.slice(0, 40))}`);
    }
    // Other processes (builds, tests) on the same cores skew a row: measureLoad notes how much CPU
    // they took during the middle of the run, where the generator, backend and target are all alive.
    applyLoad(row, await measureLoad({
      generator: ctx.generator, url: `${started.url}/`, connections: ctx.connections, durationS: ctx.durationS,
      warmupS: ctx.warmupS, pids: [ctx.backend.handle.pid, started.handle?.pid],
      cpuOf: started.handle?.pid ?? ctx.backend.handle.pid,
    }));
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

const MEDIAN_FIELDS = ['rps', 'p50Ms', 'p99Ms', 'cpuUs', 'cpuUserUs', 'cpuSysUs', 'rssMb'];

/** One row per target from its rounds: each figure the median of the rounds that succeeded. */
function medianRow(rounds) {
  const ok = rounds.filter((r) => r.status === 'ok');
  if (ok.length === 0) return rounds[rounds.length - 1];
  const row = { ...ok[0], notes: [...new Set(ok.flatMap((r) => r.notes))] };
  for (const field of MEDIAN_FIELDS) {
    const values = ok.map((r) => r[field]).filter((v) => typeof v === 'number').sort((a, b) => a - b);
    row[field] = values.length === 0 ? null : values[(values.length - 1) >> 1];
  }
  if (rounds.length > 1) row.rounds = rounds.map((r) => ({ rps: r.rps, p99Ms: r.p99Ms, cpuUs: r.cpuUs, cpuUserUs: r.cpuUserUs, cpuSysUs: r.cpuSysUs, status: r.status }));
  return row;
}

function addRatios(rows) {
  const ok = (r) => r && r.status === 'ok' && Number.isFinite(r.rps);
  const direct = rows.find((r) => r.group === 'direct');
  const httpProxy = rows.find((r) => r.group === 'http-proxy');
  for (const row of rows) {
    if (!ok(row)) {
      row.vsDirect = row.vsNginx = row.vsHttpProxy = row.cpuVsNginx = row.cpuVsHaproxy = null;
      continue;
    }
    const nginx = rows.find((r) => r.group === 'nginx' && r.workers === row.workers);
    const haproxy = rows.find((r) => r.group === 'haproxy' && r.workers === row.workers);
    // CPU ratios read "how many of this target's requests cost what one of the peer's does":
    // >= 1 means this target spends no more CPU per request than the peer.
    row.cpuVsNginx = row.group !== 'direct' && ok(nginx) && nginx.cpuUs && row.cpuUs ? ratio(nginx.cpuUs, row.cpuUs) : null;
    row.cpuVsHaproxy = row.group !== 'direct' && ok(haproxy) && haproxy.cpuUs && row.cpuUs ? ratio(haproxy.cpuUs, row.cpuUs) : null;
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
  { key: 'cpuUs', title: 'CPU µs/req', align: 'right', format: (v) => (v == null ? '-' : v.toFixed(1)) },
  { key: 'cpuUserUs', title: 'user', align: 'right', format: (v) => (v == null ? '-' : v.toFixed(1)) },
  { key: 'cpuSysUs', title: 'sys', align: 'right', format: (v) => (v == null ? '-' : v.toFixed(1)) },
  { key: 'cpuVsNginx', title: 'CPU vs nginx', align: 'right', format: formatRatio },
  { key: 'cpuVsHaproxy', title: 'CPU vs haproxy', align: 'right', format: formatRatio },
  { key: 'rssMb', title: 'RSS MB', align: 'right', format: (v) => (v == null ? '-' : v.toFixed(0)) },
  rpsColumn,
  p50Column,
  p99Column,
  { key: 'vsDirect', title: 'vs direct', align: 'right', format: formatRatio },
  { key: 'vsNginx', title: 'vs nginx(same n)', align: 'right', format: formatRatio },
  { key: 'vsHttpProxy', title: 'vs http-proxy', align: 'right', format: formatRatio },
  notesColumn,
];

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-');
  const { generator, scratchDir } = run;
  opts.durationS ??= generator.name === 'wrk' ? 6 : 5;
  const loadAvg = os.loadavg();
  const backend = await startBackend(BENCH_DIR);
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
  const warning = warnIfBusy(run.busyBefore, loadAvg);
  console.log('');

  // The direct row is printed first but measured last: by then every proxy run has pushed load
  // through the backend, so it needs no warm-up of its own (which keeps the run to about a minute).
  const order = [...targets.filter((t) => t.group !== 'direct'), ...targets.filter((t) => t.group === 'direct')];
  const byTarget = new Map();
  let loaded = false;
  for (let round = 1; round <= opts.rounds; round++) {
    if (opts.rounds > 1) console.log(`round ${round} of ${opts.rounds}`);
    for (const t of order) {
      const label = `${t.target}${t.group === 'direct' ? '' : ` (${t.workers})`}`;
      process.stdout.write(`  ${label.padEnd(22)} `);
      const warmupS = t.group === 'direct' && loaded ? 0 : opts.warmupS;
      const row = await measureTarget(t, { ...ctx, warmupS });
      row.warmupS = row.status === 'ok' ? warmupS : null;
      if (row.status === 'ok') loaded = true;
      if (!byTarget.has(t)) byTarget.set(t, []);
      byTarget.get(t).push(row);
      const cpu = row.cpuUs == null ? '' : `, ${row.cpuUs.toFixed(1)} µs CPU/req (user ${row.cpuUserUs.toFixed(1)}, sys ${row.cpuSysUs.toFixed(1)})`;
      console.log(rowLine(row, `${formatRps(row.rps)} req/s, p99 ${formatMs(row.p99Ms)} ms${cpu}`));
    }
  }
  const rows = targets.map((t) => medianRow(byTarget.get(t)));
  await stopProcess(backend.handle);
  addRatios(rows);

  const wallS = run.elapsedS();
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log(runSummaryLine(run, opts, wallS));
  if (generator.name === 'autocannon') {
    console.log('note: autocannon drives far fewer req/s than wrk on the same cores; rows close to the direct row are generator-bound');
  }
  if (warning) console.log(`WARNING: ${warning}`);
  console.log('ratios compare rows of this run only; absolute req/s drift between runs on a shared 2-core machine');

  saveResults('quick', run, {
    ...resultHead('quick: GET / keep-alive, 13-byte response, one uWS backend', run, opts, wallS),
    ...machineAndVersions(run, loadAvg),
    rows,
  });
}

runScenario('quick', main);
