// Access-log scenario (issue 6): what SLUICE_ACCESS_LOG=on costs. Sluice with one worker (by
// default) and one fast backend, the same keep-alive GET load with the access log off and on.
// Sluice's stdout (where its logs and the access log go) never passes through the harness: it goes
// to /dev/null, or to a file on the local disk (the "file" sink, whose lines are counted afterwards
// to prove every request was logged). The configurations are measured in interleaved rounds
// (off, on, on→file, off, on, ...) so drift on a shared machine hits them alike.
//
//   node bench/access-log.js [--duration 6] [--warmup 1] [--connections 100] [--rounds 2]
//                            [--workers 1] [--sinks devnull,file] [--generator wrk|autocannon]
//
// Prints a table and the issue's target, writes bench/results/access-log-<time>.json.
import fs from 'node:fs';
import path from 'node:path';
import { backendCount, freePort, startBackend, stopProcess } from './lib/procs.js';
import {
  formatMs, formatRatio, formatRps, notesColumn, p50Column, p99Column, ratio, renderTable, valueColumn,
} from './lib/report.js';
import {
  BENCH_DIR, COMMON_OPTIONS, COMMON_USAGE, REPO_ROOT, applyLoad, beginRun, check, loadRow, machineAndVersions, measureLoad,
  measureStarted, parseOptions, renderChecks, resultHead, rowLine, runScenario, runSummaryLine, saveResults, warnIfBusy,
} from './lib/scenario.js';
import { startSluice } from './lib/targets.js';

const SINKS = ['devnull', 'file'];

const USAGE = `usage: node bench/access-log.js [options]
  --duration <s>      seconds measured per run (default 6)
  --connections <n>   concurrent keep-alive connections (default 100)
  --rounds <n>        interleaved rounds of every configuration (default 2)
  --workers <n>       Sluice workers (default 1)
  --sinks <list>      where the access log goes when on: devnull (/dev/null), file (a file in a
                      temporary folder); default both
  --log-dir <dir>     folder for the file sink (default: a new folder under the OS temp dir)
${COMMON_USAGE}`;

function options() {
  const o = parseOptions({
    ...COMMON_OPTIONS,
    rounds: { type: 'string' },
    workers: { type: 'string' },
    sinks: { type: 'string' },
    'log-dir': { type: 'string' },
  }, USAGE);
  return {
    durationS: o.int('duration', 1, 6),
    warmupS: o.int('warmup', 0, 1),
    connections: o.int('connections', 1, 100),
    rounds: o.int('rounds', 1, 2),
    workers: o.int('workers', 1, 1),
    sinks: o.list('sinks', SINKS),
    logDir: o.values['log-dir'],
    generator: o.values.generator,
    threads: o.int('threads', 1, undefined),
    waitQuietS: o.int('wait-quiet', 0, 0),
  };
}

function configs(opts) {
  const list = [{ id: 'off', accessLog: 'off', sink: 'devnull', label: 'access log off', stdout: '/dev/null' }];
  if (opts.sinks.includes('devnull')) list.push({ id: 'on-devnull', accessLog: 'on', sink: 'devnull', label: 'access log on', stdout: '/dev/null' });
  if (opts.sinks.includes('file')) list.push({ id: 'on-file', accessLog: 'on', sink: 'file', label: 'access log on', stdout: 'file' });
  return list;
}

/** Name of the file system holding `dir` (the file sink's cost depends on it). */
function fileSystemType(dir) {
  const known = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x794c7630: 'overlayfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x6969: 'nfs' };
  try {
    const { type } = fs.statfsSync(dir);
    return known[type] ?? `fs 0x${type.toString(16)}`;
  } catch {
    return 'unknown fs';
  }
}

/** Lines of the access log in `file` (JSON lines with "type":"access"). */
function countAccessLines(file) {
  let n = 0;
  const text = fs.readFileSync(file, 'utf8');
  let i = text.indexOf('"type":"access"');
  while (i >= 0) {
    n++;
    i = text.indexOf('"type":"access"', i + 15);
  }
  return { lines: n, bytes: Buffer.byteLength(text) };
}

