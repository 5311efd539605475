// Per-worker state that every request in that worker shares: the shared table, the pool's policy,
// one keep-alive pool per backend, the reusable head builder, and the outcome bookkeeping (shared
// counters, EWMA samples) done once per request.

import type { Logger } from 'pino';
import type { Config, Upstream } from '../config/types.js';
import type { Member, PickContext, Policy, PolicyOptions } from '../balancer/policy.js';
import { createPolicy } from '../balancer/registry.js';
import { recordFailure, recordLatency } from '../balancer/ewma.js';
import { NO_HASH } from '../balancer/hash.js';
import { C } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Pool } from '../upstream/pool.js';
import type { UpstreamError } from '../upstream/errors.js';
import { RequestHeadBuilder } from './request-head.js';
import { upstreamTls } from '../upstream/tls-options.js';

/** One backend as published to workers: its slot and where it lives. */
export interface Backend extends Member {
  readonly upstream: Upstream;
}

/** Pooled requests allowed to queue per backend per worker before fast 503s. */
const MAX_WAITING = 4096;
/** How often connection deadlines are checked: timeouts fire within this much of their value. */
const SWEEP_MS = 50;

const STATUS_COLUMN = [C.RESP_1XX, C.RESP_1XX, C.RESP_2XX, C.RESP_3XX, C.RESP_4XX, C.RESP_5XX];
const ERROR_COLUMN: Record<string, number> = {
  connect: C.ERR_CONNECT,
  timeout: C.ERR_TIMEOUT,
  reset: C.ERR_RESET,
  protocol: C.ERR_PROTOCOL,
};

export class ProxyContext {
  readonly table: SharedTable;
  readonly builder = new RequestHeadBuilder();
  readonly proto: string;
  readonly maxBodyBytes: number;
  /** Pools indexed by slot (sparse). */
  pools: (Pool | undefined)[] = [];
  /** Requests this worker has in flight (all backends). */
  inFlight = 0;
  /** Draining: finish what is in flight, close client connections after their response. */
  draining = false;
  closeAfter = false;
  onIdle: (() => void) | null = null;

  readonly #config: Config;
  readonly #log: Logger;
  readonly #trusted: Set<string>;
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  readonly #penaltyUs: number;
  readonly #timer: NodeJS.Timeout;
  #policy: Policy;

  constructor(config: Config, table: SharedTable, backends: readonly Backend[], log: Logger, seed: number, proto = 'http') {
    this.#config = config;
    this.table = table;
    this.#log = log;
    this.proto = proto;
    this.maxBodyBytes = config.maxBodyBytes;
    this.#trusted = new Set(config.trustedProxies);
    // A failure counts as a sample as slow as the request timeout: errors must never look fast.
    this.#penaltyUs = config.requestTimeoutMs * 1000;
    this.#policy = this.#build(backends, seed);
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  /** Swap in a new membership: new pools for new backends, old pools closed once idle. */
  setBackends(backends: readonly Backend[], seed: number): void {
    this.#policy = this.#build(backends, seed);
  }

  trusted(ip: string): boolean {
    return this.#trusted.size !== 0 && this.#trusted.has(ip);
  }

  /** Choose a backend slot, or -1. */
  pick(exclude: number): number {
    const p = this.#pick;
    p.now = this.table.now();
    p.exclude = exclude;
    return this.#policy.pick(p);
  }

  onStart(slot: number): void {
    this.inFlight++;
    this.table.acquire(slot);
    this.table.add(C.REQUESTS, slot, 1);
  }

  /** Response head arrived after `ms`: one latency sample for peak EWMA (errors are sampled apart). */
  onResponseStart(slot: number, ms: number, status: number): void {
    if (status >= 500) recordFailure(this.table, slot, this.table.now(), this.#config.ewmaDecayMs, this.#penaltyUs);
    else recordLatency(this.table, slot, ms * 1000, this.table.now(), this.#config.ewmaDecayMs);
  }

  onUpstreamError(slot: number, err: UpstreamError): void {
    const column = ERROR_COLUMN[err.kind];
    if (column !== undefined) {
      this.table.add(column, slot, 1);
      recordFailure(this.table, slot, this.table.now(), this.#config.ewmaDecayMs, this.#penaltyUs);
    }
    this.#log.warn({ backend: this.pools[slot]?.host + ':' + this.pools[slot]?.port, kind: err.kind, err: err.message }, 'upstream error');
  }

  /** Exactly once per request that took a slot. */
  onDone(slot: number, status: number): void {
    this.table.release(slot);
    const cls = (status / 100) | 0;
    const column = STATUS_COLUMN[cls];
    if (column !== undefined) this.table.add(column, slot, 1);
    if (--this.inFlight === 0 && this.onIdle !== null) this.onIdle();
  }

  /** Stop the deadline sweep and close idle upstream connections (drain). */
  close(): void {
    clearInterval(this.#timer);
    for (const pool of this.pools) pool?.close();
  }

  #build(backends: readonly Backend[], seed: number): Policy {
    const c = this.#config;
    const next: (Pool | undefined)[] = [];
    for (const b of backends) {
      const old = this.pools[b.slot];
      next[b.slot] =
        old && old.host === b.upstream.host && old.port === b.upstream.port
          ? old
          : new Pool(this.table, {
              host: b.upstream.host,
              port: b.upstream.port,
              slot: b.slot,
              max: c.upstreamConnections,
              maxWaiting: MAX_WAITING,
              connectTimeoutMs: c.connectTimeoutMs,
              requestTimeoutMs: c.requestTimeoutMs,
              idleTimeoutMs: c.idleTimeoutMs,
              tls: upstreamTls(b.upstream),
            });
    }
    for (let slot = 0; slot < this.pools.length; slot++) {
      const old = this.pools[slot];
      if (old && next[slot] !== old) old.close();
    }
    this.pools = next;
    const options: PolicyOptions = {
      panicThresholdPercent: c.panicThresholdPercent,
      leastRequestBias: c.leastRequestBias,
      ewmaDecayMs: c.ewmaDecayMs,
      ewmaDefaultRttMs: c.ewmaDefaultRttMs,
      slowStartMs: c.slowStartMs,
      maglevTableSize: c.maglevTableSize,
      seed,
    };
    return createPolicy(c.balancer, this.table, backends, options);
  }

  #sweep(): void {
    const now = this.table.now();
    for (const pool of this.pools) pool?.sweep(now);
  }
}
