// Killed-backend scenario (issue 4): three uWS backends under steady keep-alive GET load; one is
// killed with SIGKILL a few seconds in and started again on the same port a few seconds later.
// Runs through Sluice (active health checks every 500 ms, one retry), nginx (passive failure
// detection, next upstream on error) and HAProxy (checks every 500 ms, one retry, redispatch), each
// with fresh backends. Every failed request is counted: non-2xx answers and socket errors as the
// load generator sees them.
//
//   node bench/killed-backend.js [--duration 10] [--kill-at 3] [--restart-at 7] [--connections 50]
//                                [--workers 1] [--only sluice,nginx,haproxy] [--generator wrk|autocannon]
//
// Prints a table and the issue's target, writes bench/results/killed-backend-<time>.json.
import { runLoad, warmUp } from './lib/load.js';
import {
  backendCount, freePort, processGroup, sleep, startBackend, stopProcess, watchForeignCpu,
} from './lib/procs.js';
import { formatMs, notesColumn, p99Column, renderTable, rpsColumn, valueColumn } from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, beginRun, check, loadRow, machineAndVersions, measureStarted,
  parseOptions, quietNote, renderChecks, resultHead, rowLine, runScenario, runSummaryLine, saveResults, startFailed, warnIfBusy,
} from './lib/scenario.js';
import { startHaproxy, startNginx, startSluice } from './lib/targets.js';
const GROUPS = ['sluice', 'nginx', 'haproxy'];
const SAMPLE_MS = 500;

const SLUICE_ENV = {
  SLUICE_HEALTH_CHECK: 'on',
  SLUICE_HEALTH_INTERVAL_MS: '500',
  SLUICE_RETRIES: '1',
  SLUICE_ADMIN_LISTEN: 'off',
};
const NGINX_SERVER_OPTIONS = 'max_fails=1 fail_timeout=5s';
const HAPROXY_SERVER_OPTIONS = 'check inter 500 fall 2 rise 2';