async function measureRun(cfg, round, ctx) {
  const run = loadRow({ config: cfg.id, round }, {}, { loggedLines: null, logBytes: null, backendRequests: null });
  const stdout = cfg.stdout === 'file' ? path.join(ctx.logDir, `sluice-access-${process.pid}-${round}.log`) : cfg.stdout;
  if (cfg.stdout === 'file') fs.rmSync(stdout, { force: true });
  await backendCount(ctx.backend, { reset: true });
  let started;
  try {
    started = await startSluice({
      repoRoot: REPO_ROOT, port: await freePort(), upstreams: [ctx.backend.url], workers: ctx.workers, stdout,
      env: { SLUICE_ACCESS_LOG: cfg.accessLog, SLUICE_ADMIN_LISTEN: 'off' },
    });
  } catch (err) {
    run.status = 'failed';
    run.reason = err.message;
    return run;
  }
  // The stop afterwards (SIGTERM) drains and flushes the buffered access log before the count below.
  await measureStarted(run, started.handle, async () => applyLoad(run, await measureLoad({
    generator: ctx.generator, url: `${started.url}/`, connections: ctx.connections, durationS: ctx.durationS,
    warmupS: ctx.warmupS, waitQuietS: ctx.waitQuietS, pids: [started.handle.pid, ctx.backend.handle.pid],
  })), { exitReason: 'Sluice exited during the run' });
  // Every request the backend answered during this Sluice's life (readiness probe, warm-up, run).
  run.backendRequests = await backendCount(ctx.backend);
  if (cfg.stdout === 'file') {
    const { lines, bytes } = countAccessLines(stdout);
    run.loggedLines = lines;
    run.logBytes = bytes;
    if (lines < run.backendRequests) run.notes.push(`only ${lines} of ${run.backendRequests} requests logged`);
    fs.rmSync(stdout, { force: true });
  }
  return run;
}

/** Notes of every round, once each; the foreign-CPU note only once, with the worst round. */
function summaryNotes(runs) {
  const notes = new Set();
  for (const r of runs) for (const n of r.notes) if (!n.startsWith('other processes used')) notes.add(n);
  const worst = Math.max(0, ...runs.map((r) => r.otherCpu ?? 0));
  if (worst > 0.1) notes.add(`other processes used up to ${(worst * 100).toFixed(0)}% of the CPUs meanwhile`);
  return [...notes];
}

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

function summarize(cfgs, runs, logFs) {
  const offRuns = runs.filter((r) => r.config === 'off');
  return cfgs.map((cfg) => {
    const mine = runs.filter((r) => r.config === cfg.id);
    const ok = mine.filter((r) => r.status === 'ok');
    // Ratio per round against the off run of the same round, then averaged.
    const ratios = ok.map((r) => {
      const off = offRuns.find((o) => o.round === r.round && o.status === 'ok');
      return off ? ratio(r.rps, off.rps) : null;
    }).filter((v) => v !== null);
    const vsOff = cfg.id === 'off' ? null : (ratios.length ? mean(ratios) : null);
    const logged = ok.filter((r) => r.loggedLines !== null);
    return {
      config: cfg.id,
      label: cfg.label,
      stdout: cfg.stdout === 'file' ? `file (${logFs})` : '/dev/null',
      status: ok.length === mine.length ? 'ok' : ok.length ? 'partial' : 'failed',
      reason: mine.find((r) => r.status !== 'ok')?.reason ?? null,
      roundsRps: mine.map((r) => r.rps),
      rps: mean(ok.map((r) => r.rps)),
      p50Ms: mean(ok.map((r) => r.p50Ms)),
      p99Ms: mean(ok.map((r) => r.p99Ms)),
      vsOff,
      cost: vsOff === null ? null : 1 - vsOff,
      logCoverage: logged.length ? mean(logged.map((r) => r.loggedLines / r.backendRequests)) : null,
      logBytesPerRequest: logged.length ? mean(logged.map((r) => r.logBytes / Math.max(1, r.loggedLines))) : null,
      notes: summaryNotes(mine),
    };
  });
}

