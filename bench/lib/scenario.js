// Pieces every scenario script shares: option parsing with the common flags, the machine and
// version block of the JSON file, "wait until the CPUs are quiet", one measured load run with its
// warm-up and foreign-CPU note, and a stop that reports a forced kill.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { warmUp, runLoad } from './load.js';
import { commandOutput, processGroup, sampleCpuBusy, stopProcess, watchForeignCpu, which } from './procs.js';

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
 * parseArgs with usage on error / --help. Returns { values, int(name, min, fallback), list(name, known) }.
 */
export function parseOptions(options, usageText) {
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
  if (values.generator !== undefined && !['wrk', 'autocannon'].includes(values.generator)) {
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

export function machineInfo(busyBefore) {
  return {
    cpus: os.cpus().length,
    cpuBusyBeforeRun: Number(busyBefore.toFixed(3)),
    loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))),
    cpuModel: os.cpus()[0]?.model ?? null,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** A warning line when the machine was busy before the run, else null. */
export function busyWarning(busyBefore) {
  return busyBefore > 0.15
    ? `other processes kept ${(busyBefore * 100).toFixed(0)}% of the CPUs busy just before the run (load average ${os.loadavg()[0].toFixed(2)}): numbers will be low and noisy`
    : null;
}

/** Before the warm-up only idle processes are ours, so CPU use now is someone else's. */
export async function waitQuiet(limitS) {
  const until = Date.now() + limitS * 1000;
  let busy = await sampleCpuBusy(250);
  while (busy > 0.15 && Date.now() < until) busy = await sampleCpuBusy(250);
  return { quiet: busy <= 0.15, busy };
}

/**
 * One measured run against `url`: optional quiet wait, warm-up, `beforeRun()` (e.g. reset backend
 * counters), the load, and the share of CPU other processes took meanwhile. `pids` are the
 * detached children involved (backends, target) whose process groups count as ours.
 * Resolves { result, otherCpu, notes }.
 */
export async function measureLoad({ generator, url, connections, durationS, warmupS, waitQuietS = 0, pids = [], beforeRun }) {
  const notes = [];
  if (waitQuietS > 0) {
    const waited = await waitQuiet(waitQuietS);
    if (!waited.quiet) notes.push(`machine still ${(waited.busy * 100).toFixed(0)}% busy after waiting ${waitQuietS} s`);
  }
  await warmUp(generator, { url, connections, durationS: warmupS });
  if (beforeRun) await beforeRun();
  const groups = [processGroup(), ...pids];
  const foreign = watchForeignCpu(groups, { startMs: 500, windowMs: Math.max(100, durationS * 1000 - 1000) });
  const result = await runLoad(generator, { url, connections, durationS });
  const otherCpu = await foreign;
  if (result.non2xx > 0) notes.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) notes.push(`${result.errors} socket errors`);
  if (otherCpu !== null && otherCpu > 0.1) notes.push(`other processes used ${(otherCpu * 100).toFixed(0)}% of the CPUs meanwhile`);
  return { result, otherCpu, notes };
}

/** stopProcess with SIGTERM; resolves a note when it had to be killed, else null. */
export async function stopTarget(handle, timeoutMs = 5000) {
  if (!handle) return null;
  const stopped = await stopProcess(handle, { signal: 'SIGTERM', timeoutMs });
  return stopped.forced ? `did not exit within ${timeoutMs / 1000} s of SIGTERM (killed)` : null;
}

/** PASS / FAIL / n/a lines for the issue's targets. checks: [{ label, pass: true|false|null, detail }] */
export function renderChecks(checks) {
  return checks
    .map((c) => `  [${c.pass === null ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'}] ${c.label}${c.detail ? `: ${c.detail}` : ''}`)
    .join('\n');
}
