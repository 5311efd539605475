// Per-worker keep-alive pool for one backend: at most `max` connections, idle ones reused LIFO
// (the most recently used socket is the least likely to have been closed by the backend), and a
// bounded FIFO of exchanges waiting for a connection when all are busy.

import type tls from 'node:tls';
import { Connection, type ConnectionOwner } from './connection.js';
import type { ExchangeHandler } from './exchange.js';
import type { SharedTable } from '../state/table.js';
import { C } from '../state/layout.js';

/**
 * Pools with a pipelined batch open this turn. A batch is flushed once the loop has run every
 * callback of this poll phase (setImmediate), so all the requests uWS parsed in one pass go out
 * together: one `writev` per backend connection instead of one `write` per request.
 */
const openBatches: Pool[] = [];
/** First pause of pipelining to a backend after trouble (connection.ts `pipelineTrouble`); doubles per incident. */
const PIPELINE_PAUSE_MS = 10_000;
const PIPELINE_PAUSE_MAX_MS = 600_000;
let flushQueued = false;
function flushBatches(): void {
  flushQueued = false;
  for (let i = 0; i < openBatches.length; i++) openBatches[i]!.flushBatch();
  openBatches.length = 0;
}

export interface PoolOptions {
  host: string;
  port: number;
  slot: number;
  max: number;
  /** Exchanges allowed to wait for a busy pool before new ones get a fast 503. */
  maxWaiting: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Idle pooled connections are closed after this long. */
  idleTimeoutMs: number;
  /** How long a pipelined request may wait behind the response ahead of it. */
  pipelineHolMs: number;
  tls: tls.ConnectionOptions | null;
}

export class Pool implements ConnectionOwner {
  readonly host: string;
  readonly port: number;
  readonly slot: number;
  readonly tls: tls.ConnectionOptions | null;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  pipelineHolMs: number;
  readonly #table: SharedTable;
  readonly #max: number;
  #idleTimeoutMs: number;
  readonly #maxWaiting: number;
  readonly #idle: Connection[] = [];
  /** Every live connection, for the deadline sweep and for close(). */
  readonly #all = new Set<Connection>();
  #waiting: ExchangeHandler[] = [];
  /** Table time each waiter was queued at (parallel to #waiting). */
  #waitSince: number[] = [];
  #waitHead = 0;
  #closing = false;
  /** This turn's pipelined batch: a corked connection more bodiless GET/HEAD requests may join. */
  #batch: Connection | null = null;
  /** Table time until which this backend gets no pipelining (after trouble); 0 = not paused. */
  #pipelinePausedUntil = 0;
  /** Pipelining incidents so far: each pause is twice the one before, up to the cap. */
  #pipelineStrikes = 0;

  constructor(table: SharedTable, options: PoolOptions) {
    this.#table = table;
    this.host = options.host;
    this.port = options.port;
    this.slot = options.slot;
    this.tls = options.tls;
    this.#max = options.max;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxWaiting = options.maxWaiting;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.pipelineHolMs = options.pipelineHolMs;
  }

  /** Reload: new timeouts apply from the next deadline each connection sets. */
  configure(connectTimeoutMs: number, requestTimeoutMs: number, idleTimeoutMs: number, pipelineHolMs: number): void {
    this.connectTimeoutMs = connectTimeoutMs;
    this.requestTimeoutMs = requestTimeoutMs;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.pipelineHolMs = pipelineHolMs;
  }

  now(): number {
    return this.#table.now();
  }

  /** Closed by a membership change: queued exchanges should go to another backend. */
  get closing(): boolean {
    return this.#closing;
  }

  get size(): number {
    return this.#all.size;
  }
  get idle(): number {
    return this.#idle.length;
  }

