// Slow-backend scenario (issue 3): four uWS backends, one of them answering 40 ms later than the
// others. The same keep-alive GET load goes through Sluice with every balancing policy, through
// nginx least_conn and HAProxy leastconn; two more rows run Sluice over four fast backends (the
// baseline for p99, and peak-ewma vs round-robin throughput). Each backend counts the requests it
// answered, so every row shows the share that went to the slow one.
//
//   node bench/slow-backend.js [--duration 6] [--warmup 1] [--connections 50] [--delay 40]
//                              [--workers 1] [--only sluice,nginx,haproxy,all-fast]
//                              [--balancers peak-ewma,round-robin,...] [--generator wrk|autocannon]
//
// Prints a table and the issue's targets (PASS/FAIL), writes bench/results/slow-backend-<time>.json
// and a bar chart bench/results/slow-backend-<time>.svg. See bench/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { backendCount, freePort, startBackend, stopProcess } from './lib/procs.js';
import {
  formatMs, formatRatio, formatRps, notesColumn, p50Column, p99Column, ratio, renderTable, rpsColumn,
} from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, applyLoad, beginRun, check, loadRow, machineAndVersions, measureLoad,
  measureStarted, parseOptions, renderChecks, resultHead, rowLine, runScenario, runSummaryLine, saveResults, startFailed,
  warnIfBusy,
} from './lib/scenario.js';
import { barChartSvg } from './lib/svg.js';
import { startHaproxy, startNginx, startSluice } from './lib/targets.js';

const BALANCERS = ['peak-ewma', 'peak-ewma-classic', 'least-request', 'round-robin', 'random', 'weighted-round-robin', 'least-conn', 'ring-hash', 'maglev'];
const GROUPS = ['all-fast', 'sluice', 'nginx', 'haproxy'];