const USAGE = `usage: node bench/killed-backend.js [options]
  --duration <s>      seconds of measured load per target (default 10)
  --kill-at <s>       SIGKILL the victim backend this long into the run (default 3)
  --restart-at <s>    start it again on the same port this long into the run (default 7)
  --connections <n>   concurrent keep-alive connections (default 50)
  --workers <n>       Sluice workers / nginx workers / HAProxy threads (default 1)
  --only <list>       comma-separated targets: ${GROUPS.join(', ')} (default all)
  --sluice-env <list> extra or overriding SLUICE_* settings for the Sluice row, comma-separated
                      NAME=VALUE (e.g. SLUICE_OUTLIER_BASE_EJECTION_MS=2000)
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({
    ...COMMON_OPTIONS,
    'kill-at': { type: 'string' },
    'restart-at': { type: 'string' },
    workers: { type: 'string' },
    only: { type: 'string' },
    'sluice-env': { type: 'string' },
  }, USAGE);
  const sluiceEnv = { ...SLUICE_ENV };
  for (const item of (o.values['sluice-env'] ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(SLUICE_[A-Z0-9_]+)=(.*)$/.exec(item);
    if (!m) {
      console.error(`--sluice-env: expected SLUICE_NAME=VALUE, got "${item}"`);
      o.usage(2);
    }
    sluiceEnv[m[1]] = m[2];
  }
  const opts = {
    sluiceEnv,
    durationS: o.int('duration', 1, 10),
    warmupS: o.int('warmup', 0, 1),
    killAtS: o.num('kill-at', 0, 3),
    restartAtS: o.num('restart-at', 0, 7),
    connections: o.int('connections', 1, 50),
    workers: o.int('workers', 1, 1),
    only: o.list('only', GROUPS),
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
  if (!(opts.killAtS < opts.restartAtS && opts.restartAtS < opts.durationS)) {
    console.error('need --kill-at < --restart-at < --duration');
    o.usage(2);
  }
  return opts;
}

function plan(ctx) {
  const common = { repoRoot: REPO_ROOT, scratchDir: ctx.scratchDir };
  const all = {
    sluice: {
      target: 'sluice',
      config: Object.entries(ctx.sluiceEnv).filter(([k]) => k !== 'SLUICE_ADMIN_LISTEN').map(([k, v]) => `${k}=${v}`).join(' '),
      start: async (urls) => startSluice({ ...common, port: await freePort(), upstreams: urls, workers: ctx.workers, env: ctx.sluiceEnv }),
    },
    nginx: {
      target: 'nginx', config: `${NGINX_SERVER_OPTIONS}, proxy_next_upstream error timeout`,
      start: async (urls) => startNginx({
        ...common, port: await freePort(), upstreams: urls, workers: ctx.workers,
        template: 'nginx-failover.conf.template', serverOptions: NGINX_SERVER_OPTIONS,
      }),
    },
    haproxy: {
      target: 'haproxy', config: `${HAPROXY_SERVER_OPTIONS}, retries 1, option redispatch`,
      start: async (urls) => startHaproxy({
        ...common, port: await freePort(), upstreams: urls, threads: ctx.workers,
        template: 'haproxy-failover.cfg.template', serverOptions: HAPROXY_SERVER_OPTIONS,
      }),
    },
  };
  return ctx.only.map((g) => ({ group: g, ...all[g] }));
}

/**
 * Backends on fixed free ports: a backend that listened on port 0 cannot be started again on its
 * port while its closed connections sit in TIME_WAIT (uSockets appears to set SO_REUSEADDR only
 * for an explicit port); one started on an explicit port can.
 */
async function startBackends(n) {
  const out = [];
  for (let i = 1; i <= n; i++) out.push({ ...(await startBackend(BENCH_DIR, { port: await freePort(), count: true })), label: `b${i}` });
  return out;
}

/** Start a backend on `port` again, retrying while the port is still held. */
async function restartBackend(port, label) {
  const until = Date.now() + 5000;
  let lastErr;
  while (Date.now() < until) {
    try {
      return { ...(await startBackend(BENCH_DIR, { port, count: true })), label };
    } catch (err) {
      lastErr = err;
      await sleep(100);
    }
  }
  throw lastErr;
}

async function countOrNull(b) {
  if (!b || b.handle.exitInfo) return null;
  try { return await backendCount(b); } catch { return null; }
}

async function measureTarget(t, ctx) {
  const row = loadRow({ group: t.group, target: t.target, workers: ctx.workers, config: t.config }, {
    socketErrors: null, lost: null, killedAtS: null, restartedAtS: null, servedAfterRestart: null,
    perBackend: null, timeline: [],
  });
  const backends = await startBackends(3);
  const victimIndex = 1;
  let started;
  try {
    started = await t.start(backends.map((b) => b.url));
  } catch (err) {
    await Promise.all(backends.map((b) => stopProcess(b.handle)));
    return startFailed(row, err);
  }
  const timers = [];
  let sampler = null;
  await measureStarted(row, started.handle, async () => {
    const quiet = await quietNote(ctx.waitQuietS);
    if (quiet) row.notes.push(quiet);
    const url = `${started.url}/`;
    // The warm-up also lets Sluice's first health checks pass for all three backends.
    await warmUp(ctx.generator, { url, connections: ctx.connections, durationS: ctx.warmupS });
    await Promise.all(backends.map((b) => backendCount(b, { reset: true })));

    const pids = [processGroup(), started.handle.pid, ...backends.map((b) => b.handle.pid)];
    const foreign = watchForeignCpu(pids, { startMs: 500, windowMs: Math.max(100, ctx.killAtS * 1000 - 600) });
    const t0 = Date.now();
    const since = () => (Date.now() - t0) / 1000;
    const load = runLoad(ctx.generator, { url, connections: ctx.connections, durationS: ctx.durationS });

    // Requests answered by each backend, sampled every SAMPLE_MS (cumulative; null while down).
    sampler = setInterval(async () => {
      const at = Number(since().toFixed(2));
      const counts = await Promise.all(backends.map(countOrNull));
      row.timeline.push({ t: at, counts });
    }, SAMPLE_MS);

    const killed = new Promise((resolve) => {
      timers.push(setTimeout(async () => {
        const victim = backends[victimIndex];
        victim.handle.child.kill('SIGKILL');
        row.killedAtS = Number(since().toFixed(2));
        await victim.handle.exited;
        resolve();
      }, ctx.killAtS * 1000));
    });
    const restarted = new Promise((resolve, reject) => {
      timers.push(setTimeout(async () => {
        await killed;
        try {
          const old = backends[victimIndex];
          backends[victimIndex] = await restartBackend(old.port, old.label);
          row.restartedAtS = Number(since().toFixed(2));
          resolve();
        } catch (err) {
          reject(err);
        }
      }, ctx.restartAtS * 1000));
    });

    const r = await load;
    row.otherCpu = await foreign;
    await restarted.catch((err) => { row.notes.push(`restart failed: ${err.message}`); });
    clearInterval(sampler);
    sampler = null;
    // Samples are taken asynchronously; a slow one can land after the next.
    row.timeline.sort((a, b) => a.t - b.t);
    Object.assign(row, {
      rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, non2xx: r.non2xx, errors: r.errors,
      socketErrors: r.detail?.socketErrors ?? null,
    });
    row.lost = r.non2xx + r.errors;
    const counts = await Promise.all(backends.map(countOrNull));
    row.perBackend = Object.fromEntries(backends.map((b, i) => [b.label, counts[i]]));
    // The restarted process counts from zero: everything it answered came after the restart.
    row.servedAfterRestart = counts[victimIndex];
    if (row.otherCpu !== null && row.otherCpu > 0.1) row.notes.push(`other processes used ${(row.otherCpu * 100).toFixed(0)}% of the CPUs before the kill`);
    if (row.servedAfterRestart === 0) row.notes.push('restarted backend got no traffic before the end');
  }, {
    beforeStop: () => {
      for (const tm of timers) clearTimeout(tm);
      if (sampler) clearInterval(sampler);
    },
  });
  await Promise.all(backends.map((b) => stopProcess(b.handle)));
  return row;
}

/** Share of the victim in each sampling interval, as a compact string ("33 33 0 0 ... 31"). */
function victimShares(row, victimLabel = 'b2') {
  const idx = ['b1', 'b2', 'b3'].indexOf(victimLabel);
  const parts = [];
  let prev = [0, 0, 0];
  let restarted = false;
  for (const s of row.timeline) {
    const cur = s.counts;
    // After the restart the victim's counter starts again from zero.
    if (!restarted && row.restartedAtS !== null && s.t >= row.restartedAtS && cur[idx] !== null) {
      restarted = true;
      prev = [...prev];
      prev[idx] = 0;
    }
    const delta = cur.map((c, i) => (c === null ? 0 : Math.max(0, c - (prev[i] ?? 0))));
    const total = delta.reduce((a, b) => a + b, 0);
    parts.push(cur[idx] === null ? 'x' : total > 0 ? String(Math.round((delta[idx] / total) * 100)) : '-');
    prev = cur.map((c, i) => (c === null ? prev[i] : c));
  }
  return parts.join(' ');
}

const COLUMNS = [
  { key: 'target', title: 'target', align: 'left' },
  { key: 'workers', title: 'workers', align: 'right' },
  valueColumn('requests', 'requests', String),
  rpsColumn,
  valueColumn('non2xx', 'non-2xx', String),
  {
    key: 'errors', title: 'socket errors', align: 'right',
    format: (v, r) => {
      if (v === null) return '-';
      const s = r.socketErrors;
      if (!s || v === 0) return String(v);
      const parts = Object.entries(s).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
      return `${v} (${parts.join(', ')})`;
    },
  },
  valueColumn('lost', 'lost', String),
  p99Column,
  valueColumn('servedAfterRestart', 'after restart', String),
  notesColumn,
];

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-killed-');
  const { generator, scratchDir } = run;
  const ctx = { ...opts, generator, scratchDir };
  const targets = plan(ctx);

  console.log(`killed-backend bench: ${targets.length} targets x (${opts.warmupS} s warm-up + ${opts.durationS} s), `
    + `${opts.connections} connections, generator ${generator.label}; backend b2 of 3 SIGKILLed at ${opts.killAtS} s, restarted at ${opts.restartAtS} s`);
  console.log(`estimated ~${Math.ceil(targets.length * (opts.warmupS + opts.durationS + 1))} s`);
  const warning = warnIfBusy(run.busyBefore);
  if (generator.name !== 'wrk') {
    console.log('WARNING: autocannon reconnects silently when a server closes a connection with a request outstanding; such losses are not counted (wrk counts them as read errors)');
  }
  console.log('');

  const rows = [];
  for (const t of targets) {
    process.stdout.write(`  ${t.target.padEnd(10)} `);
    const row = await measureTarget(t, ctx);
    rows.push(row);
    console.log(rowLine(row, `${row.requests} requests, ${row.non2xx} non-2xx, ${row.errors} socket errors, p99 ${formatMs(row.p99Ms)} ms`));
  }

  const sluice = rows.find((r) => r.group === 'sluice');
  const checks = [check('Sluice loses zero requests (no non-2xx, no socket errors)', sluice && sluice.status === 'ok',
    () => ({ pass: sluice.lost === 0, detail: `${sluice.non2xx} non-2xx, ${sluice.errors} socket errors` }), 'row missing')];

  const wallS = run.elapsedS();
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log(`share of traffic on b2 (%) every ${SAMPLE_MS} ms from the start of the run (x = down, - = no traffic):`);
  for (const r of rows.filter((x) => x.timeline.length > 0)) {
    console.log(`  ${r.target.padEnd(8)} killed ${r.killedAtS ?? '-'} s, back ${r.restartedAtS ?? '-'} s: ${victimShares(r)}`);
  }
  console.log('\ntarget (issue 4):');
  console.log(renderChecks(checks));
  console.log(`\nconfigs: ${rows.map((r) => `${r.target}: ${r.config}`).join('; ')}`);
  console.log(runSummaryLine(run, opts, wallS));
  console.log('"lost" = non-2xx + socket errors; "after restart" = requests the restarted backend answered before the run ended; p99 is over the whole run');
  if (warning) console.log(`WARNING: ${warning}`);

  saveResults('killed-backend', run, {
    ...resultHead('killed backend: GET / keep-alive over 3 uWS backends; b2 SIGKILLed and restarted on the same port', run, opts, wallS),
    killAtSeconds: opts.killAtS,
    restartAtSeconds: opts.restartAtS,
    workers: opts.workers,
    sluiceEnv: opts.sluiceEnv,
    nginxServerOptions: NGINX_SERVER_OPTIONS,
    haproxyServerOptions: HAPROXY_SERVER_OPTIONS,
    timelineSampleMs: SAMPLE_MS,
    ...machineAndVersions(run),
    rows,
    targets: checks,
  });
}

runScenario('killed-backend', main);
