// Spawns the L4 threads (docs/l4.md, "Threads"), restarts any that die, and drains them on
// shutdown. Each thread gets a ConnLedger row created here; when a thread dies, its open
// connections died with it, and ConnLedger.forget takes exactly those off the shared OPEN_CONNS.
//
// Listeners are assigned to threads once, by name, and keep their thread across reloads (a new
// listener goes to the thread with the fewest), so a reload never moves a port between threads.
// Threads start when they first get a listener: a process without L4 listeners runs none.

import { Worker, type ResourceLimits } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/types.js';
import type { Backend } from '../model/upstream.js';
import { CAPACITY } from '../model/limits.js';
import { ConnLedger } from '../l4/ledger.js';
import type { L4ListenerSnapshot } from '../l4/snapshot.js';
import type { SharedTable } from '../state/table.js';
import type { FromL4, ToL4 } from './l4-messages.js';
import type { L4WorkerData } from '../../workers/l4-worker.js';

const WORKER_URL = new URL('../../workers/l4-worker.js', import.meta.url);
/** Same crash-loop rule as the HTTP workers (supervisor.ts): at once, then 100 ms doubling to 5 s. */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5000;

interface Thread {
  readonly index: number;
  readonly ledger: SharedArrayBuffer;
  worker: Worker | null;
  /** Restart delay while it keeps dying within 10 s of the last death. */
  delay: number;
  lastDeath: number;
}

export class L4Supervisor {
  #config: ResolvedConfig;
  #backends: Backend[];
  readonly #table: SharedTable;
  readonly #log: Logger;
  readonly #testHooks: boolean;
  readonly #threads: Thread[] = [];
  /** Listener name → thread index. */
  readonly #assigned = new Map<string, number>();
  readonly #rounds = new Map<number, { replies: L4ListenerSnapshot[]; waiting: Set<Worker>; done: () => void }>();
  #roundId = 0;
  #draining = false;
  #restarts = 0;

  constructor(config: ResolvedConfig, table: SharedTable, backends: Backend[], log: Logger, testHooks = false) {
    this.#config = config;
    this.#table = table;
    this.#backends = backends;
    this.#log = log;
    this.#testHooks = testHooks;
  }

