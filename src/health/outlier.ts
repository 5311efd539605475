// Passive outlier detection, run by every worker on real traffic. Streaks of 5xx responses and of
// connect failures are counted per backend in the shared table (so all workers add to one streak),
// and a backend whose streak reaches its threshold is ejected: EJECTED_UNTIL = now + base × k,
// capped, where k counts its recent ejections (Envoy's outlier detection works the same way).
//
// Cross-thread rules: the counters are Atomics.add/store; the ejection itself is one
// compareExchange on EJECTED_UNTIL, so when several workers reach the threshold together exactly
// one ejects (first writer wins) and only the winner writes EJECTIONS and SLOW_START_AT.
//
// After an ejection the triggering counter is left at or above its threshold: the backend is on
// probation, one more failure of that kind ejects it again (for longer) and one success clears it.
// The active checker reads that counter to tell why a backend was ejected (see active-checker.ts).
//
// Time is passed in (`now`, table milliseconds), never read here, so tests drive a fake clock.
// EJECTED_UNTIL and SLOW_START_AT are time stamps, compared with ageOf (layout.ts, "Time").

import type { PoolSettings } from '../model/pool.js';
import { C, H, ageOf, cell, toStamp } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { resetService } from '../balancer/service-time.js';

/** What went wrong with one request, as far as outlier detection cares. */
export type OutlierFailure = '5xx' | 'connect';

export interface OutlierOptions {
  /** Consecutive 5xx responses that eject; 0 = never for 5xx. */
  readonly consecutive5xx: number;
  /** Consecutive connect failures that eject; 0 = never for connect failures. */
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** Share of the live pool that may be ejected at once (at least one backend); 0 = never eject. */
  readonly maxEjectionPercent: number;
}

/** `config` may be a Config or a resolved pool (the same field names). */
export function outlierOptions(config: PoolSettings): OutlierOptions {
  return {
    consecutive5xx: config.outlierConsecutive5xx,
    consecutiveFailures: config.outlierConsecutiveFailures,
    baseEjectionMs: config.outlierBaseEjectionMs,
    maxEjectionMs: config.outlierMaxEjectionMs,
    maxEjectionPercent: config.outlierMaxEjectionPercent,
  };
}

/** Length of the k-th ejection in a row (k >= 1): base × k, at most max. */
export function ejectionMs(k: number, options: OutlierOptions): number {
  return Math.min(options.baseEjectionMs * Math.max(1, k), options.maxEjectionMs);
}

/**
 * Backends that may be ejected at once out of `live`: the percentage rounded down, but at least
 * one, so small pools can still shed their one bad backend.
 */
export function ejectionCap(live: number, percent: number): number {
  if (percent <= 0 || live <= 0) return 0;
  return Math.max(1, Math.floor((live * percent) / 100));
}

export class OutlierDetector {
  readonly #table: SharedTable;
  readonly #words: Int32Array;
  readonly #consec5xx: number;
  readonly #consecFail: number;
  readonly #ejected: number;
  readonly #ejections: number;
  readonly #slowStart: number;
  readonly #weight: number;
  #options: OutlierOptions;
  #members: Int32Array | null = null;

  constructor(table: SharedTable, options: OutlierOptions) {
    this.#table = table;
    this.#words = table.words;
    this.#consec5xx = cell(C.CONSEC_5XX, 0);
    this.#consecFail = cell(C.CONSEC_FAIL, 0);
    this.#ejected = cell(C.EJECTED_UNTIL, 0);
    this.#ejections = cell(C.EJECTIONS, 0);
    this.#slowStart = cell(C.SLOW_START_AT, 0);
    this.#weight = cell(C.WEIGHT, 0);
    this.#options = options;
  }

  /** Reload: new thresholds apply to the next outcome; streaks already counted are kept. */
  setOptions(options: OutlierOptions): void {
    this.#options = options;
  }

