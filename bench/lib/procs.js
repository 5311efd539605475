// Child-process plumbing shared by every benchmark scenario: free ports, spawning with output
// capture, readiness (a printed line or an HTTP answer), graceful stop, and a last-resort cleanup
// that kills every child (and its process group) when the harness exits for any reason.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Every child still alive; the exit handler kills what is left. */
const live = new Set();
/** Children spawned detached, i.e. leaders of their own process group. */
const leaders = new WeakSet();
let cleanupInstalled = false;

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (leaders.has(child)) {
    try {
      // A detached child leads its own process group: this also reaches grandchildren (nginx
      // workers, forked Sluice workers) even if the leader is already gone.
      process.kill(-child.pid, signal);
      return;
    } catch { /* fall through */ }
  }
  try { child.kill(signal); } catch { /* already gone */ }
}

/** Kill everything still running, synchronously (safe inside a process 'exit' handler). */
export function killAll() {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      killAll();
      process.exit(128 + (os.constants.signals[sig] ?? 0));
    });
  }
  process.on('uncaughtException', (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
}

/**
 * Put a child spawned elsewhere (e.g. the load generator) under the same cleanup: killed when the
 * harness exits. Children that are not group leaders are killed alone.
 */
export function trackChild(child) {
  installCleanup();
  live.add(child);
  const forget = () => live.delete(child);
  child.on('exit', forget);
  child.on('error', forget);
  return child;
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Is an executable with this name on PATH? Returns its full path or null. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, name);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      if (fs.statSync(full).isFile()) return full;
    } catch { /* keep looking */ }
  }
  return null;
}

/**
 * Spawn a tracked child. Output is kept (last ~64 KiB of each stream) for error messages and
 * readiness lines; pass `echo: true` to also forward it to the harness's stderr.
 * `stdout` set to a file path (such as '/dev/null') sends the child's stdout straight to that file
 * (appended) instead of through the harness; output() then holds stderr only.
 * Returns a handle: { name, child, pid, output(), exited (promise of {code, signal}) }.
 */
export function startProcess(name, command, args = [], { env, cwd, echo = false, stdout } = {}) {
  installCleanup();
  let stdoutFd = null;
  if (stdout !== undefined && stdout !== 'pipe') stdoutFd = fs.openSync(stdout, 'a');
  let child;
  try {
    child = spawn(command, args, {
      cwd,
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'],
      detached: true,
    });
  } finally {
    // The child has its own copy of the descriptor.
    if (stdoutFd !== null) fs.closeSync(stdoutFd);
  }
  live.add(child);
  if (child.pid) leaders.add(child);
  let out = '';
  const keep = (chunk) => {
    out += chunk.toString();
    if (out.length > 65536) out = out.slice(-65536);
    if (echo) process.stderr.write(`[${name}] ${chunk}`);
  };
  child.stdout?.on('data', keep);
  child.stderr.on('data', keep);
  const handle = {
    name,
    child,
    pid: child.pid,
    output: () => out,
    exitInfo: null,
    exited: null,
  };
  handle.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      handle.exitInfo = { code: null, signal: null, error: err.message };
      live.delete(child);
      resolve(handle.exitInfo);
    });
    child.on('exit', (code, signal) => {
      handle.exitInfo = { code, signal };
      live.delete(child);
      // The leader is gone; make sure nothing of its group lingers.
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* none left */ }
      resolve(handle.exitInfo);
    });
  });
  return handle;
}

export function describeExit(handle) {
  const info = handle.exitInfo ?? {};
  const how = info.error ? `could not start (${info.error})`
    : info.signal ? `killed by ${info.signal}` : `exited with code ${info.code}`;
  const gist = errorGist(handle.output());
  return gist ? `${how}: ${gist}` : how;
}

/**
 * The most telling part of a crashed child's output: the first line that names an error (stack
 * frames skipped), else its last lines; cut to `max` characters.
 */
export function errorGist(text, max = 240) {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const named = lines.find((l) => !l.startsWith('at ') && /error|exception|fatal|cannot|failed|\[emerg\]|\[alert\]/i.test(l));
  const gist = named ?? lines.slice(-2).join(' | ');
  return gist.length > max ? `${gist.slice(0, max - 3)}...` : gist;
}

