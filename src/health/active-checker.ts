// Active health checks, run once on the main thread (never per worker): each backend is probed
// every interval (±10% jitter so checks of many backends, and of many Sluice hosts, do not line
// up), and the result is written into the shared table's HEALTH column, which every worker's
// balancer reads. The checker owns HEALTH; it also ends outlier ejections that a check disproves.
//
// States (HEALTH column in brackets):
//   unchecked  checks are off                                      [UNKNOWN: available]
//   pending    new backend, no passing check yet                   [UNHEALTHY: no traffic]
//   unknown    was serving when checks were turned on; no result   [UNKNOWN: available]
//   healthy                                                         [HEALTHY]
//   unhealthy  unhealthyThreshold failures in a row                 [UNHEALTHY]
// A new backend is "pending", not "unknown", so it is checked before it gets traffic. The table
// has no pending value, so two columns say it: HEALTH is UNHEALTHY (not available to any policy),
// and until the first check has a result WEIGHT is held at 0 as well, which keeps the backend out
// even of panic mode (a swap to a larger set would otherwise look like "too few healthy" and
// spread traffic over backends nobody has checked; Envoy excludes such hosts the same way). After
// that first result the weight is back and the backend is an ordinary healthy or unhealthy one,
// panic mode included. One pass makes a pending backend healthy; an unhealthy one needs
// healthyThreshold passes in a row.
//
// Pools: every backend is checked with its own pool's settings (mode, path, expect, timing,
// thresholds); the options given without a pool are the default for backends of a pool that has
// none (the single-pool case). A backend is one (pool, upstream) slot, so the same address in two
// pools is two entries, checked separately, each on its pool's terms.

import type { Logger } from 'pino';
import type { PoolSettings, StatusRange } from '../model/pool.js';
import type { Backend } from '../model/upstream.js';
import { C, Health, ageOf, cell, toStamp } from '../state/layout.js';
import { resetLatency } from '../balancer/ewma.js';
import type { SharedTable } from '../state/table.js';
import { ejectionMs, outlierOptions, type OutlierOptions } from './outlier.js';
import type { Probe, ProbeResult } from './probe.js';
import { httpProbe } from './probe-http.js';
import type { UpstreamTrust } from '../upstream/tls-options.js';
import { probeTcp } from './probe-tcp.js';

/** ±10% of the interval: enough to spread checks apart, small enough to keep the interval's meaning. */
const JITTER = 0.1;

export type HealthMode = 'off' | 'tcp' | 'http';
export type HealthState = 'unchecked' | 'pending' | 'unknown' | 'healthy' | 'unhealthy';

export interface HealthOptions {
  readonly mode: HealthMode;
  /** HTTP mode: request path and the statuses that pass. */
  readonly path: string;
  readonly expect: readonly StatusRange[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Outlier settings: a passing check ends an ejection only when it disproves its cause. */
  readonly outlier: OutlierOptions;
  /** The pool's trust for https:// backends (tls.ca / tls.insecure): checks trust what requests do. */
  readonly trust: UpstreamTrust;
}

/**
 * The rule: off when SLUICE_HEALTH_CHECK=off; otherwise HTTP when SLUICE_HEALTH_PATH is set, else
 * TCP. `config` is a Config (the single-pool case) or a resolved pool (health.enabled, health.path).
 */
export function healthOptions(config: PoolSettings): HealthOptions {
  return {
    mode: config.healthCheck === 'off' ? 'off' : config.healthPath === '' ? 'tcp' : 'http',
    trust: { upstreamCa: config.upstreamCa, upstreamInsecure: config.upstreamInsecure },
    path: config.healthPath,
    expect: config.healthExpect,
    intervalMs: config.healthIntervalMs,
    timeoutMs: config.healthTimeoutMs,
    healthyThreshold: config.healthyThreshold,
    unhealthyThreshold: config.unhealthyThreshold,
    outlier: outlierOptions(config),
  };
}

/** Each pool's options, by pool name (PoolConfig carries the Config field names). */
export function poolHealthOptions(pools: readonly (PoolSettings & { readonly name: string })[]): Map<string, HealthOptions> {
  return new Map(pools.map((p) => [p.name, healthOptions(p)]));
}

export interface CheckResult {
  /** Unix ms when the probe finished. */
  readonly at: number;
  readonly ok: boolean;
  /** Probe duration in milliseconds. */
  readonly ms: number;
  readonly detail: string;
}

/** One backend as the admin API shows it. */
export interface BackendHealth {
  readonly slot: number;
  readonly id: string;
  readonly url: string;
  readonly pool: string;
  /** The pool's check mode. */
  readonly mode: HealthMode;
  readonly state: HealthState;
  /** Passing / failing checks in a row. */
  readonly successes: number;
  readonly failures: number;
  readonly lastCheck: CheckResult | null;
  /** Unix ms of the last state change. */
  readonly since: number;
  /** Unix ms until which outlier detection has it ejected; 0 when it is not ejected. */
  readonly ejectedUntil: number;
}

interface Entry {
  backend: Backend;
  /** Its pool's options, and the probe they make (null when off). */
  options: HealthOptions;
  check: Probe | null;
  state: HealthState;
  /** WEIGHT is held at 0 until the first result; this is the weight to put back. */
  held: boolean;
  weight: number;
  successes: number;
  failures: number;
  last: CheckResult | null;
  since: number;
  timer: NodeJS.Timeout | null;
  probe: AbortController | null;
  /** Set once: no longer tracked (removed, or the checker stopped). */
  gone: boolean;
  /** Resolves at the first check result (or when the entry goes). */
  readonly first: Promise<void>;
  settle: () => void;
}

export class ActiveChecker {
  readonly #table: SharedTable;
  readonly #log: Logger;
  readonly #entries = new Map<number, Entry>();
  #options: HealthOptions;
  #pools: ReadonlyMap<string, HealthOptions>;
  #stopped = false;