  /** Hand `ex` a connection now, or queue it until one frees up. */
  acquire(ex: ExchangeHandler): void {
    // Its client side finished while a retry or a wait was pending: nothing to do.
    if (ex.cancelled) return;
    // A pool retired by a membership change opens nothing new (nothing would sweep it).
    if (this.#closing) return ex.onPoolFull();
    const depth = ex.pipelineDepth ?? 1;
    const pipelining = depth > 1 && (this.#pipelinePausedUntil === 0 || this.#pipelineResumes());
    if (pipelining) {
      const batch = this.#batch;
      if (batch !== null && batch.pipelinable && batch.depth < depth) return ex.onConnection(batch);
    }
    let conn = this.#idle.pop();
    // A connection destroyed while idle (idle timeout, backend FIN) stays listed until its socket
    // emits 'close', a loop phase later: never hand one of those out.
    while (conn !== undefined && conn.destroyed) conn = this.#idle.pop();
    if (conn) {
      // Only a connection that has already carried a response (so the backend keeps connections
      // alive) starts a batch.
      if (pipelining && conn.connected && conn.uses > 0) this.#openBatch(conn);
      return ex.onConnection(conn);
    }
    if (this.#all.size < this.#max) return ex.onConnection(this.#open());
    if (this.#waiting.length - this.#waitHead >= this.#maxWaiting) return ex.onPoolFull();
    this.#waiting.push(ex);
    this.#waitSince.push(this.now());
  }

  /** The pause after pipelining trouble is over (read only while one is set: no clock per request). */
  #pipelineResumes(): boolean {
    if (this.now() < this.#pipelinePausedUntil) return false;
    this.#pipelinePausedUntil = 0;
    return true;
  }

  /**
   * A response kept pipelined requests waiting past the bound, or the backend dropped a connection
   * with requests queued on it: this backend gets no pipelining for a while, so one that is often
   * slow (or mishandles pipelining) ends up with almost none and pays the guard's cost rarely.
   */
  pipelineTrouble(): void {
    this.#pipelinePausedUntil = this.now() + Math.min(PIPELINE_PAUSE_MAX_MS, PIPELINE_PAUSE_MS * 2 ** this.#pipelineStrikes);
    if (PIPELINE_PAUSE_MS * 2 ** this.#pipelineStrikes < PIPELINE_PAUSE_MAX_MS) this.#pipelineStrikes++;
    // Nothing more joins this turn's batch; what it holds goes out as it is.
    this.flushBatch();
  }

  /** Pipelining to this backend is paused (admin views, tests). */
  get pipelinePaused(): boolean {
    return this.#pipelinePausedUntil !== 0 && this.now() < this.#pipelinePausedUntil;
  }

  #openBatch(conn: Connection): void {
    if (this.#batch !== null) this.flushBatch();
    this.#batch = conn;
    conn.cork();
    openBatches.push(this);
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flushBatches);
    }
  }

  /** Send this turn's batch (called once the poll phase is over). */
  flushBatch(): void {
    const batch = this.#batch;
    this.#batch = null;
    if (batch !== null) batch.uncork();
  }

  /** A brand-new connection, for retrying an exchange whose reused socket turned out stale. */
  fresh(ex: ExchangeHandler): void {
    ex.onConnection(this.#open());
  }

  release(conn: Connection, reusable: boolean): void {
    if (!reusable || this.#closing) {
      conn.destroy(); // `closed` will account for it and serve a waiter
      return;
    }
    const next = this.#nextWaiter();
    if (next) next.onConnection(conn);
    else {
      conn.deadline = this.now() + this.#idleTimeoutMs;
      this.#idle.push(conn);
    }
  }

  closed(conn: Connection, wasOpen: boolean): void {
    if (!this.#all.delete(conn)) return;
    if (wasOpen) this.#table.add(C.OPEN_CONNS, this.slot, -1);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#closing) return;
    const next = this.#nextWaiter();
    if (next) next.onConnection(this.#open());
  }

  /**
   * Expire connections past their deadline, and waiters queued longer than the connect timeout
   * (waiting for a free connection is part of getting one); called by the worker's coarse timer.
   */
  sweep(now: number): void {
    for (const conn of this.#all) {
      if (conn.deadline !== 0 && conn.deadline <= now) conn.expire();
    }
    while (this.#waitHead < this.#waiting.length && this.#waitSince[this.#waitHead]! + this.connectTimeoutMs <= now) {
      const ex = this.#waiting[this.#waitHead]!;
      this.#waiting[this.#waitHead++] = undefined as unknown as ExchangeHandler;
      if (!ex.cancelled) ex.onPoolFull();
    }
  }

  /** Close idle connections and refuse new ones; busy ones finish their exchange first. */
  close(): void {
    this.#closing = true;
    for (const conn of this.#idle.splice(0)) conn.destroy();
    const waiting = this.#waiting.slice(this.#waitHead);
    this.#waiting = [];
    this.#waitSince = [];
    this.#waitHead = 0;
    for (const ex of waiting) if (!ex.cancelled) ex.onPoolFull();
  }

  /**
   * Crash: close() and destroy every connection, busy ones included, without telling their
   * exchanges (the worker is going away). A socket left open would keep the dead thread alive.
   */
  destroyAll(): void {
    this.close();
    // A copy: 'close' events remove connections from #all, though only on a later turn.
    for (const conn of [...this.#all]) conn.destroy();
  }

  #open(): Connection {
    const conn = new Connection(this);
    this.#all.add(conn);
    return conn;
  }

  opened(): void {
    this.#table.add(C.OPEN_CONNS, this.slot, 1);
  }

  #nextWaiter(): ExchangeHandler | null {
    while (this.#waitHead < this.#waiting.length) {
      const ex = this.#waiting[this.#waitHead]!;
      this.#waiting[this.#waitHead++] = undefined as unknown as ExchangeHandler;
      if (this.#waitHead > 1024 && this.#waitHead * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#waitHead);
        this.#waitSince = this.#waitSince.slice(this.#waitHead);
        this.#waitHead = 0;
      }
      if (!ex.cancelled) return ex;
    }
    return null;
  }
}