const pct = (v) => `${(v * 100).toFixed(1)}%`;

const COLUMNS = [
  { key: 'label', title: 'config', align: 'left' },
  { key: 'stdout', title: 'stdout', align: 'left' },
  { key: 'roundsRps', title: 'req/s per round', align: 'right', format: (v) => v.map((x) => (x === null ? '-' : formatRps(x))).join(' ') },
  valueColumn('rps', 'mean req/s', formatRps),
  p50Column,
  p99Column,
  { key: 'vsOff', title: 'vs off', align: 'right', format: formatRatio },
  valueColumn('cost', 'cost', pct),
  valueColumn('logCoverage', 'logged', pct),
  notesColumn,
];

async function main() {
  const opts = options();
  const run = await beginRun(opts, 'sluice-bench-accesslog-');
  const { generator, scratchDir } = run;
  const backend = await startBackend(BENCH_DIR, { count: true });
  const cfgs = configs(opts);
  const logDir = path.resolve(opts.logDir ?? scratchDir);
  fs.mkdirSync(logDir, { recursive: true });
  const logFs = fileSystemType(logDir);
  const ctx = { ...opts, generator, scratchDir, backend, logDir };

  console.log(`access-log bench: ${cfgs.length} configurations x ${opts.rounds} rounds x (${opts.warmupS} s warm-up + ${opts.durationS} s), `
    + `Sluice ${opts.workers} worker(s), ${opts.connections} connections, generator ${generator.label}`);
  console.log(`estimated ~${Math.ceil(cfgs.length * opts.rounds * (opts.warmupS + opts.durationS + 0.8))} s; Sluice's stdout goes to /dev/null or to a file in ${logDir} (${logFs})`);
  const warning = warnIfBusy(run.busyBefore);
  console.log('');

  const runs = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const cfg of cfgs) {
      process.stdout.write(`  round ${round} ${`${cfg.label} → ${cfg.stdout === 'file' ? 'file' : '/dev/null'}`.padEnd(28)} `);
      const r = await measureRun(cfg, round, ctx);
      runs.push(r);
      console.log(rowLine(r, `${formatRps(r.rps)} req/s, p99 ${formatMs(r.p99Ms)} ms${r.loggedLines !== null ? `, ${r.loggedLines} lines logged` : ''}`));
    }
  }
  await stopProcess(backend.handle);

  const rows = summarize(cfgs, runs, logFs);
  const checks = rows.filter((r) => r.config !== 'off').map((r) => check(
    `access log on (stdout ${r.stdout}) costs < 10% of req/s`,
    r.vsOff !== null,
    () => ({ pass: r.cost < 0.1, detail: `${(r.cost * 100).toFixed(1)}% (${formatRatio(r.vsOff)} of off, mean of per-round ratios)` }),
    'runs missing',
  ));
  const wallS = run.elapsedS();
  console.log(`\n${renderTable(COLUMNS, rows)}\n`);
  console.log('targets (issue 6):');
  console.log(renderChecks(checks));
  const fileRow = rows.find((r) => r.config === 'on-file');
  if (fileRow?.logBytesPerRequest) console.log(`\naccess log line: ~${fileRow.logBytesPerRequest.toFixed(0)} bytes per request`);
  console.log(runSummaryLine(run, opts, wallS, { per: 'run', extra: `, ${opts.rounds} round(s)` }));
  console.log('"logged" = access-log lines in the file / requests the backend answered while that Sluice ran (probe + warm-up + run)');
  if (warning) console.log(`WARNING: ${warning}`);

  saveResults('access-log', run, {
    ...resultHead('access log cost: GET / keep-alive through Sluice, SLUICE_ACCESS_LOG off vs on', run, opts, wallS),
    rounds: opts.rounds,
    workers: opts.workers,
    fileSink: opts.sinks.includes('file') ? { dir: logDir, fileSystem: logFs } : null,
    ...machineAndVersions(run),
    summary: rows,
    runs,
    targets: checks,
  });
}

runScenario('access-log', main);