/** The last n non-empty lines of some output, joined on one line. */
export function lastLines(text, n = 3) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve with the match once the child prints a line matching `pattern`; reject on exit or timeout. */
export function waitForOutput(handle, pattern, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const m = handle.output().match(pattern);
      if (m) {
        clearInterval(timer);
        resolve(m);
      } else if (handle.exitInfo) {
        clearInterval(timer);
        reject(new Error(describeExit(handle)));
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        reject(new Error(`not ready after ${timeoutMs / 1000} s: ${lastLines(handle.output(), 2) || 'no output'}`));
      }
    }, 20);
  });
}

/**
 * One GET with a fresh connection. Resolves { status, body } or rejects on a socket error.
 * https:// URLs are fetched without verifying the certificate (benchmarks use throwaway ones).
 */
export function httpGet(url, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const tls = url.startsWith('https:');
    const opts = tls ? { agent: false, timeout: timeoutMs, rejectUnauthorized: false } : { agent: false, timeout: timeoutMs };
    const req = (tls ? https : http).get(url, opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/**
 * Poll `url` until it answers `status` (default 200). Rejects when the child exits first, or after
 * the timeout with the last error seen. Resolves with the last response { status, body }.
 */
export async function waitForHttp(handle, url, { status = 200, timeoutMs = 10_000 } = {}) {
  const started = Date.now();
  let last = 'no answer';
  while (Date.now() - started < timeoutMs) {
    if (handle?.exitInfo) throw new Error(describeExit(handle));
    try {
      const res = await httpGet(url, 1000);
      if (res.status === status) return res;
      const body = res.body.trim().replace(/\s+/g, ' ');
      last = `answered ${res.status}${body ? ` "${body.length > 80 ? `${body.slice(0, 77)}...` : body}"` : ''}`;
    } catch (err) {
      last = err.code ?? err.message;
    }
    await sleep(50);
  }
  if (handle?.exitInfo) throw new Error(describeExit(handle));
  const gist = errorGist(handle?.output() ?? '');
  throw new Error(`not ready after ${timeoutMs / 1000} s (${last})${gist ? `: ${gist}` : ''}`);
}

/**
 * Stop a child: send `signal` to it (not its group, so it can run its own shutdown), wait up to
 * `timeoutMs`, then SIGKILL the whole group. Resolves { code, signal, forced }.
 */
export async function stopProcess(handle, { signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
  if (!handle) return { forced: false };
  if (handle.exitInfo) return { ...handle.exitInfo, forced: false };
  try { handle.child.kill(signal); } catch { /* gone */ }
  let timer;
  const timedOut = new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); });
  const info = await Promise.race([handle.exited, timedOut]);
  clearTimeout(timer);
  if (info) return { ...info, forced: false };
  killGroup(handle.child, 'SIGKILL');
  const after = await handle.exited;
  return { ...after, forced: true };
}

/**
 * Start bench/backend.js on a free port and wait for its ready line. Resolves { handle, port, url }.
 * `count: true` starts it with --count (see backendCount()).
 */
export async function startBackend(benchDir, { port = 0, delayMs = 0, count = false, window = null, windowDelayMs = 0, timeoutMs = 10_000 } = {}) {
  const args = [path.join(benchDir, 'backend.js'), String(port)];
  if (delayMs > 0) args.push('--delay', String(delayMs));
  if (count) args.push('--count');
  // window: { forMs, everyMs, epoch } (backend.js --window); windowDelayMs: delay inside it only.
  if (window) args.push('--window', `${window.forMs}/${window.everyMs}@${window.epoch}`);
  if (windowDelayMs > 0) args.push('--window-delay', String(windowDelayMs));
  const handle = startProcess(`backend:${port}`, process.execPath, args);
  const m = await waitForOutput(handle, /backend ready port=(\d+)/, timeoutMs);
  const actual = Number(m[1]);
  return { handle, port: actual, url: `http://127.0.0.1:${actual}`, delayMs, counting: count };
}

/**
 * Requests answered by a backend started with `count: true` (asked directly, not through a proxy).
 * `reset: true` sets its counter back to 0 after reading it. Resolves a number; rejects when the
 * backend does not answer.
 */
export async function backendCount(backend, { reset = false } = {}) {
  return (await backendCounts(backend, { reset })).count;
}