const USAGE = `usage: node bench/slow-backend.js [options]
  --duration <s>      seconds measured per target (default 6)
  --connections <n>   concurrent keep-alive connections (default 50)
  --delay <ms>        extra latency of the slow backend (default 40)
  --workers <n>       Sluice workers / nginx workers / HAProxy threads (default 1)
  --only <list>       comma-separated groups: ${GROUPS.join(', ')} (default all)
  --balancers <list>  Sluice policies for the slow-pool rows (default all: ${BALANCERS.join(', ')})
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({
    ...COMMON_OPTIONS,
    delay: { type: 'string' },
    workers: { type: 'string' },
    only: { type: 'string' },
    balancers: { type: 'string' },
  }, USAGE);
  return {
    durationS: o.int('duration', 1, 6),
    warmupS: o.int('warmup', 0, 1),
    connections: o.int('connections', 1, 50),
    delayMs: o.int('delay', 1, 40),
    workers: o.int('workers', 1, 1),
    only: new Set(o.list('only', GROUPS)),
    balancers: o.list('balancers', BALANCERS),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
}

/** Env for Sluice in this scenario: one policy, nothing else running beside the traffic. */
const sluiceEnv = (balancer) => ({ SLUICE_BALANCER: balancer, SLUICE_HEALTH_CHECK: 'off', SLUICE_ADMIN_LISTEN: 'off' });

function plan(ctx) {
  const rows = [];
  const common = { repoRoot: REPO_ROOT, scratchDir: ctx.scratchDir };
  if (ctx.only.has('all-fast')) {
    for (const balancer of ['peak-ewma', 'round-robin']) {
      rows.push({
        id: `all-fast:${balancer}`, group: 'all-fast', target: `sluice ${balancer}`, balancer, pool: ctx.fastPool,
        start: async () => startSluice({ ...common, port: await freePort(), upstreams: ctx.fastPool.map((b) => b.url), workers: ctx.workers, env: sluiceEnv(balancer) }),
      });
    }
  }
  if (ctx.only.has('sluice')) {
    for (const balancer of ctx.balancers) {
      rows.push({
        id: `sluice:${balancer}`, group: 'sluice', target: `sluice ${balancer}`, balancer, pool: ctx.slowPool,
        start: async () => startSluice({ ...common, port: await freePort(), upstreams: ctx.slowPool.map((b) => b.url), workers: ctx.workers, env: sluiceEnv(balancer) }),
      });
    }
  }
  if (ctx.only.has('nginx')) {
    rows.push({
      id: 'nginx:least_conn', group: 'nginx', target: 'nginx least_conn', balancer: 'least_conn', pool: ctx.slowPool,
      start: async () => startNginx({ ...common, port: await freePort(), upstreams: ctx.slowPool.map((b) => b.url), workers: ctx.workers, template: 'nginx-least-conn.conf.template' }),
    });
  }
  if (ctx.only.has('haproxy')) {
    rows.push({
      id: 'haproxy:leastconn', group: 'haproxy', target: 'haproxy leastconn', balancer: 'leastconn', pool: ctx.slowPool,
      start: async () => startHaproxy({ ...common, port: await freePort(), upstreams: ctx.slowPool.map((b) => b.url), threads: ctx.workers, template: 'haproxy-leastconn.cfg.template' }),
    });
  }
  return rows;
}

async function resetCounts(backends) {
  await Promise.all(backends.map((b) => backendCount(b, { reset: true })));
}

async function measureRow(t, ctx) {
  const row = loadRow({
    id: t.id, group: t.group, target: t.target, balancer: t.balancer,
    pool: t.pool === ctx.slowPool ? `1 slow (+${ctx.delayMs} ms) + 3 fast` : '4 fast',
  }, { perBackend: null, backendTotal: null, slowShare: null, maxShare: null });
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
      generator: ctx.generator, url: `${started.url}/`, connections: ctx.connections, durationS: ctx.durationS,
      warmupS: ctx.warmupS, waitQuietS: ctx.waitQuietS, pids: [started.handle.pid, ...ctx.allBackends.map((b) => b.handle.pid)],
      // Warm-up and readiness requests are not counted: counters restart right before the run.
      beforeRun: () => resetCounts(ctx.allBackends),
    }));
    const counts = await Promise.all(t.pool.map((b) => backendCount(b)));
    row.perBackend = Object.fromEntries(t.pool.map((b, i) => [b.label, counts[i]]));
    row.backendTotal = counts.reduce((a, b) => a + b, 0);
    if (row.backendTotal > 0) {
      const slowIndex = t.pool.findIndex((b) => b.slow);
      row.slowShare = slowIndex >= 0 ? counts[slowIndex] / row.backendTotal : null;
      row.maxShare = Math.max(...counts) / row.backendTotal;
    }
  });
}

const pct = (v) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);

const COLUMNS = [
  { key: 'target', title: 'target', align: 'left' },
  { key: 'pool', title: 'backends', align: 'left' },
  rpsColumn,
  p50Column,
  p99Column,
  { key: 'p99VsAllFast', title: 'p99 vs all-fast', align: 'right', format: formatRatio },
  { key: 'slowShare', title: 'to slow', align: 'right', format: (v, r) => (r.pool === '4 fast' ? `(max ${pct(r.maxShare)})` : pct(v)) },
  notesColumn,
];

function checks(rows, delayMs) {
  const ok = (r) => r && r.status === 'ok';
  const base = rows.find((r) => r.id === 'all-fast:peak-ewma');
  const rrFast = rows.find((r) => r.id === 'all-fast:round-robin');
  const pe = rows.find((r) => r.id === 'sluice:peak-ewma');
  const nginx = rows.find((r) => r.id === 'nginx:least_conn');
  const haproxy = rows.find((r) => r.id === 'haproxy:leastconn');
  const out = [];
  const f = (v) => formatMs(v);
  out.push(check('peak-ewma p99 <= 1.5x all-fast p99', ok(pe) && ok(base),
    () => ({ pass: pe.p99Ms <= 1.5 * base.p99Ms, detail: `${f(pe.p99Ms)} ms vs 1.5 x ${f(base.p99Ms)} = ${f(1.5 * base.p99Ms)} ms` })));
  out.push(check(`peak-ewma sends <= 5% to the +${delayMs} ms backend`, ok(pe) && pe.slowShare !== null,
    () => ({ pass: pe.slowShare <= 0.05, detail: pct(pe.slowShare) }), 'row missing'));
  for (const [peer, name] of [[nginx, 'nginx least_conn'], [haproxy, 'haproxy leastconn']]) {
    out.push(check(`peak-ewma p99 < ${name} p99`, ok(pe) && ok(peer),
      () => ({ pass: pe.p99Ms < peer.p99Ms, detail: `${f(pe.p99Ms)} vs ${f(peer.p99Ms)} ms` })));
  }
  out.push(check('all fast: peak-ewma req/s within 5% of round-robin', ok(base) && ok(rrFast),
    () => ({ pass: base.rps >= 0.95 * rrFast.rps, detail: `${formatRps(base.rps)} vs ${formatRps(rrFast.rps)} (${formatRatio(ratio(base.rps, rrFast.rps))})` })));
  return out;
}

function chart(rows, meta) {
  const base = rows.find((r) => r.id === 'all-fast:peak-ewma');
  const label = (r) => `${r.target}${r.group === 'all-fast' ? ' (4 fast)' : ''}`;
  const color = (r) => (r.group === 'all-fast' ? '#9c9c9c' : r.group === 'sluice' ? (r.balancer === 'peak-ewma' ? '#f28e2b' : '#4e79a7') : '#59a14f');
  const ok = rows.filter((r) => r.status === 'ok' || r.p99Ms !== null);
  return barChartSvg({
    title: `Slow backend: one of four backends answers ${meta.delayMs} ms later`,
    subtitle: `${meta.generator}, ${meta.connections} connections, ${meta.durationS} s per target, ${meta.workers} worker(s); ${meta.startedAt}`,
    legend: [
      { color: '#f28e2b', label: 'Sluice peak-ewma' },
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
        title: 'share of requests answered by the slow backend (%)',
        format: (v) => `${v.toFixed(1)}%`,
        rows: rows.filter((r) => r.group !== 'all-fast').map((r) => ({ label: label(r), value: r.slowShare === null ? null : r.slowShare * 100, color: color(r), text: r.slowShare === null ? r.status : undefined })),
        refs: [{ value: 5, label: '5%' }, { value: 25, label: 'even (25%)' }],
      },
    ],
  });
}

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-slow-');
  const { generator, scratchDir, startedAt } = run;

  // The slow backend is listed first: a policy that breaks ties toward the first backend cannot
  // hide behind the order. fast4 stands in for it in the all-fast pool.
  const slow = { ...(await startBackend(BENCH_DIR, { delayMs: opts.delayMs, count: true })), label: 'slow', slow: true };
  const fast = [];
  for (let i = 1; i <= 4; i++) fast.push({ ...(await startBackend(BENCH_DIR, { count: true })), label: `fast${i}`, slow: false });
  const slowPool = [slow, fast[0], fast[1], fast[2]];
  const fastPool = [fast[3], fast[0], fast[1], fast[2]];
  const ctx = { ...opts, generator, scratchDir, slowPool, fastPool, allBackends: [slow, ...fast] };
  const targets = plan(ctx);

  const perTarget = opts.warmupS + opts.durationS;
  console.log(`slow-backend bench: ${targets.length} targets x (${opts.warmupS} s warm-up + ${opts.durationS} s), `
    + `${opts.connections} connections, generator ${generator.label}, slow backend +${opts.delayMs} ms, ${opts.workers} worker(s)`);
  console.log(`estimated ~${Math.ceil(targets.length * (perTarget + 0.7))} s`);
  const warning = warnIfBusy(run.busyBefore);
  console.log('');

  const rows = [];
  for (const t of targets) {
    process.stdout.write(`  ${`${t.target}${t.group === 'all-fast' ? ' (4 fast)' : ''}`.padEnd(34)} `);
    const row = await measureRow(t, ctx);
    rows.push(row);
    console.log(rowLine(row, `${formatRps(row.rps)} req/s, p99 ${formatMs(row.p99Ms)} ms, to slow ${row.pool === '4 fast' ? '-' : pct(row.slowShare)}`));
  }
  await Promise.all(ctx.allBackends.map((b) => stopProcess(b.handle)));

  const base = rows.find((r) => r.id === 'all-fast:peak-ewma');
  for (const r of rows) r.p99VsAllFast = base && base.status === 'ok' && r.status === 'ok' ? ratio(r.p99Ms, base.p99Ms) : null;
  const results = checks(rows, opts.delayMs);
  const wallS = run.elapsedS();
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log('targets (issue 3):');
  console.log(renderChecks(results));
  console.log(`\n${runSummaryLine(run, opts, wallS)}`);
  console.log('"to slow" counts the requests each backend answered during the measured seconds; ring-hash and maglev hash the client address, and every request here comes from 127.0.0.1');
  if (warning) console.log(`WARNING: ${warning}`);

  const meta = { delayMs: opts.delayMs, generator: generator.label, connections: opts.connections, durationS: opts.durationS, workers: opts.workers, startedAt: startedAt.toISOString() };
  const file = saveResults('slow-backend', run, {
    ...resultHead(`slow backend: GET / keep-alive over 4 uWS backends, one +${opts.delayMs} ms`, run, opts, wallS),
    workers: opts.workers,
    slowDelayMs: opts.delayMs,
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
