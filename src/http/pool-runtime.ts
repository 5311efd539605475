// One pool as a worker runs it: its members, its policy (built on change, only read per request),
// its outlier detector, its retry budget, and the settings derived once from its configuration.
// The upstream connection pools themselves are per backend slot and live in the context, because a
// slot outlives the pool object a reload replaces.

import type { Logger } from 'pino';
import type { HttpRequest } from 'uWebSockets.js';
import type { PoolConfig } from '../model/pool.js';
import type { Backend } from '../model/upstream.js';
import { policyOptions, type PickContext, type Policy } from '../balancer/policy.js';
import { createPolicy } from '../balancer/registry.js';
import { recordFailure, recordLatency } from '../balancer/ewma.js';
import { recordService, recordServiceFailure } from '../balancer/service-time.js';
import { NO_HASH, hashString } from '../balancer/hash.js';
import { C, P, poolCell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { OutlierDetector, outlierOptions } from '../health/outlier.js';
import type { UpstreamError } from '../upstream/errors.js';

/** Retries a second always allowed per pool per worker, whatever the budget (Linkerd's min retries/s). */
const RETRY_FLOOR_PER_SEC = 3;
/** Retry tokens a pool may bank per worker: a long quiet spell must not fund an unbounded burst. */
const RETRY_TOKEN_CAP = 1000;
/** Largest latency penalty a failure records for peak EWMA. */
const FAILURE_PENALTY_MAX_MS = 1000;

const ERROR_COLUMN: Record<string, number> = {
  connect: C.ERR_CONNECT,
  timeout: C.ERR_TIMEOUT,
  reset: C.ERR_RESET,
  protocol: C.ERR_PROTOCOL,
};

export class PoolRuntime {
  readonly name: string;
  readonly settings: PoolConfig;
  readonly members: readonly Backend[];
  /** Whether the policy wants an affinity key (ring-hash, maglev): only then is one computed. */
  readonly needsHash: boolean;
  readonly #table: SharedTable;
  readonly #log: Logger;
  readonly #policy: Policy;
  readonly #outliers: OutlierDetector;
  readonly #pick: PickContext = { now: 0, exclude: -1, hash: NO_HASH };
  readonly #penaltyUs: number;
  readonly #retryRatio: number;
  #retryTokens = 0;
  #floor = 0;
  #floorAt = 0;
  /** Backend "host:port" per slot, for log lines. */
  readonly #names = new Map<number, string>();
  readonly #lastErrorLog = new Map<number, { at: number; suppressed: number }>();

  /**
   * `previous`: the runtime this one replaces (a reload), whose retry tokens carry over so a reload
   * under failure does not hand out a fresh budget.
   */
  constructor(table: SharedTable, settings: PoolConfig, members: readonly Backend[], poolIndex: number, seed: number, log: Logger, previous?: PoolRuntime) {
    this.name = settings.name;
    this.settings = settings;
    this.members = members;
    this.#table = table;
    this.#log = log;
    this.needsHash = settings.balancer === 'ring-hash' || settings.balancer === 'maglev';
    // A failure counts as a slow sample so errors never look fast, but capped: peak EWMA decays a
    // sample over the decay time, and a 15 s penalty would keep a recovered backend out for
    // minutes. Recovery events (health check passes, ejection) also reset the estimate.
    this.#penaltyUs = Math.min(settings.requestTimeoutMs, FAILURE_PENALTY_MAX_MS) * 1000;
    this.#retryRatio = settings.retryBudgetPercent / 100;
    if (previous !== undefined) this.#retryTokens = previous.#retryTokens;
    this.#outliers = new OutlierDetector(table, outlierOptions(settings));
    this.#outliers.setMembers(members.map((b) => b.slot));
    for (const b of members) this.#names.set(b.slot, `${b.upstream.host}:${b.upstream.port}`);
    this.#policy = createPolicy(settings.balancer, table, members, policyOptions(settings, seed, poolCell(P.RR_CURSOR, poolIndex)));
  }

  /** The request's affinity key per the pool's hash_key, or NO_HASH when it carries none. */
  hashOf(req: HttpRequest, clientIp: string): number {
    const key = this.settings.hashKey;
    if (key.kind === 'ip') return hashString(clientIp);
    if (key.kind === 'header') {
      const v = req.getHeader(key.name);
      return v === '' ? NO_HASH : hashString(v);
    }
    const v = cookieValue(req.getHeader('cookie'), key.name);
    return v === '' ? NO_HASH : hashString(v);
  }

  /**
   * Choose a backend slot, or -1. With max_requests_per_backend set, a backend at its cap is passed
   * over for another pick; -2 means every candidate tried was at its cap (circuit open).
   */
  pick(exclude: number, hash: number): number {
    const p = this.#pick;
    p.now = this.#table.now();
    p.exclude = exclude;
    p.hash = hash;
    const slot = this.#policy.pick(p);
    const cap = this.settings.maxRequestsPerBackend;
    if (cap <= 0 || slot < 0 || this.#table.inFlight(slot) < cap) return slot;
    p.exclude = slot;
    const other = this.#policy.pick(p);
    if (other >= 0 && other !== slot && this.#table.inFlight(other) < cap) return other;
    return -2;
  }

  /** A request started on this pool: it deposits its share of a retry. */
  deposit(): void {
    if (this.#retryTokens < RETRY_TOKEN_CAP) this.#retryTokens += this.#retryRatio;
  }

  /**
   * Retry budget (the token-bucket form Finagle and Linkerd use): every request deposits
   * retry_budget_percent/100 of a retry, every retry withdraws a whole one, and a floor of
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

  /**
   * Response head arrived after `ms` of upstream time: one latency sample for peak EWMA and one
   * outcome for outlier detection. A 5xx is sampled as a penalty, never as its (fast) latency.
   */
  onResponseStart(slot: number, ms: number, status: number): void {
    const now = this.#table.now();
    if (status >= 500) {
      recordFailure(this.#table, slot, now, this.settings.ewmaDecayMs, this.#penaltyUs);
      recordServiceFailure(this.#table, slot, now, this.#penaltyUs);
      if (this.#outliers.onFailure(slot, '5xx', now)) this.#logEjection(slot, '5xx');
    } else {
      recordLatency(this.#table, slot, ms * 1000, now, this.settings.ewmaDecayMs);
      // In flight now still counts this request: the concurrency the sample was taken at.
      recordService(this.#table, slot, ms * 1000, this.#table.inFlight(slot), now);
      this.#outliers.onSuccess(slot);
    }
  }

  onUpstreamError(slot: number, err: UpstreamError): void {
    const column = ERROR_COLUMN[err.kind];
    if (column !== undefined) {
      this.#table.add(column, slot, 1);
      const now = this.#table.now();
      recordFailure(this.#table, slot, now, this.settings.ewmaDecayMs, this.#penaltyUs);
      recordServiceFailure(this.#table, slot, now, this.#penaltyUs);
      // Connect failures, resets and timeouts all say "this backend is not answering".
      if (err.kind !== 'protocol' && this.#outliers.onFailure(slot, 'connect', now)) this.#logEjection(slot, err.kind);
    }
    // At most one line per backend per second: a dead backend under load must not flood the log.
    const t = Date.now();
    const last = this.#lastErrorLog.get(slot);
    if (last === undefined || t - last.at >= 1000) {
      this.#log.warn(
        { pool: this.name, backend: this.#names.get(slot) ?? slot, kind: err.kind, err: err.message, suppressed: last?.suppressed ?? 0 },
        'upstream error',
      );
      this.#lastErrorLog.set(slot, { at: t, suppressed: 0 });
    } else {
      last.suppressed++;
    }
  }

  #logEjection(slot: number, reason: string): void {
    this.#log.warn(
      { pool: this.name, backend: this.#names.get(slot) ?? slot, reason, ejections: this.#table.get(C.EJECTIONS, slot) },
      'backend ejected',
    );
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
