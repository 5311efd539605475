// Slow-backend scenarios (issues 3 and 12): four uWS backends behind Sluice (every balancing policy),
// nginx least_conn and HAProxy leastconn, under the same keep-alive GET load.
//   one-slow   one backend answers every request --delay ms (40) late
//   part-time  one backend answers --delay ms late for --slow-for s (5) of every --slow-every s (15)
//   all-slow   all four answer --delay ms late (does a latency-aware policy herd onto one?)
// Two more rows run Sluice over four fast backends: the p99 baseline, and peak-ewma vs round-robin
// throughput. Each backend counts the requests it answered, so every row shows the share that went
// to the slow one; in part-time, every backend also counts what it answered inside the slow windows.
//
//   node bench/slow-backend.js [--duration 6] [--part-time-duration 30] [--warmup 1] [--connections 50]
//                              [--delay 40] [--slow-for 5] [--slow-every 15] [--workers 1]
//                              [--scenarios one-slow,part-time,all-slow] [--only sluice,nginx,haproxy,all-fast]
//                              [--balancers peak-ewma,round-robin,...] [--generator wrk|autocannon]
//
// Prints a table and the issues' targets (PASS/FAIL), writes bench/results/slow-backend-<time>.json
// and a bar chart bench/results/slow-backend-<time>.svg. See bench/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { backendCounts, freePort, startBackend, stopProcess } from './lib/procs.js';
import {
  formatMs, formatRatio, formatRps, notesColumn, p50Column, p99Column, ratio, renderTable, rpsColumn,
} from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, applyLoad, beginRun, check, loadRow, machineAndVersions, measureLoad,
  measureStarted, parseOptions, renderChecks, resultHead, rowLine, runScenario, saveResults, startFailed,
  warnIfBusy, runSummaryLine,
} from './lib/scenario.js';
import { barChartSvg } from './lib/svg.js';
import { startHaproxy, startNginx, startSluice } from './lib/targets.js';

const BALANCERS = ['peak-ewma', 'peak-ewma-classic', 'least-request', 'round-robin', 'random', 'weighted-round-robin', 'least-conn', 'ring-hash', 'maglev'];
/** Policies run in the part-time and all-slow scenarios (the others say nothing new there). */
const LATENCY_BALANCERS = ['peak-ewma', 'peak-ewma-classic', 'least-request', 'round-robin'];
const GROUPS = ['all-fast', 'sluice', 'nginx', 'haproxy'];
const SCENARIOS = ['one-slow', 'part-time', 'all-slow'];