/** Like backendCount, but the whole answer: { count, inWindow } (inWindow: see backend.js --window). */
export async function backendCounts(backend, { reset = false } = {}) {
  const res = await httpGet(`${backend.url}/__count${reset ? '?reset' : ''}`);
  if (res.status !== 200) throw new Error(`${backend.url}/__count answered ${res.status}`);
  const body = JSON.parse(res.body);
  return { count: body.count, inWindow: body.inWindow ?? 0 };
}

/** Replace @NAME@ placeholders; throws if one is left unfilled. */
export function renderTemplate(text, values) {
  const out = text.replace(/@([A-Z_]+)@/g, (whole, key) => (key in values ? String(values[key]) : whole));
  const missing = out.match(/@[A-Z_]+@/);
  if (missing) throw new Error(`template placeholder ${missing[0]} has no value`);
  return out;
}

/** Capture the combined output of a short command (for version strings); null if it fails. */
export function commandOutput(command, args, timeoutMs = 3000) {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('error', () => { clearTimeout(timer); resolve(null); });
    child.on('close', () => { clearTimeout(timer); resolve(out.trim()); });
  });
}

function cpuTimes() {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

/**
 * Share of all CPUs (0..1) busy over the next `ms` milliseconds. Taken before a run starts it shows
 * whether something else (builds, tests) is competing with the benchmark for the cores.
 */
export async function sampleCpuBusy(ms = 300) {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : 0;
}

// ------------------------------------------------------------ CPU taken by other processes (Linux)

function readProcStatTotals() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { total, busy: total - idle };
}

/** Process group of a pid (from /proc/<pid>/stat), or null. */
export function processGroup(pid = process.pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc's utime/stime (CLK_TCK: 100 on every Linux we run on). */
export const CLOCK_TICKS = Number(commandOutputSync('getconf', ['CLK_TCK'])) || 100;
const PAGE_BYTES = Number(commandOutputSync('getconf', ['PAGESIZE'])) || 4096;

function commandOutputSync(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 2000 }).trim();
  } catch {
    return '';
  }
}

/**
 * User and system CPU time (seconds) used so far by every process of process group `pgid`, all
 * their threads included (a detached target is its own group: nginx's master and workers,
 * HAProxy, Sluice and its worker threads). Null where /proc is not available.
 */
export function groupCpu(pgid) {
  let user = 0;
  let sys = 0;
  let rssKb = 0;
  try {
    for (const name of fs.readdirSync('/proc')) {
      if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
      let s;
      try { s = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) !== pgid) continue;
      user += Number(f[11]);
      sys += Number(f[12]);
      // rss (pages) is field 24 of stat, 22 after the command name.
      rssKb += (Number(f[21]) * PAGE_BYTES) / 1024;
    }
  } catch {
    return null;
  }
  return { userS: user / CLOCK_TICKS, sysS: sys / CLOCK_TICKS, rssKb };
}

/** CPU ticks used so far by every process whose group is in `groups`. */
function groupTicks(groups) {
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let s;
    try { s = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // After the command name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    if (groups.has(Number(f[2]))) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}

function cpuSnapshot(groups) {
  try {
    return { ...readProcStatTotals(), ours: groupTicks(groups) };
  } catch {
    return null;
  }
}

/**
 * Measure, over [startMs, startMs + windowMs] from now, the share of all CPUs (0..1) used by
 * processes outside `groups` (process groups: the harness's own, which holds the load generator,
 * and each detached child's). Resolves null where /proc is not available. Take the window inside
 * the load run so every process of ours is alive at both ends.
 */
export function watchForeignCpu(groups, { startMs = 500, windowMs }) {
  const set = new Set([...groups].filter((g) => g !== null && g !== undefined));
  return new Promise((resolve) => {
    setTimeout(() => {
      const a = cpuSnapshot(set);
      if (!a) { resolve(null); return; }
      setTimeout(() => {
        const b = cpuSnapshot(set);
        if (!b || b.total <= a.total) { resolve(null); return; }
        const foreign = (b.busy - a.busy) - (b.ours - a.ours);
        resolve(Math.max(0, Math.min(1, foreign / (b.total - a.total))));
      }, Math.max(100, windowMs));
    }, startMs);
  });
}
