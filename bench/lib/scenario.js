// Pieces every scenario script shares: option parsing with the common flags, the start of a run
// (generator, scratch folder, versions, CPU sample), "wait until the CPUs are quiet", one measured
// load run with its warm-up and foreign-CPU note, result rows and their failure handling, a stop
// that reports a forced kill, PASS/FAIL checks, and the common head and tail of the JSON file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chooseGenerator, warmUp, runLoad } from './load.js';
import { commandOutput, groupCpu, killAll, processGroup, sampleCpuBusy, stopProcess, watchForeignCpu, which } from './procs.js';
import { writeResults } from './report.js';
import { SkipError } from './targets.js';

/** bench/ (backend.js, results/) and the repository root above it. */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');

/** Flags most scenarios take; each script adds its own. */
export const COMMON_OPTIONS = {
  duration: { type: 'string' },
  warmup: { type: 'string', default: '1' },
  connections: { type: 'string' },
  generator: { type: 'string' },
  threads: { type: 'string' },
  'wait-quiet': { type: 'string', default: '0' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_USAGE = `  --warmup <s>        unrecorded seconds before each measurement (default 1, 0 to skip)
  --generator <name>  wrk or autocannon (default: wrk when on PATH)
  --threads <n>       wrk threads (default 1) / autocannon workers (default 2)
  --wait-quiet <s>    before each target, wait up to <s> s for other processes to leave the CPUs
                      idle (default 0: off)`;

/**
 * parseArgs with usage on error / --help. Returns { values, int(name, min, fallback),
 * num(name, min, fallback), list(name, known), usage(code) }. `checkGenerator: false` leaves the
 * --generator check to the caller.
 */
export function parseOptions(options, usageText, { checkGenerator = true } = {}) {
  const usage = (code) => {
    console.log(usageText);
    process.exit(code);
  };
  let values;
  try {
    ({ values } = parseArgs({ options }));
  } catch (err) {
    console.error(err.message);
    usage(2);
  }
  if (values.help) usage(0);
  const int = (name, min, fallback) => {
    if (values[name] === undefined) return fallback;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}`);
      usage(2);
    }
    return n;
  };
  const num = (name, min, fallback) => {
    if (values[name] === undefined) return fallback;
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) {
      console.error(`--${name} must be a number >= ${min}`);
      usage(2);
    }
    return n;
  };
  /** Comma-separated subset of `known`; all of them when the flag is absent. */
  const list = (name, known) => {
    if (values[name] === undefined) return [...known];
    const picked = values[name].split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    for (const p of picked) {
      if (!known.includes(p)) {
        console.error(`--${name}: unknown value "${p}" (known: ${known.join(', ')})`);
        usage(2);
      }
    }
    return picked;
  };
  if (checkGenerator && values.generator !== undefined && !['wrk', 'autocannon'].includes(values.generator)) {
    console.error('--generator must be wrk or autocannon');
    usage(2);
  }
  return { values, int, num, list, usage };
}

export async function versions() {
  const first = (s) => (s ? s.split('\n')[0] : null);
  const [nginx, haproxy, wrk] = await Promise.all([
    which('nginx') ? commandOutput('nginx', ['-v']) : null,
    which('haproxy') ? commandOutput('haproxy', ['-v']) : null,
    which('wrk') ? commandOutput('wrk', ['-v']) : null,
  ]);
  return { node: process.version, nginx: first(nginx), haproxy: first(haproxy), wrk: first(wrk) };
}

/** `loadAvg` defaults to the load average now. */
export function machineInfo(busyBefore, loadAvg = os.loadavg()) {
  return {
    cpus: os.cpus().length,
    cpuBusyBeforeRun: Number(busyBefore.toFixed(3)),
    loadAverage: loadAvg.map((v) => Number(v.toFixed(2))),
    cpuModel: os.cpus()[0]?.model ?? null,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** A warning line when the machine was busy before the run, else null. `loadAvg` defaults to now. */
export function busyWarning(busyBefore, loadAvg = os.loadavg()) {
  return busyBefore > 0.15
    ? `other processes kept ${(busyBefore * 100).toFixed(0)}% of the CPUs busy just before the run (load average ${loadAvg[0].toFixed(2)}): numbers will be low and noisy`
    : null;
}

/** busyWarning(), printed as a WARNING line when there is one; returns it (or null). */
export function warnIfBusy(busyBefore, loadAvg) {
  const warning = busyWarning(busyBefore, loadAvg);
  if (warning) console.log(`WARNING: ${warning}`);
  return warning;
}

/**
 * The start of every scenario's main(): the clock, the load generator for `opts` (generator,
 * threads), a scratch folder under the OS temp dir (named `<scratchPrefix>XXXXXX`, removed on exit),
 * the versions of the tools and how busy the CPUs were. Resolves
 * { t0, startedAt, generator, scratchDir, versionInfo, busyBefore, elapsedS() }.
 */
export async function beginRun(opts, scratchPrefix) {
  const t0 = Date.now();
  const startedAt = new Date();
  const generator = chooseGenerator({ prefer: opts.generator, threads: opts.threads });
  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), scratchPrefix));
  process.on('exit', () => fs.rmSync(scratchDir, { recursive: true, force: true }));
  const [versionInfo, busyBefore] = await Promise.all([versions(), sampleCpuBusy(300)]);
  return { t0, startedAt, generator, scratchDir, versionInfo, busyBefore, elapsedS: () => (Date.now() - t0) / 1000 };
}

/** Run a scenario's main(); on failure print `<name> bench failed: ...`, kill every child, exit 1. */
export function runScenario(name, main) {
  main().catch((err) => {
    console.error(`${name} bench failed: ${err.stack ?? err.message}`);
    killAll();
    process.exitCode = 1;
  });
}

/** Before the warm-up only idle processes are ours, so CPU use now is someone else's. */
export async function waitQuiet(limitS) {
  const until = Date.now() + limitS * 1000;
  let busy = await sampleCpuBusy(250);
  while (busy > 0.15 && Date.now() < until) busy = await sampleCpuBusy(250);
  return { quiet: busy <= 0.15, busy };
}

/** waitQuiet() for up to `limitS` s (nothing when 0); resolves a note when the CPUs stayed busy, else null. */
export async function quietNote(limitS) {
  if (!(limitS > 0)) return null;
  const waited = await waitQuiet(limitS);
  return waited.quiet ? null : `machine still ${(waited.busy * 100).toFixed(0)}% busy after waiting ${limitS} s`;
}

/**
 * One measured run against `url`: optional quiet wait, warm-up, `beforeRun()` (e.g. reset backend
 * counters), the load, and the share of CPU other processes took meanwhile. `pids` are the
 * detached children involved (backends, target) whose process groups count as ours.
 * Resolves { result, otherCpu, notes }.
 */
export async function measureLoad({ generator, url, connections, durationS, warmupS, waitQuietS = 0, pids = [], beforeRun, cpuOf = null, headers }) {
  const notes = [];
  const quiet = await quietNote(waitQuietS);
  if (quiet) notes.push(quiet);
  await warmUp(generator, { url, connections, durationS: warmupS, headers });
  if (beforeRun) await beforeRun();
  const groups = [processGroup(), ...pids];
  const foreign = watchForeignCpu(groups, { startMs: 500, windowMs: Math.max(100, durationS * 1000 - 1000) });
  // CPU per request: the target's user and system time (all its processes and threads, from
  // /proc) over the measured run, divided by the requests it served. Unlike req/s it does not
  // depend on how much of a core the target got on a shared machine.
  const cpuBefore = cpuOf === null ? null : groupCpu(cpuOf);
  const result = await runLoad(generator, { url, connections, durationS, headers });
  const cpuAfter = cpuOf === null ? null : groupCpu(cpuOf);
  if (cpuBefore !== null && cpuAfter !== null && result.requests > 0) {
    result.cpuUserUs = ((cpuAfter.userS - cpuBefore.userS) * 1e6) / result.requests;
    result.cpuSysUs = ((cpuAfter.sysS - cpuBefore.sysS) * 1e6) / result.requests;
    result.cpuUs = result.cpuUserUs + result.cpuSysUs;
    result.rssMb = cpuAfter.rssKb / 1024;
  }
  const otherCpu = await foreign;
  if (result.non2xx > 0) notes.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) notes.push(`${result.errors} socket errors`);
  if (otherCpu !== null && otherCpu > 0.1) notes.push(`other processes used ${(otherCpu * 100).toFixed(0)}% of the CPUs meanwhile`);
  return { result, otherCpu, notes };
}

/**
 * A result row before measuring: `head`, then status and the load figures (null until measured),
 * `mid`, otherCpu and notes, then `tail`. (Later fields of the same name keep their place.)
 */
export function loadRow(head, mid = {}, tail = {}) {
  return {
    ...head,
    status: 'ok', reason: null, rps: null, p50Ms: null, p99Ms: null, requests: null, non2xx: null, errors: null,
    cpuUs: null, cpuUserUs: null, cpuSysUs: null, rssMb: null,
    ...mid,
    otherCpu: null, notes: [],
    ...tail,
  };
}

/** Copy what measureLoad() resolved into `row`: the load figures, otherCpu and the notes. */
export function applyLoad(row, m) {
  const r = m.result;
  Object.assign(row, { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requests: r.requests, non2xx: r.non2xx, errors: r.errors, otherCpu: m.otherCpu });
  if (r.cpuUs !== undefined) Object.assign(row, { cpuUs: r.cpuUs, cpuUserUs: r.cpuUserUs, cpuSysUs: r.cpuSysUs, rssMb: r.rssMb });
  row.notes.push(...m.notes);
  return row;
}

/** Row status for an error from a starter: 'skipped' for a peer that is not installed, else 'failed'. */
export function skipOrFail(err) {
  return err instanceof SkipError ? 'skipped' : 'failed';
}

/** Mark `row` skipped / failed by a starter's error; returns it. */
export function startFailed(row, err) {
  row.status = skipOrFail(err);
  row.reason = err.message;
  return row;
}

/**
 * Measure a started target into `row`: `measure()` runs; a throw, or the target exiting meanwhile
 * (reason `exitReason`), fails the row; then `beforeStop()` (if given) and the target is stopped with
 * SIGTERM, with a note when it had to be killed. Resolves `row`.
 */
export async function measureStarted(row, handle, measure, { exitReason = 'target exited during the run', beforeStop } = {}) {
  try {
    await measure();
    if (handle.exitInfo) {
      row.status = 'failed';
      row.reason = exitReason;
    }
  } catch (err) {
    row.status = 'failed';
    row.reason = err.message;
  } finally {
    if (beforeStop) beforeStop();
    const note = await stopTarget(handle);
    if (note) row.notes.push(note);
  }
  return row;
}

/** stopProcess with SIGTERM; resolves a note when it had to be killed, else null. */
export async function stopTarget(handle, timeoutMs = 5000) {
  if (!handle) return null;
  const stopped = await stopProcess(handle, { signal: 'SIGTERM', timeoutMs });
  return stopped.forced ? `did not exit within ${timeoutMs / 1000} s of SIGTERM (killed)` : null;
}

/** The progress line of a measured row: `okText` and its notes, or its status and reason. */
export function rowLine(row, okText) {
  return row.status === 'ok'
    ? `${okText}${row.notes.length ? ` (${row.notes.join('; ')})` : ''}`
    : `${row.status}: ${row.reason}`;
}

/**
 * One target check: when `ready` (the rows it needs were measured), { label, ...evaluate() }
 * (evaluate returns { pass, detail }), else n/a with `missing` as the detail.
 */
export function check(label, ready, evaluate, missing = 'rows missing') {
  return ready ? { label, ...evaluate() } : { label, pass: null, detail: missing };
}

/** "generator: wrk -t1, -c 100, 6 s per target after 1 s warm-up; wall time 60.0 s" (`extra` before the wall time). */
export function runSummaryLine(run, opts, wallS, { per = 'target', extra = '' } = {}) {
  return `generator: ${run.generator.label}, -c ${opts.connections}, ${opts.durationS} s per ${per} after ${opts.warmupS} s warm-up${extra}; `
    + `wall time ${wallS.toFixed(1)} s`;
}

/** The fields every result file starts with: scenario, times, generator, connections, durations. */
export function resultHead(scenario, run, opts, wallS) {
  const { generator } = run;
  return {
    scenario,
    startedAt: run.startedAt.toISOString(),
    wallSeconds: wallS,
    generator: { name: generator.name, threads: generator.threads, label: generator.label },
    connections: opts.connections,
    durationSeconds: opts.durationS,
    warmupSeconds: opts.warmupS,
  };
}

/** The machine and versions fields of a result file (`loadAvg` defaults to the load average now). */
export function machineAndVersions(run, loadAvg) {
  return { machine: machineInfo(run.busyBefore, loadAvg), versions: run.versionInfo };
}

/** Write bench/results/<prefix>-<start time>.json and print its path; returns the path. */
export function saveResults(prefix, run, data) {
  const file = writeResults(path.join(BENCH_DIR, 'results'), prefix, data, run.startedAt);
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  return file;
}

/** PASS / FAIL / n/a lines for the issue's targets. checks: [{ label, pass: true|false|null, detail }] */
export function renderChecks(checks) {
  return checks
    .map((c) => `  [${c.pass === null ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'}] ${c.label}${c.detail ? `: ${c.detail}` : ''}`)
    .join('\n');
}
