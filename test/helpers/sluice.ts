// Starts the built CLI (dist/src/cli.js) as a child process on a free loopback port, waits for its
// "sluice is listening" log line, and collects its output. Every instance is stopped at the owning
// test's teardown, whatever happened in the test: SIGTERM and a wait for its exit, so that under tap
// the child's coverage (written by @tapjs/processinfo on a clean exit) is recorded; SIGKILL only if
// it has not exited within a bound. Build first: `npm test` does (pretest), and `ensureBuilt()`
// rebuilds when dist is older than the sources.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUILT_CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/** What the helpers need from a tap test: a teardown hook. */
export interface Teardown {
  teardown(fn: () => unknown): void;
  /** tap's: whether the test has failed nothing so far (a failed one gets Sluice's output). */
  passing?(): boolean;
  comment?(...message: unknown[]): void;
}

export interface SluiceOptions {
  /** Backend URLs for SLUICE_UPSTREAMS. */
  upstreams: readonly string[];
  /** Address to listen on; default 127.0.0.1 ('::' listens dual-stack). Clients use 127.0.0.1. */
  listenHost?: string;
  /** SLUICE_WORKERS; default 1 (one worker keeps per-worker pools deterministic). */
  workers?: number;
  /** SLUICE_TEST_HOOKS=1: SIGUSR1 logs a table snapshot, SIGUSR2 crashes worker 0. */
  testHooks?: boolean;
  /**
   * More SLUICE_* variables (they override the ones above and the helper's own defaults: admin
   * listener and active health checks off).
   */
  env?: Record<string, string>;
  /** How long to wait for the ready line; default 10 s. */
  readyTimeoutMs?: number;
  /**
   * A config file (pools and routes): YAML text, or an object written as JSON. It is written to a
   * fresh temporary directory and named by SLUICE_CONFIG; `Sluice.configFile` is its path, so a
   * test can rewrite it and send SIGHUP.
   */
  config?: string | object;
}

/** One parsed pino line. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface TableSlot {
  slot: number;
  inFlight: number;
  requests: number;
  openConns: number;
  /** Requests sent again (retries, and pipelined requests the guard or a closed connection re-sent). */
  retries: number;
  /** In-flight count per worker index. */
  workers: number[];
}

export interface TableSnapshot extends LogLine {
  restarts: number;
  slots: TableSlot[];
}

export interface Sluice {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Path of the config file written from `options.config`; '' without one. */
  readonly configFile: string;
  /** Rewrite the config file (YAML text, or an object as JSON). */
  writeConfig(config: string | object): void;
  /** SIGHUP, and the reload's outcome: the "configuration reloaded" or "reload refused…" line. */
  reload(timeoutMs?: number): Promise<LogLine>;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** stdout parsed as pino lines (non-JSON lines skipped). */
  logs(): LogLine[];
  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number, after?: number): Promise<LogLine>;
  /** SIGUSR1 (test hooks only) and the "table snapshot" line it produces. */
  snapshot(timeoutMs?: number): Promise<TableSnapshot>;
  /** Resident set size of the whole process (all worker threads), from /proc. */
  rssBytes(): number;
  /** SIGTERM, then resolve with the exit code (null when killed by a signal). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Teardown: how long a SIGTERMed child may take to drain and exit before it is SIGKILLed. */
const TEARDOWN_KILL_MS = 10_000;

/**
 * The variables tap's coverage needs in a child (NODE_OPTIONS loads @tapjs/processinfo, which
 * records what ran and writes it at exit; _TAPJS_PROCESSINFO_* tell it where and for which test).
 * Everything else in the test runner's environment stays out of the child.
 */
function coverageEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name === 'NODE_V8_COVERAGE' || name.startsWith('_TAPJS_PROCESSINFO_')) env[name] = value;
  }
  return env;
}

/** A port that was free a moment ago: bind port 0 and close. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Rebuild dist when any source file is newer than the built CLI (`npm test` builds first, so this
 * only matters for `npx tap <file>` after an edit). A lock directory keeps parallel test files from
 * running two compilers over the same dist.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = `${ROOT}dist/.build-lock`;
  for (;;) {
    if (builtAt() > 0 && newestSource() <= builtAt()) return;
    try {
      mkdirSync(`${ROOT}dist`, { recursive: true });
      mkdirSync(lock);
    } catch {
      // Someone else is building (or a stale lock from a killed run: give up on it after 60 s).
      try {
        if (Date.now() - statSync(lock).mtimeMs > 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone already
      }
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      if (builtAt() > 0 && newestSource() <= builtAt()) return;
      const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
      const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
      return;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

function builtAt(): number {
  try {
    return statSync(BUILT_CLI).mtimeMs;
  } catch {
    return 0;
  }
}

function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(`${ROOT}src`);
  walk(`${ROOT}workers`);
  return newest;
}

/**
 * Start Sluice and wait until it listens. Rejects (with its output) when it exits first or the
 * ready line does not come in time. At `t`'s teardown a child still running gets SIGTERM (it drains
 * and exits 0), and SIGKILL only after TEARDOWN_KILL_MS.
 */