  /**
   * A response below 500 from `slot`: both streaks end. Loads first and stores only when needed,
   * so the common case does not write a cache line every worker reads.
   */
  onSuccess(slot: number): void {
    const w = this.#words;
    if (Atomics.load(w, this.#consec5xx + slot) !== 0) Atomics.store(w, this.#consec5xx + slot, 0);
    if (Atomics.load(w, this.#consecFail + slot) !== 0) Atomics.store(w, this.#consecFail + slot, 0);
  }

  /**
   * A 5xx response or a connect failure from `slot` at table time `now`. Returns true when this
   * call ejected the backend. A 5xx ends the connect-failure streak (the backend did accept and
   * answer); a connect failure leaves the 5xx streak alone.
   */
  onFailure(slot: number, kind: OutlierFailure, now: number): boolean {
    const w = this.#words;
    const o = this.#options;
    if (kind === '5xx') {
      if (Atomics.load(w, this.#consecFail + slot) !== 0) Atomics.store(w, this.#consecFail + slot, 0);
      const n = Atomics.add(w, this.#consec5xx + slot, 1) + 1;
      return o.consecutive5xx > 0 && n >= o.consecutive5xx && this.#eject(slot, this.#consec5xx, now);
    }
    const n = Atomics.add(w, this.#consecFail + slot, 1) + 1;
    return o.consecutiveFailures > 0 && n >= o.consecutiveFailures && this.#eject(slot, this.#consecFail, now);
  }

  /** Whether `slot` is ejected at `now`. */
  ejected(slot: number, now: number): boolean {
    return ageOf(Atomics.load(this.#words, this.#ejected + slot), now) < 0;
  }

  /**
   * Eject `slot` unless it already is, or the cap is reached (then its streak restarts so the cap
   * is not rescanned on every further failure). `counter` is the streak's base word index.
   */
  #eject(slot: number, counter: number, now: number): boolean {
    const w = this.#words;
    const o = this.#options;
    const prev = Atomics.load(w, this.#ejected + slot);
    const sincePrev = ageOf(prev, now);
    if (sincePrev < 0) return false; // already out: a straggler that was in flight when it was ejected
    const live = this.#live();
    const cap = ejectionCap(live, o.maxEjectionPercent);
    if (this.#ejectedCount(now) >= cap) {
      Atomics.store(w, counter + slot, 0);
      return false;
    }
    // The multiplier grows with ejections in a row and starts over once the backend has stayed in
    // for a whole maximum ejection time. `prev` is when the last ejection ended (0: never ejected,
    // or so long ago the stamp was retired: its age is Infinity).
    const quiet = sincePrev >= o.maxEjectionMs;
    const k = quiet ? 1 : Atomics.load(w, this.#ejections + slot) + 1;
    const until = toStamp(now + ejectionMs(k, o));
    if (Atomics.compareExchange(w, this.#ejected + slot, prev, until) !== prev) return false; // another worker won
    // Two workers ejecting two different backends at once can both pass the check above. Count
    // again now that ours is visible; over the cap, back out (both may: never more than the cap).
    if (this.#ejectedCount(now) > cap) {
      Atomics.compareExchange(w, this.#ejected + slot, until, prev);
      Atomics.store(w, counter + slot, 0);
      return false;
    }
    Atomics.store(w, this.#ejections + slot, k);
    // Slow start (when configured) begins when the ejection ends, not when it starts.
    Atomics.store(w, this.#slowStart + slot, until);
    // When it comes back it is judged afresh, not by the failure penalties that got it ejected.
    Atomics.store(w, cell(C.EWMA_US, slot), 0);
    resetService(this.#table, slot);
    return true;
  }

  /** Slots in the table that take traffic (weight > 0): the pool the cap is a share of. */
  /**
   * The pool the ejection share is taken of: this worker's current members (set on every
   * membership change). Until set, every slot in use counts. Members an operator set to weight 0
   * are not counted either way.
   */
  setMembers(slots: readonly number[]): void {
    this.#members = Int32Array.from(slots);
  }

  #live(): number {
    const w = this.#words;
    let n = 0;
    for (const slot of this.#slotsInPool()) if (Atomics.load(w, this.#weight + slot) > 0) n++;
    return n;
  }
  #ejectedCount(now: number): number {
    const w = this.#words;
    let n = 0;
    for (const slot of this.#slotsInPool()) {
      if (Atomics.load(w, this.#weight + slot) > 0 && ageOf(Atomics.load(w, this.#ejected + slot), now) < 0) n++;
    }
    return n;
  }
  #slotsInPool(): Iterable<number> | Int32Array {
    if (this.#members !== null) return this.#members;
    const used = this.#table.header(H.SLOTS_USED);
    const all = new Int32Array(used);
    for (let i = 0; i < used; i++) all[i] = i;
    return all;
  }

}
