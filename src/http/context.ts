// Per-worker state that every request in that worker shares: the shared table, the pool's policy,
// one keep-alive pool per backend, the reusable head builder, and the outcome bookkeeping (shared
// counters, EWMA samples) done once per request.

import type { Logger } from 'pino';
import type { Config, Upstream } from '../config/types.js';
import type { Member, PickContext, Policy, PolicyOptions } from '../balancer/policy.js';
import { createPolicy } from '../balancer/registry.js';
import { recordFailure, recordLatency } from '../balancer/ewma.js';
import { recordService, recordServiceFailure } from '../balancer/service-time.js';
import { NO_HASH, hashString } from '../balancer/hash.js';
import type { HttpRequest } from 'uWebSockets.js';
import { C } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Pool } from '../upstream/pool.js';
import type { UpstreamError } from '../upstream/errors.js';
import { RequestHeadBuilder } from './request-head.js';
import { LatencyRecorder } from '../metrics/latency.js';
import { OutlierDetector, outlierOptions } from '../health/outlier.js';
import type { AccessLog } from './access-log.js';
import { upstreamTls } from '../upstream/tls-options.js';

/** One backend as published to workers: its slot and where it lives. */
export interface Backend extends Member {
  readonly upstream: Upstream;
}

/** Pooled requests allowed to queue per backend per worker before fast 503s. */
const MAX_WAITING = 4096;
/** Retries a second always allowed per worker, whatever the budget (Linkerd's min retries/s). */
const RETRY_FLOOR_PER_SEC = 3;
/** Retry tokens a worker may bank: a long quiet spell must not fund an unbounded burst. */
const RETRY_TOKEN_CAP = 1000;
/** Largest latency penalty a failure records for peak EWMA. */
const FAILURE_PENALTY_MAX_MS = 1000;
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
  /** Access log, or null when SLUICE_ACCESS_LOG is off. */
  accessLog: AccessLog | null = null;
  /** This worker's latency histograms (merged by the admin server at scrape time). */
  readonly latency: LatencyRecorder;
  readonly builder = new RequestHeadBuilder();
  maxBodyBytes = 0;
  /** Pools indexed by slot (sparse). */
  pools: (Pool | undefined)[] = [];
  /** Requests this worker has in flight (all backends). */
  inFlight = 0;
  /** Draining: finish what is in flight, close client connections after their response. */
  draining = false;
  closeAfter = false;
  onIdle: (() => void) | null = null;

  #config: Config;
  readonly #log: Logger;
  readonly #outliers: OutlierDetector;
  /** Pools of removed backends with exchanges still running. */
  readonly #retired = new Set<Pool>();
  readonly #lastErrorLog = new Map<number, { at: number; suppressed: number }>();
  #lastInternalLog = 0;
  #trusted = new Set<string>();
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  #penaltyUs = 0;
  #retryRatio = 0;
  #retryTokens = 0;
  #floor = 0;
  #floorAt = 0;
  readonly #timer: NodeJS.Timeout;
  #policy: Policy;
  #needsHash = false;

  constructor(
    config: Config,
    table: SharedTable,
    backends: readonly Backend[],
    log: Logger,
    seed: number,
    latency: LatencyRecorder = new LatencyRecorder(),
  ) {
    this.latency = latency;
    this.#config = config;
    this.table = table;
    this.#log = log;
    this.#outliers = new OutlierDetector(table, outlierOptions(config));
    this.#apply(config);
    this.#policy = this.#build(backends, seed);
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  /** Swap in a new membership: new pools for new backends, old pools closed once idle. */
  setBackends(backends: readonly Backend[], seed: number): void {
    const old = this.pools;
    this.#policy = this.#build(backends, seed);
    this.#retire(old);
  }

  /**
   * Reload: new settings and membership at once. Requests in flight keep the pools and policy they
   * started with; pools to unchanged backends are kept (their connections stay warm) and take the
   * new timeouts.
   */
  setConfig(config: Config, backends: readonly Backend[], seed: number): void {
    this.#config = config;
    this.#apply(config);
    this.#outliers.setOptions(outlierOptions(config));
    for (const pool of this.pools) pool?.configure(config.connectTimeoutMs, config.requestTimeoutMs, config.idleTimeoutMs);
    const old = this.pools;
    this.#policy = this.#build(backends, seed);
    this.#retire(old);
  }

  /** Derive the per-request values from a config once, not per request. */
  #apply(config: Config): void {
    this.maxBodyBytes = config.maxBodyBytes;
    this.builder.maxHeadBytes = config.maxHeaderBytes;
    this.#trusted = new Set(config.trustedProxies);
    // A failure counts as a slow sample so errors never look fast, but capped: peak EWMA decays a
    // sample over SLUICE_EWMA_DECAY_MS, and a 15 s penalty would keep a recovered backend out for
    // minutes. Recovery events (health check passes, ejection) also reset the estimate.
    this.#penaltyUs = Math.min(config.requestTimeoutMs, FAILURE_PENALTY_MAX_MS) * 1000;
    this.#retryRatio = config.retryBudgetPercent / 100;
    this.#needsHash = config.balancer === 'ring-hash' || config.balancer === 'maglev';
  }

  trusted(ip: string): boolean {
    return this.#trusted.size !== 0 && this.#trusted.has(ip);
  }

  /** Whether the policy wants an affinity key (ring-hash, maglev): only then is one computed. */
  get needsHash(): boolean {
    return this.#needsHash;
  }

  /** The request's affinity key per SLUICE_HASH_KEY, or NO_HASH when it carries none. */
  hashOf(req: HttpRequest, clientIp: string): number {
    const key = this.#config.hashKey;
    if (key.kind === 'ip') return hashString(clientIp);
    if (key.kind === 'header') {
      const v = req.getHeader(key.name);
      return v === '' ? NO_HASH : hashString(v);
    }
    const v = cookieValue(req.getHeader('cookie'), key.name);
    return v === '' ? NO_HASH : hashString(v);
  }

  /**
   * Choose a backend slot, or -1. With SLUICE_MAX_REQUESTS_PER_BACKEND set, a backend at its cap
   * is passed over for another pick; -2 means every candidate tried was at its cap (circuit open).
   */
  pick(exclude: number, hash: number): number {
    const p = this.#pick;
    p.now = this.table.now();
    p.exclude = exclude;
    p.hash = hash;
    const slot = this.#policy.pick(p);
    const cap = this.#config.maxRequestsPerBackend;
    if (cap <= 0 || slot < 0 || this.table.inFlight(slot) < cap) return slot;
    p.exclude = slot;
    const other = this.#policy.pick(p);
    if (other >= 0 && other !== slot && this.table.inFlight(other) < cap) return other;
    return -2;
  }

  /**
   * Retry budget (the token-bucket form Finagle and Linkerd use): every request deposits
   * SLUICE_RETRY_BUDGET_PERCENT/100 of a retry, every retry withdraws a whole one, and a floor of
   * RETRY_FLOOR_PER_SEC retries a second is always allowed. So retries stay a bounded share of
   * traffic however many fail at once, yet the burst when a backend dies under load (all its
   * in-flight requests at once) is paid for by the traffic before it.
   */
  takeRetry(): boolean {
    const now = Date.now();
    if (now - this.#floorAt >= 1000) {
      this.#floorAt = now;
      this.#floor = RETRY_FLOOR_PER_SEC;
    }
    if (this.#floor > 0) {
      this.#floor--;
      return true;
    }
    if (this.#retryTokens >= 1) {
      this.#retryTokens -= 1;
      return true;
    }
    return false;
  }


  get retries(): number {
    return this.#config.retries;
  }

  onStart(slot: number): void {
    this.inFlight++;
    if (this.#retryTokens < RETRY_TOKEN_CAP) this.#retryTokens += this.#retryRatio;
    this.table.acquire(slot);
    this.table.add(C.REQUESTS, slot, 1);
  }

  /** A retry moves the request to another backend: in-flight follows it, and both are counted. */
  moveSlot(from: number, to: number): void {
    this.table.release(from);
    this.table.add(C.RETRIES, from, 1);
    this.table.acquire(to);
    this.table.add(C.REQUESTS, to, 1);
  }

  /**
   * Response head arrived after `ms` of upstream time: one latency sample for peak EWMA and one
   * outcome for outlier detection. A 5xx is sampled as a penalty, never as its (fast) latency.
   */
  onResponseStart(slot: number, ms: number, status: number): void {
    const now = this.table.now();
    if (status >= 500) {
      recordFailure(this.table, slot, now, this.#config.ewmaDecayMs, this.#penaltyUs);
      recordServiceFailure(this.table, slot, now, this.#penaltyUs);
      if (this.#outliers.onFailure(slot, '5xx', now)) this.#logEjection(slot, '5xx');
    } else {
      recordLatency(this.table, slot, ms * 1000, now, this.#config.ewmaDecayMs);
      // In flight now still counts this request: the concurrency the sample was taken at.
      recordService(this.table, slot, ms * 1000, this.table.inFlight(slot), now);
      this.#outliers.onSuccess(slot);
    }
  }

  onUpstreamError(slot: number, err: UpstreamError): void {
    const column = ERROR_COLUMN[err.kind];
    if (column !== undefined) {
      this.table.add(column, slot, 1);
      const now = this.table.now();
      recordFailure(this.table, slot, now, this.#config.ewmaDecayMs, this.#penaltyUs);
      recordServiceFailure(this.table, slot, now, this.#penaltyUs);
      // Connect failures, resets and timeouts all say "this backend is not answering".
      if (err.kind !== 'protocol' && this.#outliers.onFailure(slot, 'connect', now)) this.#logEjection(slot, err.kind);
    }
    // At most one line per backend per second: a dead backend under load must not flood the log.
    const t = Date.now();
    const last = this.#lastErrorLog.get(slot);
    if (last === undefined || t - last.at >= 1000) {
      const pool = this.pools[slot];
      this.#log.warn(
        { backend: pool ? `${pool.host}:${pool.port}` : slot, kind: err.kind, err: err.message, suppressed: last?.suppressed ?? 0 },
        'upstream error',
      );
      this.#lastErrorLog.set(slot, { at: t, suppressed: 0 });
    } else {
      last.suppressed++;
    }
  }

  /** A bug caught at the request handler (see forward.ts `handle`): logged, at most once a second. */
  onInternalError(err: Error): void {
    const t = Date.now();
    if (t - this.#lastInternalLog < 1000) return;
    this.#lastInternalLog = t;
    this.#log.error({ err: err.message, stack: err.stack }, 'internal error in the request path');
  }

  #logEjection(slot: number, reason: string): void {
    const pool = this.pools[slot];
    this.#log.warn({ backend: pool ? `${pool.host}:${pool.port}` : slot, reason, ejections: this.table.get(C.EJECTIONS, slot) }, 'backend ejected');
  }

  /** Exactly once per request that took a slot. */
  onDone(slot: number, status: number, totalMs: number, upstreamMs: number): void {
    this.table.release(slot);
    this.latency.record(slot, totalMs, upstreamMs);
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

  /**
   * Crash: stop the sweep and destroy every upstream connection, busy ones and those of retired
   * pools included, so no backend can keep the dying thread alive by keeping a connection open.
   */
  abort(): void {
    clearInterval(this.#timer);
    for (const pool of this.pools) pool?.destroyAll();
    for (const pool of this.#retired) pool.destroyAll();
    this.#retired.clear();
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
    this.#outliers.setMembers(backends.map((b) => b.slot));
    return createPolicy(c.balancer, this.table, backends, options);
  }

  /**
   * Close the pools of backends that left, once the new pools and policy are installed: requests
   * queued on a closing pool are re-picked, and must find the new membership, not the old one.
   * Their busy connections still finish their exchanges, so the sweep keeps watching them.
   */
  #retire(old: readonly (Pool | undefined)[]): void {
    for (let slot = 0; slot < old.length; slot++) {
      const pool = old[slot];
      if (pool && this.pools[slot] !== pool) {
        this.#retired.add(pool);
        pool.close();
      }
    }
  }

  #sweep(): void {
    const now = this.table.now();
    for (const pool of this.pools) pool?.sweep(now);
    for (const pool of this.#retired) {
      if (pool.size === 0) this.#retired.delete(pool);
      else pool.sweep(now);
    }
  }
}

/** The value of cookie `name` in a Cookie header, or ''. */
function cookieValue(header: string, name: string): string {
  if (header === '') return '';
  let i = 0;
  while (i < header.length) {
    let end = header.indexOf(';', i);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', i);
    if (eq > 0 && eq < end && header.slice(i, eq).trim() === name) return header.slice(eq + 1, end).trim();
    i = end + 1;
  }
  return '';
}