const USAGE = `usage: node bench/slow-backend.js [options]
  --duration <s>            seconds measured per target (default 6)
  --part-time-duration <s>  seconds measured per part-time target (default 30: two 15 s cycles)
  --connections <n>         concurrent keep-alive connections (default 50)
  --delay <ms>              extra latency of a slow backend (default 40)
  --slow-for <s>            part-time: slow for this long ... (default 5)
  --slow-every <s>          ... at the start of every this many seconds (default 15)
  --workers <n>             Sluice workers / nginx workers / HAProxy threads (default 1)
  --scenarios <list>        comma-separated: ${SCENARIOS.join(', ')} (default all)
  --only <list>             comma-separated groups: ${GROUPS.join(', ')} (default all)
  --balancers <list>        Sluice policies (default all: ${BALANCERS.join(', ')});
                            part-time and all-slow run only ${LATENCY_BALANCERS.join(', ')} of them
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({
    ...COMMON_OPTIONS,
    'part-time-duration': { type: 'string' },
    delay: { type: 'string' },
    'slow-for': { type: 'string' },
    'slow-every': { type: 'string' },
    workers: { type: 'string' },
    scenarios: { type: 'string' },
    only: { type: 'string' },
    balancers: { type: 'string' },
  }, USAGE);
  const opts = {
    durationS: o.int('duration', 1, 6),
    partTimeDurationS: o.int('part-time-duration', 1, 30),
    warmupS: o.int('warmup', 0, 1),
    connections: o.int('connections', 1, 50),
    delayMs: o.int('delay', 1, 40),
    slowForS: o.int('slow-for', 1, 5),
    slowEveryS: o.int('slow-every', 1, 15),
    workers: o.int('workers', 1, 1),
    scenarios: new Set(o.list('scenarios', SCENARIOS)),
    only: new Set(o.list('only', GROUPS)),
    balancers: o.list('balancers', BALANCERS),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
  if (opts.slowForS >= opts.slowEveryS) {
    console.error('--slow-for must be shorter than --slow-every');
    o.usage(2);
  }
  return opts;
}

/** Env for Sluice in this scenario: one policy, nothing else running beside the traffic. */
const sluiceEnv = (balancer) => ({ SLUICE_BALANCER: balancer, SLUICE_HEALTH_CHECK: 'off', SLUICE_ADMIN_LISTEN: 'off' });

function plan(ctx) {
  const rows = [];
  const common = { repoRoot: REPO_ROOT, scratchDir: ctx.scratchDir };
  const sluice = (pool, balancer) => async () =>
    startSluice({ ...common, port: await freePort(), upstreams: pool.map((b) => b.url), workers: ctx.workers, env: sluiceEnv(balancer) });
  if (ctx.only.has('all-fast')) {
    for (const balancer of ['peak-ewma', 'round-robin']) {
      rows.push({ id: `all-fast:${balancer}`, scenario: 'all-fast', group: 'all-fast', target: `sluice ${balancer}`, balancer, pool: ctx.pools['all-fast'], start: sluice(ctx.pools['all-fast'], balancer) });
    }
  }
  for (const scenario of SCENARIOS) {
    if (!ctx.scenarios.has(scenario)) continue;
    const pool = ctx.pools[scenario];
    const extra = { scenario, pool, durationS: scenario === 'part-time' ? ctx.partTimeDurationS : ctx.durationS };
    if (ctx.only.has('sluice')) {
      for (const balancer of ctx.balancers) {
        if (scenario !== 'one-slow' && !LATENCY_BALANCERS.includes(balancer)) continue;
        rows.push({ ...extra, id: `${scenario}:sluice:${balancer}`, group: 'sluice', target: `sluice ${balancer}`, balancer, start: sluice(pool, balancer) });
      }
    }
    if (ctx.only.has('nginx')) {
      rows.push({
        ...extra, id: `${scenario}:nginx:least_conn`, group: 'nginx', target: 'nginx least_conn', balancer: 'least_conn',
        start: async () => startNginx({ ...common, port: await freePort(), upstreams: pool.map((b) => b.url), workers: ctx.workers, template: 'nginx-least-conn.conf.template' }),
      });
    }
    if (ctx.only.has('haproxy')) {
      rows.push({
        ...extra, id: `${scenario}:haproxy:leastconn`, group: 'haproxy', target: 'haproxy leastconn', balancer: 'leastconn',
        start: async () => startHaproxy({ ...common, port: await freePort(), upstreams: pool.map((b) => b.url), threads: ctx.workers, template: 'haproxy-leastconn.cfg.template' }),
      });
    }
  }
  return rows;
}

async function resetCounts(backends) {
  await Promise.all(backends.map((b) => backendCounts(b, { reset: true })));
}

const POOL_LABEL = {
  'all-fast': () => '4 fast',
  'one-slow': (ctx) => `1 slow (+${ctx.delayMs} ms) + 3 fast`,
  'part-time': (ctx) => `1 slow ${ctx.slowForS}/${ctx.slowEveryS} s + 3 fast`,
  'all-slow': (ctx) => `4 slow (+${ctx.delayMs} ms)`,
};

async function measureRow(t, ctx) {
  const row = loadRow({
    id: t.id, scenario: t.scenario, group: t.group, target: t.target, balancer: t.balancer, pool: POOL_LABEL[t.scenario](ctx),
  }, { perBackend: null, backendTotal: null, slowShare: null, maxShare: null, shareWhileSlow: null, shareWhileFast: null });
  const dead = ctx.allBackends.find((b) => b.handle.exitInfo);
  if (dead) {
    row.status = 'failed';
    row.reason = `backend ${dead.label} died`;
    return row;
  }
  let started;
  try {
    started = await t.start();
  } catch (err) {
    return startFailed(row, err);
  }
  return measureStarted(row, started.handle, async () => {
    applyLoad(row, await measureLoad({
      generator: ctx.generator, url: `${started.url}/`, connections: ctx.connections, durationS: t.durationS ?? ctx.durationS,
      warmupS: ctx.warmupS, waitQuietS: ctx.waitQuietS, pids: [started.handle.pid, ...ctx.allBackends.map((b) => b.handle.pid)],
      // Warm-up and readiness requests are not counted: counters restart right before the run.
      beforeRun: () => resetCounts(ctx.allBackends),
    }));
    const counts = await Promise.all(t.pool.map((b) => backendCounts(b)));
    row.perBackend = Object.fromEntries(t.pool.map((b, i) => [b.label, counts[i].count]));
    row.backendTotal = counts.reduce((a, c) => a + c.count, 0);
    if (row.backendTotal > 0) {
      const slowIndex = t.pool.findIndex((b) => b.slow);
      row.slowShare = slowIndex >= 0 ? counts[slowIndex].count / row.backendTotal : null;
      row.maxShare = Math.max(...counts.map((c) => c.count)) / row.backendTotal;
    }
    if (t.scenario === 'part-time') {
      // Inside the windows the part-time backend is slow; outside it is as fast as the others.
      const inside = counts.reduce((a, c) => a + c.inWindow, 0);
      const outside = row.backendTotal - inside;
      row.perBackendInWindow = Object.fromEntries(t.pool.map((b, i) => [b.label, counts[i].inWindow]));
      row.shareWhileSlow = inside > 0 ? counts[0].inWindow / inside : null;
      row.shareWhileFast = outside > 0 ? (counts[0].count - counts[0].inWindow) / outside : null;
    }
  });
}

const pct = (v) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);

/** The share column: to the slow backend; the largest share when all are alike; both phases in part-time. */
function shareText(r) {
  if (r.scenario === 'all-fast' || r.scenario === 'all-slow') return `(max ${pct(r.maxShare)})`;
  if (r.scenario === 'part-time') return `${pct(r.shareWhileSlow)} / ${pct(r.shareWhileFast)}`;
  return pct(r.slowShare);
}

const COLUMNS = [
  { key: 'scenario', title: 'scenario', align: 'left' },
  { key: 'target', title: 'target', align: 'left' },
  rpsColumn,
  p50Column,
  p99Column,
  { key: 'p99VsAllFast', title: 'p99 vs all-fast', align: 'right', format: formatRatio },
  { key: 'slowShare', title: 'to slow (part-time: slow / fast phase)', align: 'right', format: (v, r) => shareText(r) },
  notesColumn,
];

function checks(rows, opts) {
  const ok = (r) => r && r.status === 'ok';
  const get = (id) => rows.find((r) => r.id === id);
  const base = get('all-fast:peak-ewma');
  const rrFast = get('all-fast:round-robin');
  const out = [];
  const f = (v) => formatMs(v);
  const p99Check = (scenario) => {
    const pe = get(`${scenario}:sluice:peak-ewma`);
    out.push(check(`${scenario}: peak-ewma p99 <= 1.5x all-fast p99`, ok(pe) && ok(base),
      () => ({ pass: pe.p99Ms <= 1.5 * base.p99Ms, detail: `${f(pe.p99Ms)} ms vs 1.5 x ${f(base.p99Ms)} = ${f(1.5 * base.p99Ms)} ms (${formatRatio(ratio(pe.p99Ms, base.p99Ms))})` })));
    return pe;
  };
  if (opts.scenarios.has('one-slow')) {
    const pe = p99Check('one-slow');
    out.push(check(`one-slow: peak-ewma sends <= 0.3% to the +${opts.delayMs} ms backend`, ok(pe) && pe.slowShare !== null,
      () => ({ pass: pe.slowShare <= 0.003, detail: pct(pe.slowShare) }), 'row missing'));
    for (const [id, name] of [['one-slow:nginx:least_conn', 'nginx least_conn'], ['one-slow:haproxy:leastconn', 'haproxy leastconn']]) {
      const peer = get(id);
      out.push(check(`one-slow: peak-ewma p99 < ${name} p99`, ok(pe) && ok(peer),
        () => ({ pass: pe.p99Ms < peer.p99Ms, detail: `${f(pe.p99Ms)} vs ${f(peer.p99Ms)} ms` })));
    }
  }
  if (opts.scenarios.has('part-time')) {
    const pe = p99Check('part-time');
    out.push(check('part-time: peak-ewma sends <= 0.3% to the backend while it is slow', ok(pe) && pe.shareWhileSlow !== null,
      () => ({ pass: pe.shareWhileSlow <= 0.003, detail: pct(pe.shareWhileSlow) }), 'row missing'));
    out.push(check('part-time: peak-ewma sends it >= 20% while it is fast (traffic returns)', ok(pe) && pe.shareWhileFast !== null,
      () => ({ pass: pe.shareWhileFast >= 0.2, detail: pct(pe.shareWhileFast) }), 'row missing'));
  }
  if (opts.scenarios.has('all-slow')) {
    const pe = get('all-slow:sluice:peak-ewma');
    out.push(check('all-slow: peak-ewma does not herd (largest share <= 30%)', ok(pe) && pe.maxShare !== null,
      () => ({ pass: pe.maxShare <= 0.3, detail: `largest share ${pct(pe.maxShare)}` }), 'row missing'));
  }
  out.push(check('all fast: peak-ewma req/s >= 0.95x round-robin', ok(base) && ok(rrFast),
    () => ({ pass: base.rps >= 0.95 * rrFast.rps, detail: `${formatRps(base.rps)} vs ${formatRps(rrFast.rps)} (${formatRatio(ratio(base.rps, rrFast.rps))})` })));
  return out;
}

function chart(rows, meta) {
  const base = rows.find((r) => r.id === 'all-fast:peak-ewma');
  const label = (r) => `${r.scenario}: ${r.target}`;
  const color = (r) => (r.group === 'all-fast' ? '#9c9c9c' : r.group === 'sluice' ? (r.balancer === 'peak-ewma' ? '#f28e2b' : r.balancer === 'peak-ewma-classic' ? '#e15759' : '#4e79a7') : '#59a14f');
  const ok = rows.filter((r) => r.status === 'ok' || r.p99Ms !== null);
  // The share that matters per scenario: to the slow backend (part-time: while it is slow).
  const share = (r) => (r.scenario === 'part-time' ? r.shareWhileSlow : r.slowShare);
  return barChartSvg({
    title: `Slow backends: one of four +${meta.delayMs} ms (always / ${meta.slowForS} s of every ${meta.slowEveryS} s), or all four`,
    subtitle: `${meta.generator}, ${meta.connections} connections, ${meta.workers} worker(s); ${meta.startedAt}`,
    legend: [
      { color: '#f28e2b', label: 'Sluice peak-ewma (default)' },
      { color: '#e15759', label: 'Sluice peak-ewma-classic' },
      { color: '#4e79a7', label: 'Sluice, other policies' },
      { color: '#59a14f', label: 'nginx / HAProxy' },
      { color: '#9c9c9c', label: 'Sluice, 4 fast backends (baseline)' },
    ],
    panels: [
      {
        title: 'p99 latency (ms), lower is better',
        format: (v) => `${formatMs(v)} ms`,
        rows: rows.map((r) => ({ label: label(r), value: ok.includes(r) ? r.p99Ms : null, color: color(r), text: ok.includes(r) ? undefined : r.status })),
        refs: base && base.status === 'ok' ? [{ value: 1.5 * base.p99Ms, label: '1.5x all-fast' }] : [],
      },
      {
        title: 'share of requests answered by the slow backend (%; part-time: while slow)',
        format: (v) => `${v.toFixed(2)}%`,
        rows: rows.filter((r) => r.scenario === 'one-slow' || r.scenario === 'part-time')
          .map((r) => ({ label: label(r), value: share(r) === null ? null : share(r) * 100, color: color(r), text: share(r) === null ? r.status : undefined })),
        refs: [{ value: 0.3, label: '0.3%' }, { value: 1, label: '1%' }],
      },
      {
        title: 'all-slow: largest share of one backend (%), 25% is even',
        format: (v) => `${v.toFixed(1)}%`,
        rows: rows.filter((r) => r.scenario === 'all-slow')
          .map((r) => ({ label: label(r), value: r.maxShare === null ? null : r.maxShare * 100, color: color(r), text: r.maxShare === null ? r.status : undefined })),
        refs: [{ value: 25, label: 'even' }],
      },
    ].filter((p) => p.rows.length > 0),
  });
}

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-slow-');
  const { generator, scratchDir, startedAt } = run;

  // Every backend counts requests inside the part-time windows, on one wall clock from now.
  const window = { forMs: opts.slowForS * 1000, everyMs: opts.slowEveryS * 1000, epoch: Date.now() };
  const start = async (label, o) => ({ ...(await startBackend(BENCH_DIR, { count: true, window, ...o })), label, slow: o.slow ?? false });
  // The slow backend is listed first: a policy that breaks ties toward the first backend cannot
  // hide behind the order. fast4 stands in for it in the all-fast pool.
  const slow = await start('slow', { delayMs: opts.delayMs, slow: true });
  const fast = [];
  for (let i = 1; i <= 4; i++) fast.push(await start(`fast${i}`, {}));
  const partTime = opts.scenarios.has('part-time') ? await start('part-time', { windowDelayMs: opts.delayMs, slow: true }) : null;
  const moreSlow = [];
  if (opts.scenarios.has('all-slow')) for (let i = 2; i <= 4; i++) moreSlow.push(await start(`slow${i}`, { delayMs: opts.delayMs }));
  const pools = {
    'all-fast': [fast[3], fast[0], fast[1], fast[2]],
    'one-slow': [slow, fast[0], fast[1], fast[2]],
    'part-time': [partTime, fast[0], fast[1], fast[2]],
    'all-slow': [slow, ...moreSlow],
  };
  const allBackends = [slow, ...fast, ...(partTime ? [partTime] : []), ...moreSlow];
  const ctx = { ...opts, generator, scratchDir, pools, allBackends };
  const targets = plan(ctx);

  const estimate = targets.reduce((a, t) => a + opts.warmupS + (t.durationS ?? opts.durationS) + 0.7, 0);
  console.log(`slow-backend bench: ${targets.length} targets (${[...opts.scenarios].join(', ')}), ${opts.warmupS} s warm-up each, `
    + `${opts.connections} connections, generator ${generator.label}, slow +${opts.delayMs} ms, ${opts.workers} worker(s)`);
  console.log(`estimated ~${Math.ceil(estimate)} s`);
  const warning = warnIfBusy(run.busyBefore);
  console.log('');

  const rows = [];
  for (const t of targets) {
    process.stdout.write(`  ${`${t.scenario}: ${t.target}`.padEnd(40)} `);
    const row = await measureRow(t, ctx);
    rows.push(row);
    console.log(rowLine(row, `${formatRps(row.rps)} req/s, p99 ${formatMs(row.p99Ms)} ms, to slow ${shareText(row)}`));
  }
  await Promise.all(allBackends.map((b) => stopProcess(b.handle)));

  const base = rows.find((r) => r.id === 'all-fast:peak-ewma');
  for (const r of rows) r.p99VsAllFast = base && base.status === 'ok' && r.status === 'ok' ? ratio(r.p99Ms, base.p99Ms) : null;
  const results = checks(rows, opts);
  const wallS = run.elapsedS();
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log('targets (issues 3 and 12):');
  console.log(renderChecks(results));
  console.log(`\n${runSummaryLine(run, opts, wallS, { extra: opts.scenarios.has('part-time') ? ` (part-time: ${opts.partTimeDurationS} s)` : '' })}`);
  console.log('"to slow" counts the requests each backend answered during the measured seconds; part-time shows the slow backend\'s share of the requests answered inside its slow windows / outside them (25% is even); all-fast and all-slow show the largest share; ring-hash and maglev hash the client address, and every request here comes from 127.0.0.1');
  if (warning) console.log(`WARNING: ${warning}`);

  const meta = { delayMs: opts.delayMs, slowForS: opts.slowForS, slowEveryS: opts.slowEveryS, generator: generator.label, connections: opts.connections, workers: opts.workers, startedAt: startedAt.toISOString() };
  const file = saveResults('slow-backend', run, {
    ...resultHead(`slow backends: GET / keep-alive over 4 uWS backends (${[...opts.scenarios].join(', ')}), +${opts.delayMs} ms`, run, opts, wallS),
    workers: opts.workers,
    slowDelayMs: opts.delayMs,
    partTime: { slowForS: opts.slowForS, slowEveryS: opts.slowEveryS, partTimeDurationS: opts.partTimeDurationS },
    sluiceEnv: sluiceEnv('<policy>'),
    ...machineAndVersions(run),
    rows,
    targets: results,
  });
  const svgFile = file.replace(/\.json$/, '.svg');
  fs.writeFileSync(svgFile, chart(rows, meta));
  console.log(`chart:   ${path.relative(process.cwd(), svgFile)}`);
}

runScenario('slow-backend', main);