/**
 * Start Sluice. freePort() hands out a port that was free a moment ago; with test files running in
 * parallel another one can take it first, so a start that fails with "address in use" is tried
 * again on new ports (twice at most).
 */
export async function startSluice(t: Teardown, options: SluiceOptions): Promise<Sluice> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSluiceOnce(t, options);
    } catch (err) {
      if (attempt >= 3 || !/address in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startSluiceOnce(t: Teardown, options: SluiceOptions): Promise<Sluice> {
  const host = options.listenHost ?? '127.0.0.1';
  const port = await freePort(host);
  const configFile = options.config === undefined ? '' : join(mkdtempSync(join(tmpdir(), 'sluice-config-')), 'sluice.yaml');
  const writeConfig = (config: string | object): void => {
    if (configFile === '') throw new Error('started without options.config');
    writeFileSync(configFile, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  };
  if (options.config !== undefined) writeConfig(options.config);
  const env: NodeJS.ProcessEnv = {
    ...coverageEnv(),
    PATH: process.env.PATH,
    SLUICE_LISTEN: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    SLUICE_UPSTREAMS: options.upstreams.join(','),
    SLUICE_WORKERS: String(options.workers ?? 1),
    SLUICE_LOG_LEVEL: 'info',
    // Parallel test files each start Sluice: the admin listener's fixed default port would clash.
    SLUICE_ADMIN_LISTEN: 'off',
    // Probes would add requests the tests count, and mark deliberately broken backends down.
    SLUICE_HEALTH_CHECK: 'off',
    // Teardown stops Sluice before the test's backends (tap runs teardowns last-in first-out): a
    // request a test left hanging must not hold the drain past TEARDOWN_KILL_MS, or the SIGKILL
    // fallback would lose the child's coverage.
    SLUICE_DRAIN_TIMEOUT_MS: String(TEARDOWN_KILL_MS / 2),
    ...(options.testHooks ? { SLUICE_TEST_HOOKS: '1' } : {}),
    ...(configFile !== '' ? { SLUICE_CONFIG: configFile } : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [BUILT_CLI], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let parsed: LogLine[] = [];
  let parsedUpTo = 0;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      // Let the pipes flush their last bytes before anyone reads the output.
      setImmediate(() => {
        resolve({ code, signal });
        wake();
      });
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  /** SIGTERM, SIGKILL if still running after `killAfterMs`; resolves with the exit code. */
  const stop = async (killAfterMs: number): Promise<number | null> => {
    if (!done) child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!done) child.kill('SIGKILL');
    }, killAfterMs);
    const { code } = await exited;
    clearTimeout(timer);
    return code;
  };
  t.teardown(async () => {
    await stop(TEARDOWN_KILL_MS);
    // A failed test shows what Sluice said (its access log left out): a flaky failure is then
    // explained by the run it happened in.
    if (t.passing?.() === false && t.comment !== undefined) {
      const said = out.split('\n').filter((l) => l !== '' && !l.includes('"type":"access"')).slice(-40);
      t.comment(`sluice on port ${port}, its last log lines:\n${said.join('\n')}\nstderr:\n${err.slice(-2000)}`);
    }
  });

  const logs = (): LogLine[] => {
    const end = out.lastIndexOf('\n') + 1;
    if (end > parsedUpTo) {
      const fresh = parseLines(out.slice(parsedUpTo, end));
      parsed = parsed.concat(fresh);
      parsedUpTo = end;
    }
    return parsed;
  };

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 5000, after = 0): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const lines = logs();
        for (let i = after; i < lines.length; i++) {
          if (match(lines[i]!)) {
            finish();
            return resolve(lines[i]!);
          }
        }
        if (done) {
          finish();
          reject(new Error(`sluice exited before the expected log line\nstdout:\n${out}\nstderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching log line within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  await waitForLog((l) => l.msg === 'sluice is listening', options.readyTimeoutMs ?? 10_000);

  const sluice: Sluice = {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    configFile,
    writeConfig,
    async reload(timeoutMs = 10_000) {
      const after = logs().length;
      child.kill('SIGHUP');
      return waitForLog((l) => l.msg === 'configuration reloaded' || l.msg === 'reload: configuration unchanged' || l.msg.startsWith('reload refused'), timeoutMs, after);
    },
    exited,
    stdout: () => out,
    stderr: () => err,
    logs,
    waitForLog,
    async snapshot(timeoutMs = 3000) {
      const after = logs().length;
      child.kill('SIGUSR1');
      return (await waitForLog((l) => l.msg === 'table snapshot', timeoutMs, after)) as TableSnapshot;
    },
    rssBytes: () => vmRss(child.pid!),
    stop: (timeoutMs = 15_000) => stop(timeoutMs),
  };
  return sluice;
}

function parseLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line that only looks like JSON: not a log record
    }
  }
  return lines;
}

/** VmRSS of `pid` in bytes (Linux). */
export function vmRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Run the built CLI to completion (for configuration errors), with only PATH and `env`. */
export function runCli(env: Record<string, string>, timeoutMs = 20_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BUILT_CLI], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
