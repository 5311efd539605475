// Spawns the proxy workers, restarts any that die, and drains them all on shutdown.
// The shared table lives here, in the control plane, so it survives every worker.

import { Worker } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/types.js';
import type { Backend } from '../model/upstream.js';
import { H } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import type { FromWorker, ToWorker } from './messages.js';
import type { ProxyWorkerData } from '../../workers/proxy-worker.js';
import type { WorkerLatency } from '../metrics/latency-merge.js';
import { L4Supervisor } from './l4-supervisor.js';

const WORKER_URL = new URL('../../workers/proxy-worker.js', import.meta.url);

/** Whether any HTTP listener is configured (plain or TLS): HTTP workers run only then. */
export function servesHttp(config: { listen: object | null; tlsListen: object | null }): boolean {
  return config.listen !== null || config.tlsListen !== null;
}

/**
 * Delay before replacing a worker that died within 10 s of the previous death (a crash loop);
 * doubles while they keep dying, up to 5 s. A lone crash is replaced at once.
 */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5000;
/**
 * How long a crashed worker gets to end by itself before it is terminated. Once it has closed its
 * sockets it only has log lines to flush (milliseconds); until it ends it holds its table column,
 * which the next warm spare needs.
 */
const CRASH_EXIT_MS = 1000;

/**
 * Test hooks: 'on' (SLUICE_TEST_HOOKS=1) lets tests crash worker 0; 'linger' (=linger) also leaves
 * the crashed worker a handle it never closes, so tests can see it terminated after CRASH_EXIT_MS.
 */
export type TestHooks = 'off' | 'on' | 'linger';

/** One running worker thread and the per-worker column it owns in the shared table. */
interface Running {
  readonly worker: Worker;
  readonly tableIndex: number;
  /** Its position among the serving workers (-1 for the spare). */
  position: number;
  /** Crashed and has closed every socket ('closed'): terminate() can no longer abort the process. */
  closed: boolean;
  /** Crashed and still running CRASH_EXIT_MS later: terminate it as soon as that is safe. */
  overdue: boolean;
  terminated: boolean;
  exitTimer: NodeJS.Timeout | null;
  /** The latest membership generation it acknowledged ('applied'), or was started with. */
  applied: number;
}

export class Supervisor {
  #config: ResolvedConfig;
  readonly #table: SharedTable;
  readonly #log: Logger;
  readonly #testHooks: TestHooks;
  #backends: Backend[];
  /** Serving workers by position. */
  readonly #workers: (Running | null)[] = [];
  /**
   * A warm spare: a worker that has loaded everything but does not listen yet. A crashed worker is
   * replaced by activating it (a few milliseconds) instead of starting a thread from nothing
   * (hundreds of milliseconds on a loaded 2-core host), and a new spare is then started at leisure.
   */
  #spare: Running | null = null;
  #spareStanding = false;
  /** A spare is due (its crash-loop delay is over) but waits for a free table column. */
  #spareWanted = false;
  #spareTimer: NodeJS.Timeout | null = null;
  /** Table worker columns not owned by a live thread. */
  readonly #freeIndices: number[] = [];
  /** Positions whose worker died and is not replaced yet. */
  readonly #vacant: number[] = [];
  #spawnDelay = 0;
  #started = false;
  #draining = false;
  #restartDelay = 0;
  #lastCrash = 0;
  /** Latency collections in progress, by request id: the replies so far and who still owes one. */
  readonly #latencyRounds = new Map<number, { replies: WorkerLatency[]; waiting: Set<number>; done: () => void }>();
  #latencyId = 0;
  /** The L4 threads (l4-supervisor.ts): started, reconfigured and drained with the HTTP workers. */
  readonly l4: L4Supervisor;

  constructor(config: ResolvedConfig, table: SharedTable, backends: Backend[], log: Logger, testHooks: TestHooks = 'off') {
    this.#config = config;
    this.#table = table;
    this.#backends = backends;
    this.#log = log;
    this.#testHooks = testHooks;
    this.l4 = new L4Supervisor(config, table, backends, log, testHooks !== 'off');
  }