  /** `options`: for backends of pools not in `pools` (the single-pool case passes no map). */
  constructor(table: SharedTable, options: HealthOptions, log: Logger, pools: ReadonlyMap<string, HealthOptions> = new Map()) {
    this.#table = table;
    this.#log = log;
    this.#options = options;
    this.#pools = pools;
  }

  /** The default options (those of a backend whose pool has none of its own). */
  get options(): HealthOptions {
    return this.#options;
  }

  /** The options `pool`'s backends are checked with. */
  optionsFor(pool: string): HealthOptions {
    return this.#pools.get(pool) ?? this.#options;
  }

  /** Whether checks run for the default options (mode is not off). */
  get enabled(): boolean {
    return this.#options.mode !== 'off';
  }

  /** Whether `pool`'s backends are checked. */
  enabledFor(pool: string): boolean {
    return this.optionsFor(pool).mode !== 'off';
  }

  /**
   * Follow a new membership. Precondition: called right after every Membership.assign, before
   * workers hear of it (assign writes weights; a backend still waiting for its first check has
   * its weight held at 0 again here). New backends are probed at once and, with checks on, kept
   * out of rotation until they pass; backends no longer listed stop being probed.
   */
  track(backends: readonly Backend[]): void {
    const listed = new Set<number>();
    for (const backend of backends) {
      listed.add(backend.slot);
      const known = this.#entries.get(backend.slot);
      if (known) {
        known.backend = backend;
        if (known.held) this.#hold(known);
        continue;
      }
      const options = this.optionsFor(backend.pool);
      const on = options.mode !== 'off';
      const entry = newEntry(backend, options, on ? 'pending' : 'unchecked');
      this.#entries.set(backend.slot, entry);
      // A slot may come back after removal with whatever HEALTH it had: set it either way.
      this.#table.set(C.HEALTH, backend.slot, on ? Health.UNHEALTHY : Health.UNKNOWN);
      if (on) {
        this.#hold(entry);
        this.#schedule(entry, 0);
      }
    }
    for (const [slot, entry] of this.#entries) {
      if (!listed.has(slot)) {
        this.#retire(entry);
        this.#entries.delete(slot);
      }
    }
  }

