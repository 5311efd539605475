// Spawns the proxy workers, restarts any that die, and drains them all on shutdown.
// The shared table lives here, in the control plane, so it survives every worker.

import { Worker } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { Backend } from '../http/context.js';
import { H } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import type { FromWorker, ToWorker } from './messages.js';
import type { ProxyWorkerData } from '../../workers/proxy-worker.js';
import type { WorkerLatency } from '../metrics/latency-merge.js';

const WORKER_URL = new URL('../../workers/proxy-worker.js', import.meta.url);
/**
 * Delay before replacing a worker that died within 10 s of the previous death (a crash loop);
 * doubles while they keep dying, up to 5 s. A lone crash is replaced at once.
 */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5000;

export class Supervisor {
  #config: Config;
  readonly #table: SharedTable;
  readonly #log: Logger;
  readonly #testHooks: boolean;
  #backends: Backend[];
  readonly #workers: (Worker | null)[] = [];
  #draining = false;
  #restartDelay = 0;
  #lastCrash = 0;
  /** Latency collections in progress, by request id: the replies so far and who still owes one. */
  readonly #latencyRounds = new Map<number, { replies: WorkerLatency[]; waiting: Set<number>; done: () => void }>();
  #latencyId = 0;

  constructor(config: Config, table: SharedTable, backends: Backend[], log: Logger, testHooks = false) {
    this.#config = config;
    this.#table = table;
    this.#backends = backends;
    this.#log = log;
    this.#testHooks = testHooks;
  }

  /** Start every worker; resolves when all listen, rejects with the first listen failure. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.#config.workers; i++) ready.push(this.#spawn(i));
    await Promise.all(ready);
  }

  /** Publish a new membership to every worker. */
  setBackends(backends: Backend[]): void {
    this.#backends = backends;
    for (const w of this.#workers) w?.postMessage({ type: 'backends', backends, seed: seed() } satisfies ToWorker);
  }

  /**
   * Reload: publish new settings with a membership to every worker, and keep them for workers
   * started later (a restart after a crash must not bring the old configuration back).
   */
  setConfig(config: Config, backends: Backend[]): void {
    this.#config = config;
    this.#backends = backends;
    for (const w of this.#workers) w?.postMessage({ type: 'config', config, backends, seed: seed() } satisfies ToWorker);
  }

  /** The membership last published to the workers. */
  get backends(): readonly Backend[] {
    return this.#backends;
  }

  /** Thread ids of the workers running now (a restarted worker has a new one). */
  liveThreadIds(): Set<number> {
    const ids = new Set<number>();
    for (const w of this.#workers) if (w) ids.add(w.threadId);
    return ids;
  }

  /**
   * Ask every running worker for its latency histograms (a 'latency' message pair). Resolves with
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
      for (const w of this.#workers) {
        if (!w) continue;
        waiting.add(w.threadId);
        w.postMessage({ type: 'latency', id } satisfies ToWorker);
      }
      if (waiting.size === 0) done();
    });
  }

  /** Test hook: make worker `index` throw. */
  crash(index: number): void {
    this.#workers[index]?.postMessage({ type: 'crash' } satisfies ToWorker);
  }

  /** Drain all workers; resolves when every thread has exited. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const exits = this.#workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (!w) return resolve();
          w.once('exit', () => resolve());
          w.postMessage({ type: 'drain', timeoutMs } satisfies ToWorker);
        }),
    );
    await Promise.all(exits);
  }

  #spawn(index: number): Promise<void> {
    const data: ProxyWorkerData = {
      index,
      buffer: this.#table.buffer,
      config: this.#config,
      backends: this.#backends,
      seed: seed(),
      testHooks: this.#testHooks,
    };
    const worker = new Worker(WORKER_URL, { workerData: data, name: `sluice-proxy-${index}` });
    this.#workers[index] = worker;
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          up = true;
          resolve();
        } else if (msg.type === 'latency') {
          const round = this.#latencyRounds.get(msg.id);
          if (!round) return; // answered after its round timed out
          round.replies.push({ worker: index, threadId: worker.threadId, snapshot: msg.snapshot });
          round.waiting.delete(worker.threadId);
          if (round.waiting.size === 0) round.done();
        } else if (msg.type === 'fatal') {
          this.#log.fatal({ worker: index, err: msg.message }, 'worker failed to start');
          reject(new Error(msg.message));
        }
      });
      worker.on('error', (err) => {
        this.#log.error({ worker: index, err: err.message, stack: err.stack }, 'worker crashed');
      });
      worker.on('exit', (code) => {
        this.#workers[index] = null;
        // Requests it had in flight will never release their slots: take them off the table.
        this.#table.forgetWorker(index);
        if (!up) return reject(new Error(`worker ${index} exited (code ${code}) before listening`));
        if (this.#draining) return;
        this.#table.addHeader(H.WORKER_RESTARTS, 1);
        const now = Date.now();
        // A lone crash is replaced at once (its port share is not served until then); a crash loop
        // backs off from RESTART_BASE_MS, doubling.
        this.#restartDelay =
          now - this.#lastCrash < 10_000 ? Math.min(Math.max(this.#restartDelay * 2, RESTART_BASE_MS), RESTART_MAX_MS) : 0;
        this.#lastCrash = now;
        this.#log.warn({ worker: index, code, restartInMs: this.#restartDelay }, 'worker exited; restarting');
        setTimeout(() => {
          if (this.#draining) return;
          this.#spawn(index).then(
            () => this.#log.info({ worker: index }, 'worker restarted'),
            (err: Error) => this.#log.error({ worker: index, err: err.message }, 'worker restart failed'),
          );
        }, this.#restartDelay);
      });
    });
  }
}

/** Per-instance seed for policies' PRNGs, so a fleet of proxies does not pick in lockstep. */
function seed(): number {
  return randomInt(1, 2 ** 31 - 1);
}