  /** Start the threads the configured listeners need; rejects with the first listen failure. */
  async start(): Promise<void> {
    this.#assign();
    await Promise.all(this.#threads.filter((t) => this.#mine(t.index).length > 0).map((t) => this.#launch(t)));
  }

  /** Reload: every thread gets the new pools, listeners and membership (threads a new listener needs start). */
  setConfig(config: ResolvedConfig, backends: Backend[]): void {
    this.#config = config;
    this.#backends = backends;
    this.#assign();
    for (const t of this.#threads) {
      if (t.worker !== null) this.#post(t, { type: 'config', config, backends, seed: seed(), listeners: this.#mine(t.index) });
      else if (this.#mine(t.index).length > 0 && !this.#draining) {
        this.#launch(t).catch((err: Error) => this.#log.error({ l4: t.index, err: err.message }, 'L4 thread failed to start'));
      }
    }
  }

  setBackends(backends: Backend[]): void {
    this.setConfig(this.#config, backends);
  }

  /** Listener specs with their thread, for /api/status. */
  listeners(): { name: string; kind: string; address: string; thread: number; running: boolean }[] {
    return this.#config.listeners.map((l) => {
      const thread = this.#assigned.get(l.name) ?? -1;
      return { name: l.name, kind: l.kind, address: `${l.host}:${l.port}`, thread, running: this.#threads[thread]?.worker != null };
    });
  }

  /** L4 threads dead and started again since start. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Every listener's counters; a thread too busy to answer within `timeoutMs` is left out this time. */
  stats(timeoutMs: number): Promise<L4ListenerSnapshot[]> {
    const id = ++this.#roundId;
    return new Promise((resolve) => {
      const replies: L4ListenerSnapshot[] = [];
      const waiting = new Set<Worker>();
      const done = (): void => {
        clearTimeout(timer);
        this.#rounds.delete(id);
        resolve(replies);
      };
      const timer = setTimeout(done, timeoutMs);
      this.#rounds.set(id, { replies, waiting, done });
      for (const t of this.#threads) {
        if (t.worker === null) continue;
        waiting.add(t.worker);
        this.#post(t, { type: 'stats', id });
      }
      if (waiting.size === 0) done();
    });
  }

  /** Test hook: make L4 thread `index` throw. */
  crash(index: number): void {
    const t = this.#threads[index];
    if (t !== undefined) this.#post(t, { type: 'crash' });
  }

  /** Stop accepting; open connections run until they end or `timeoutMs`; resolves when every thread has exited. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    await Promise.all(
      this.#threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const w = t.worker;
            if (w === null) return resolve();
            w.once('exit', () => resolve());
            w.postMessage({ type: 'drain', timeoutMs } satisfies ToL4);
          }),
      ),
    );
  }

  /** Give every listener without a thread the thread with the fewest; forget removed ones. */
  #assign(): void {
    const n = this.#config.l4Threads;
    while (this.#threads.length < n) {
      this.#threads.push({ index: this.#threads.length, ledger: new SharedArrayBuffer(CAPACITY * 4), worker: null, delay: 0, lastDeath: 0 });
    }
    const names = new Set(this.#config.listeners.map((l) => l.name));
    for (const name of this.#assigned.keys()) if (!names.has(name)) this.#assigned.delete(name);
    for (const l of this.#config.listeners) {
      if (this.#assigned.has(l.name)) continue;
      const load = this.#threads.slice(0, n).map((t) => this.#mine(t.index).length);
      this.#assigned.set(l.name, load.indexOf(Math.min(...load)));
    }
  }

  #mine(index: number): string[] {
    return [...this.#assigned].filter(([, t]) => t === index).map(([name]) => name);
  }

  #post(t: Thread, msg: ToL4): void {
    t.worker?.postMessage(msg);
  }

  #launch(t: Thread): Promise<void> {
    const data: L4WorkerData = {
      thread: t.index,
      buffer: this.#table.buffer,
      ledger: t.ledger,
      config: this.#config,
      backends: this.#backends,
      seed: seed(),
      listeners: this.#mine(t.index),
      testHooks: this.#testHooks,
    };
    const worker = new Worker(WORKER_URL, { workerData: data, name: `sluice-l4-${t.index}`, resourceLimits: l4ResourceLimits(this.#config.l4YoungGenerationMb) });
    t.worker = worker;
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (msg: FromL4) => {
        switch (msg.type) {
          case 'ready':
            up = true;
            resolve();
            return;
          case 'fatal':
            this.#log.fatal({ l4: t.index, err: msg.message }, 'L4 thread failed to start');
            reject(new Error(msg.message));
            return;
          case 'stats': {
            const round = this.#rounds.get(msg.id);
            if (round === undefined) return;
            round.replies.push(...msg.listeners);
            round.waiting.delete(worker);
            if (round.waiting.size === 0) round.done();
            return;
          }
          case 'drained':
            return;
        }
      });
      worker.on('error', (err) => this.#log.error({ l4: t.index, err: err.message, stack: err.stack }, 'L4 thread crashed'));
      worker.on('exit', (code) => {
        t.worker = null;
        // Its connections closed with it: take exactly its share off OPEN_CONNS.
        const forgotten = ConnLedger.forget(this.#table, t.ledger);
        for (const round of this.#rounds.values()) {
          round.waiting.delete(worker);
          if (round.waiting.size === 0) round.done();
        }
        if (!up) return reject(new Error(`L4 thread ${t.index} exited (code ${code}) before listening`));
        if (this.#draining) return;
        const now = Date.now();
        t.delay = now - t.lastDeath < 10_000 ? Math.min(Math.max(t.delay * 2, RESTART_BASE_MS), RESTART_MAX_MS) : 0;
        t.lastDeath = now;
        this.#restarts++;
        this.#log.warn({ l4: t.index, code, connections: forgotten, restartInMs: t.delay }, 'L4 thread exited; restarting');
        setTimeout(() => {
          if (this.#draining || t.worker !== null) return;
          this.#launch(t).then(
            () => this.#log.info({ l4: t.index }, 'L4 thread restarted'),
            (err: Error) => this.#log.error({ l4: t.index, err: err.message }, 'L4 thread restart failed'),
          );
        }, t.delay);
      });
    });
  }
}

/**
 * V8 heap limits of an L4 thread. Only the young generation is capped (SLUICE_L4_YOUNG_GENERATION_MB):
 * a relayed connection's objects live for the connection and die young, so V8's own sizing, which
 * grows the young generation to 48 MiB as scavenges keep finding survivors, buys nothing but
 * resident memory here (docs/l4.md, "Memory"). 0 leaves V8's sizing.
 */
export function l4ResourceLimits(youngGenerationMb: number): ResourceLimits {
  return youngGenerationMb > 0 ? { maxYoungGenerationSizeMb: youngGenerationMb } : {};
}

function seed(): number {
  return randomInt(1, 2 ** 31 - 1);
}