  /**
   * Resolves true once every slot in `slots` has had its first check result, or false after
   * `timeoutMs`. Untracked slots count as settled.
   */
  async settled(slots: readonly number[], timeoutMs: number): Promise<boolean> {
    const waits: Promise<void>[] = [];
    for (const slot of slots) {
      const entry = this.#entries.get(slot);
      if (entry && entry.last === null && !entry.gone && entry.options.mode !== 'off') waits.push(entry.first);
    }
    if (waits.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(waits).then(() => true), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Reload, per backend on its pool's new options. Turning checks off marks the backend UNKNOWN
   * (available); turning them on keeps a serving backend available ("unknown") until its checks
   * say otherwise. New timing applies from the next check, rescheduled on the new interval.
   * Precondition: called before track() with a membership that has new pools, so their backends
   * start on their own options.
   */
  reconfigure(options: HealthOptions, pools: ReadonlyMap<string, HealthOptions> = new Map()): void {
    this.#options = options;
    this.#pools = pools;
    const switched = new Map<string, HealthMode>();
    for (const entry of this.#entries.values()) {
      const wasOn = entry.options.mode !== 'off';
      // A backend of a pool the new configuration drops keeps its options until track() retires it
      // (during a two-step swap it still serves), rather than switching to the defaults.
      const pool = entry.backend.pool;
      if (pools.size > 0 && !pools.has(pool)) continue;
      entry.options = this.optionsFor(pool);
      entry.check = probeFor(entry.options);
      const on = entry.options.mode !== 'off';
      if (wasOn !== on) switched.set(entry.backend.pool, entry.options.mode);
      if (wasOn && on) {
        // A probe in flight finishes and schedules the next on the new interval; a waiting one
        // is moved onto it now (an hour-long interval shortened to seconds must not wait an hour).
        if (entry.timer === null) continue;
        this.#cancel(entry);
        this.#schedule(entry, entry.last === null ? 0 : this.#interval(entry));
      } else if (on) {
        this.#setState(entry, 'unknown');
        this.#schedule(entry, 0);
      } else if (wasOn) {
        this.#cancel(entry);
        this.#release(entry);
        this.#setState(entry, 'unchecked');
        entry.successes = 0;
        entry.failures = 0;
        this.#table.set(C.HEALTH, entry.backend.slot, Health.UNKNOWN);
      }
    }
    for (const [pool, mode] of switched) this.#log.info({ pool, mode }, mode === 'off' ? 'health checks off' : 'health checks on');
  }

  /** Per-backend state, by slot. */
  snapshot(): BackendHealth[] {
    const out: BackendHealth[] = [];
    for (const e of this.#entries.values()) {
      const now = this.#table.now();
      const ejectedFor = -ageOf(this.#table.get(C.EJECTED_UNTIL, e.backend.slot), now);
      out.push({
        slot: e.backend.slot,
        id: e.backend.id,
        url: e.backend.upstream.url,
        pool: e.backend.pool,
        mode: e.options.mode,
        state: e.state,
        successes: e.successes,
        failures: e.failures,
        lastCheck: e.last,
        since: e.since,
        ejectedUntil: ejectedFor > 0 ? this.#table.epoch + now + ejectedFor : 0,
      });
    }
    return out.sort((a, b) => a.slot - b.slot);
  }

  /** Stop every probe; pending ones are aborted. */
  stop(): void {
    this.#stopped = true;
    for (const entry of this.#entries.values()) this.#retire(entry);
    this.#entries.clear();
  }

  #schedule(entry: Entry, delayMs: number): void {
    if (this.#stopped || entry.gone) return;
    entry.timer = setTimeout(() => void this.#run(entry), delayMs);
    // The checker never keeps the process alive by itself.
    entry.timer.unref();
  }

  #interval(entry: Entry): number {
    const base = entry.options.intervalMs;
    return Math.max(1, Math.round(base * (1 - JITTER + 2 * JITTER * Math.random())));
  }

  async #run(entry: Entry): Promise<void> {
    entry.timer = null;
    const probe = entry.check;
    if (probe === null || entry.gone) return;
    const controller = new AbortController();
    entry.probe = controller;
    const startedAt = this.#table.now();
    const started = performance.now();
    let result: ProbeResult;
    try {
      result = await probe(entry.backend.upstream, entry.options.timeoutMs, controller.signal);
    } catch (err) {
      // Probes report failures as results; a throw is a bug, and must not stop this backend's checks.
      result = { ok: false, detail: `probe error: ${(err as Error).message}` };
    }
    if (entry.probe !== controller) return; // cancelled: reconfigured, removed or stopped meanwhile
    entry.probe = null;
    this.#record(entry, result, performance.now() - started, startedAt);
    this.#schedule(entry, this.#interval(entry));
  }

  #record(entry: Entry, result: ProbeResult, ms: number, startedAt: number): void {
    const o = entry.options;
    const slot = entry.backend.slot;
    // A failed first result: HEALTH stays UNHEALTHY (as while pending) and the weight comes back,
    // so the backend is an ordinary unhealthy one, a candidate in panic mode only.
    if (!result.ok) this.#release(entry);
    entry.last = { at: Date.now(), ok: result.ok, ms: Math.round(ms * 10) / 10, detail: result.detail };
    const where = { backend: entry.backend.id, pool: entry.backend.pool, url: entry.backend.upstream.url, detail: result.detail };
    if (result.ok) {
      entry.failures = 0;
      entry.successes++;
      const from = entry.state;
      if (from === 'pending' || from === 'unknown' || (from === 'unhealthy' && entry.successes >= o.healthyThreshold)) {
        this.#setState(entry, 'healthy');
        this.#table.set(C.HEALTH, slot, Health.HEALTHY);
        this.#release(entry);
        // Slow start for a backend that was getting no traffic; one that was serving carries on.
        if (from !== 'unknown') this.#table.set(C.SLOW_START_AT, slot, toStamp(this.#table.now()));
        // Its latency estimate is made of failure penalties from while it was down: start afresh.
        if (from === 'unhealthy') resetLatency(this.#table, slot);
        if (from === 'pending') this.#log.info(where, 'new backend passed its first health check');
        else if (from === 'unhealthy') this.#log.info({ ...where, passes: entry.successes }, 'backend is healthy again');
      }
      this.#endDisprovedEjection(entry, startedAt);
    } else {
      entry.successes = 0;
      entry.failures++;
      this.#log.debug({ ...where, failures: entry.failures }, 'health check failed');
      if (entry.failures >= o.unhealthyThreshold) {
        if (entry.state === 'healthy' || entry.state === 'unknown') {
          this.#setState(entry, 'unhealthy');
          this.#table.set(C.HEALTH, slot, Health.UNHEALTHY);
          this.#log.warn({ ...where, failures: entry.failures }, 'backend is unhealthy');
        } else if (entry.state === 'pending') {
          // Already out of rotation (HEALTH is UNHEALTHY while pending): only the name changes.
          this.#setState(entry, 'unhealthy');
          this.#log.warn({ ...where, failures: entry.failures }, 'new backend is failing its health checks');
        }
      }
    }
    entry.settle();
  }

  /**
   * "A passing active check brings it back": end an outlier ejection when this check, started
   * after the ejection began, disproves its cause. An HTTP check that passes disproves both 5xx
   * streaks and connect failures; a TCP connect only disproves connect failures (a backend that
   * answers 500 to everything still accepts connections). The ejection time is set to now rather
   * than 0 so outlier detection still sees when the last ejection ended (its back-off grows).
   */
  #endDisprovedEjection(entry: Entry, startedAt: number): void {
    const t = this.#table;
    const slot = entry.backend.slot;
    const until = t.get(C.EJECTED_UNTIL, slot);
    const now = t.now();
    const left = -ageOf(until, now); // ms until it ends (a time stamp: see layout.ts, "Time")
    if (left <= 0) return;
    const o = entry.options;
    const for5xx = o.outlier.consecutive5xx > 0 && t.get(C.CONSEC_5XX, slot) >= o.outlier.consecutive5xx;
    if (for5xx && o.mode !== 'http') return;
    const began = now + left - ejectionMs(t.get(C.EJECTIONS, slot), o.outlier);
    if (startedAt < began) return; // in flight when it was ejected: says nothing about after
    const stamp = toStamp(now);
    if (Atomics.compareExchange(t.words, cell(C.EJECTED_UNTIL, slot), until, stamp) !== until) return;
    t.set(C.CONSEC_FAIL, slot, 0);
    if (o.mode === 'http') t.set(C.CONSEC_5XX, slot, 0);
    t.set(C.SLOW_START_AT, slot, stamp);
    resetLatency(t, slot);
    this.#log.info({ backend: entry.backend.id, url: entry.backend.upstream.url }, 'ejection ended by a passing health check');
  }

  /** Keep a backend waiting for its first check out of every pick, panic included. */
  #hold(entry: Entry): void {
    const slot = entry.backend.slot;
    const weight = this.#table.get(C.WEIGHT, slot);
    if (weight > 0) entry.weight = weight;
    entry.held = true;
    this.#table.set(C.WEIGHT, slot, 0);
  }

  #release(entry: Entry): void {
    if (!entry.held) return;
    entry.held = false;
    this.#table.set(C.WEIGHT, entry.backend.slot, entry.weight);
  }

  #setState(entry: Entry, state: HealthState): void {
    if (entry.state === state) return;
    entry.state = state;
    entry.since = Date.now();
  }

  #cancel(entry: Entry): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    entry.probe?.abort();
    entry.probe = null;
  }

  #retire(entry: Entry): void {
    this.#cancel(entry);
    entry.gone = true;
    entry.settle();
  }
}

function probeFor(options: HealthOptions): Probe | null {
  if (options.mode === 'off') return null;
  return options.mode === 'http' ? httpProbe(options.path, options.expect, options.trust) : probeTcp;
}

function newEntry(backend: Backend, options: HealthOptions, state: HealthState): Entry {
  let settle!: () => void;
  const first = new Promise<void>((resolve) => (settle = resolve));
  return {
    backend,
    options,
    check: probeFor(options),
    state,
    held: false,
    weight: 0,
    successes: 0,
    failures: 0,
    last: null,
    since: Date.now(),
    timer: null,
    probe: null,
    gone: false,
    first,
    settle,
  };
}