  /**
   * Start every worker; resolves when all listen, rejects with the first listen failure. With no
   * HTTP listener (SLUICE_LISTEN=off and no SLUICE_TLS_LISTEN: an L4-only Sluice) no HTTP worker
   * starts, the spare neither: only the L4 threads.
   */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    if (servesHttp(this.#config)) {
      const n = this.#config.workers;
      this.#freeIndices.push(n);
      for (let i = 0; i < n; i++) ready.push(this.#launch(i, i));
      // The spare starts with the others, so a crash right after start-up is covered too.
      ready.push(this.#launch(-1, this.#freeIndices.pop()!));
    }
    ready.push(this.l4.start());
    await Promise.all(ready);
    this.#started = true;
  }

  /** Publish a new membership to every worker. */
  setBackends(backends: Backend[]): void {
    this.#backends = backends;
    this.#broadcast({ type: 'backends', backends, seed: seed(), generation: this.#table.header(H.GENERATION) });
    this.l4.setBackends(backends);
  }

  /**
   * Reload: publish new settings with a membership to every worker, and keep them for workers
   * started later (a restart after a crash must not bring the old configuration back).
   */
  setConfig(config: ResolvedConfig, backends: Backend[]): void {
    this.#config = config;
    this.#backends = backends;
    this.#broadcast({ type: 'config', config, backends, seed: seed(), generation: this.#table.header(H.GENERATION) });
    this.l4.setConfig(config, backends);
  }

  /**
   * The lowest membership generation every live worker (and the spare) has applied: a backend
   * removed at or before it can no longer be picked by any of them (Membership.reclaim).
   */
  appliedGeneration(): number {
    let low = this.#table.header(H.GENERATION);
    for (const r of [...this.#workers, this.#spare]) if (r && !r.closed && !r.terminated) low = Math.min(low, r.applied);
    return low;
  }

  /** The configuration (pools and routes included) last published to the workers. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** The membership last published to the workers. */
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /** Thread ids of the workers serving now (a restarted worker has a new one). */
  liveThreadIds(): Set<number> {
    const ids = new Set<number>();
    for (const r of this.#workers) if (r) ids.add(r.worker.threadId);
    return ids;
  }

  /**
   * Ask every serving worker for its latency histograms (a 'latency' message pair). Resolves with
   * the replies that came within `timeoutMs`; a worker too busy to answer is left out this time.
   */
  latencySnapshots(timeoutMs: number): Promise<WorkerLatency[]> {
    const id = ++this.#latencyId;
    const waiting = new Set<number>();
    return new Promise((resolve) => {
      const replies: WorkerLatency[] = [];
      const done = (): void => {
        clearTimeout(timer);
        this.#latencyRounds.delete(id);
        resolve(replies);
      };
      const timer = setTimeout(done, timeoutMs);
      this.#latencyRounds.set(id, { replies, waiting, done });
      for (const r of this.#workers) {
        if (!r) continue;
        waiting.add(r.worker.threadId);
        r.worker.postMessage({ type: 'latency', id } satisfies ToWorker);
      }
      if (waiting.size === 0) done();
    });
  }

  /** Test hook: make worker `index` throw. */
  crash(index: number): void {
    this.#workers[index]?.worker.postMessage({ type: 'crash' } satisfies ToWorker);
  }

  /** Drain all workers (and the spare); resolves when every thread has exited. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const all = [...this.#workers, this.#spare];
    const exits = all.map(
      (r) =>
        new Promise<void>((resolve) => {
          if (!r) return resolve();
          r.worker.once('exit', () => resolve());
          r.worker.postMessage({ type: 'drain', timeoutMs } satisfies ToWorker);
        }),
    );
    exits.push(this.l4.drain(timeoutMs));
    await Promise.all(exits);
  }

  #broadcast(msg: ToWorker): void {
    for (const r of this.#workers) r?.worker.postMessage(msg);
    this.#spare?.worker.postMessage(msg);
  }

  /** Start a new spare after `delayMs`, or as soon after it as a table column is free. */
  #startSpare(delayMs: number): void {
    if (this.#spareTimer !== null || this.#spareWanted) return; // one is on its way already
    this.#spareTimer = setTimeout(() => {
      this.#spareTimer = null;
      this.#spareWanted = true;
      this.#launchSpare();
    }, delayMs);
  }

  /**
   * Launch the spare that is due, if a column is free. A crashed thread frees its column only when
   * it has ended, usually after the spare was activated in its place: every exit calls this again.
   */
  #launchSpare(): void {
    if (!this.#spareWanted) return;
    if (this.#draining || this.#spare !== null) {
      this.#spareWanted = false;
      return;
    }
    const tableIndex = this.#freeIndices.pop();
    if (tableIndex === undefined) return; // still wanted: the next exit frees one
    this.#spareWanted = false;
    this.#launch(-1, tableIndex).catch((err: Error) => this.#log.error({ err: err.message }, 'spare worker failed to start'));
  }

  /**
   * A crashed worker must end within CRASH_EXIT_MS whatever its sockets do. If it has not, it is
   * terminated, but only once it has reported its uWS sockets closed: terminate() on a thread with
   * a uWS socket open aborts the whole process (uv_loop_close with open handles), which is worse
   * than a thread that lingers.
   */
  #boundExit(run: Running): void {
    if (run.exitTimer !== null || run.terminated) return;
    run.exitTimer = setTimeout(() => {
      run.exitTimer = null;
      run.overdue = true;
      if (run.closed) this.#terminate(run);
      else this.#log.error({ worker: run.tableIndex }, 'crashed worker has not closed its sockets: it cannot be terminated safely yet');
    }, CRASH_EXIT_MS);
  }

  #terminate(run: Running): void {
    if (run.terminated) return;
    run.terminated = true;
    this.#log.warn({ worker: run.tableIndex, boundMs: CRASH_EXIT_MS }, 'crashed worker did not exit; terminating it');
    void run.worker.terminate();
  }

  /**
   * Start a thread. `position` >= 0: it listens at once and serves there; -1: it becomes the warm
   * spare. Resolves when it listens (or stands by), rejects if it fails first.
   */
  #launch(position: number, tableIndex: number): Promise<void> {
    const standby = position < 0;
    const data: ProxyWorkerData = {
      index: tableIndex,
      buffer: this.#table.buffer,
      config: this.#config,
      backends: this.#backends,
      seed: seed(),
      testHooks: this.#testHooks !== 'off',
      lingerOnCrash: this.#testHooks === 'linger',
      standby,
    };
    const worker = new Worker(WORKER_URL, { workerData: data, name: `sluice-proxy-${tableIndex}` });
    const applied = this.#table.header(H.GENERATION);
    const run: Running = { worker, tableIndex, position, closed: false, overdue: false, terminated: false, exitTimer: null, applied };
    if (standby) this.#spare = run;
    else this.#workers[position] = run;
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            if (!up) {
              up = true;
              resolve();
            } else {
              // A spare that was standing by now listens in a dead worker's place.
              this.#log.info({ worker: tableIndex, position: run.position, spare: true }, 'worker restarted');
            }
            return;
          case 'standby':
            this.#spareStanding = true;
            up = true;
            if (this.#started) this.#log.info({ worker: tableIndex }, 'spare worker ready');
            resolve();
            this.#fill();
            return;
          case 'crashing':
            // Its sockets are closing: put the spare in its place now, not when the thread is gone.
            this.#replace(run);
            this.#boundExit(run);
            return;
          case 'applied':
            run.applied = Math.max(run.applied, msg.generation);
            return;
          case 'closed':
            run.closed = true;
            if (run.overdue) this.#terminate(run);
            return;
          case 'latency': {
            const round = this.#latencyRounds.get(msg.id);
            if (!round) return; // answered after its round timed out
            round.replies.push({ worker: run.position, threadId: worker.threadId, snapshot: msg.snapshot });
            round.waiting.delete(worker.threadId);
            if (round.waiting.size === 0) round.done();
            return;
          }
          case 'fatal':
            this.#log.fatal({ worker: tableIndex, err: msg.message }, 'worker failed to start');
            reject(new Error(msg.message));
            return;
        }
      });
      worker.on('error', (err) => {
        this.#log.error({ worker: tableIndex, err: err.message, stack: err.stack }, 'worker crashed');
      });
      worker.on('exit', (code) => {
        if (run.exitTimer !== null) clearTimeout(run.exitTimer);
        if (!this.#draining || code !== 0) this.#log.info({ worker: tableIndex, code, terminated: run.terminated }, 'worker thread exited');
        // Requests it had in flight will never release their slots: take them off the table.
        this.#table.forgetWorker(tableIndex);
        this.#freeIndices.push(tableIndex);
        if (!up) {
          if (this.#spare === run) {
            this.#spare = null;
            if (!this.#draining) this.#startSpare(this.#crashLoopDelay());
          } else if (this.#workers[position] === run) {
            this.#workers[position] = null;
            // A replacement that died starting: its position stays vacant for the next try.
            if (this.#started && !this.#draining) {
              this.#vacant.push(position);
              this.#spawnDelay = this.#crashLoopDelay();
              this.#fill();
            }
          }
          this.#launchSpare();
          return reject(new Error(`worker ${tableIndex} exited (code ${code}) before listening`));
        }
        if (this.#spare === run) {
          this.#spare = null;
          this.#spareStanding = false;
          if (!this.#draining) this.#startSpare(this.#crashLoopDelay());
          return;
        }
        this.#replace(run, code);
        // Its column is free now: for a vacant position first, then for a spare waiting for one.
        this.#fill();
        this.#launchSpare();
      });
    });
  }

  /** A serving worker is going away: its position is filled by the spare, or by a new thread. */
  #replace(run: Running, code?: number): void {
    if (this.#draining || run.position < 0 || this.#workers[run.position] !== run) return;
    this.#workers[run.position] = null;
    this.#vacant.push(run.position);
    this.#table.addHeader(H.WORKER_RESTARTS, 1);
    this.#spawnDelay = this.#crashLoopDelay();
    this.#log.warn({ worker: run.tableIndex, code, restartInMs: this.#spawnDelay }, 'worker exited; restarting');
    this.#fill();
  }

  /**
   * Fill vacant positions: a standing spare is activated at once; without one, wait for the spare
   * that is starting, or start a thread when a table column is free (a crashed worker's column is
   * freed when its thread is gone). New threads wait out the crash-loop delay.
   */
  #fill(): void {
    while (!this.#draining && this.#vacant.length > 0) {
      const spare = this.#spare;
      if (spare !== null && this.#spareStanding) {
        const position = this.#vacant.shift()!;
        this.#spare = null;
        this.#spareStanding = false;
        spare.position = position;
        this.#workers[position] = spare;
        spare.worker.postMessage({ type: 'activate' } satisfies ToWorker);
        this.#startSpare(this.#spawnDelay);
        continue;
      }
      if (spare !== null) return; // it will stand by soon, and fill then
      if (this.#freeIndices.length === 0) return; // a dying thread still owns its column
      const position = this.#vacant.shift()!;
      const tableIndex = this.#freeIndices.pop()!;
      setTimeout(() => {
        if (this.#draining) return;
        this.#launch(position, tableIndex).then(
          () => this.#log.info({ worker: tableIndex, position, spare: false }, 'worker restarted'),
          (err: Error) => this.#log.error({ worker: tableIndex, err: err.message }, 'worker restart failed'),
        );
      }, this.#spawnDelay);
    }
  }

  /**
   * 0 for a lone crash; while workers keep dying (within 10 s of each other) a delay that starts at
   * RESTART_BASE_MS and doubles up to RESTART_MAX_MS, so a crash loop does not spin the CPU.
   */
  #crashLoopDelay(): number {
    const now = Date.now();
    this.#restartDelay =
      now - this.#lastCrash < 10_000 ? Math.min(Math.max(this.#restartDelay * 2, RESTART_BASE_MS), RESTART_MAX_MS) : 0;
    this.#lastCrash = now;
    return this.#restartDelay;
  }
}

/** Per-instance seed for policies' PRNGs, so a fleet of proxies does not pick in lockstep. */
function seed(): number {
  return randomInt(1, 2 ** 31 - 1);
}
