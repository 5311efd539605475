// The shared rate-limit table: GCRA (the generic cell rate algorithm, ITU-T I.371; the token
// bucket seen from the time side) over fixed-size open addressing in the SharedArrayBuffer
// (layout.ts, "Rate-limit buckets", has the entry format). Every worker runs the same
// compareExchange loop on the same words, so a limit admits the same count whether 1 or 64
// threads serve it. Nothing here allocates.
//
// GCRA, with T the emission interval (period / count) and L = burst × T the bucket depth:
//   tat' = max(tat, now) + T; admit iff tat' - now <= L; store tat' (only when admitted).
// From a full bucket (tat <= now) it admits `burst` requests at once, then one per T.

import { performance } from 'node:perf_hooks';
import { R, RATE_ENTRIES, RATE_PROBE, rateCell } from '../state/layout.js';

/** Unit choice: a limit whose bucket depth fits in 2^29 µs (~9 min) counts in µs, else in ms. */
const MAX_DEPTH_UNITS = 2 ** 29;
/** Margin added to EXPIRES so that entries are never judged full a second early. */
const EXPIRY_MARGIN_S = 1;

/** One configured limit in table form: its seeds and GCRA constants, in its own unit. */
export class RateLimitParams {
  /** Emission interval and bucket depth, in units. */
  readonly interval: number;
  readonly depth: number;
  /** 1000 (µs) or 1 (ms) units per ms. */
  readonly unitsPerMs: number;
  readonly seed1: number;
  readonly seed2: number;

  constructor(identity: string, count: number, periodMs: number, burst: number) {
    const usDepth = (periodMs / count) * burst * 1000;
    this.unitsPerMs = usDepth + (periodMs / count) * 1000 <= MAX_DEPTH_UNITS ? 1000 : 1;
    this.interval = (periodMs / count) * this.unitsPerMs;
    this.depth = this.interval * burst;
    // The limit's identity (route, position, rate) seeds both hashes: a reload that changes a
    // limit starts it from full buckets instead of reading another rate's state.
    this.seed1 = fnv(identity, 0x811c9dc5);
    this.seed2 = fnv(identity, 0x01000193 ^ 0x5bd1e995);
  }
}

/** Largest bucket depth a limit may have: 2^29 ms (about 6.2 days). --check refuses more. */
export const MAX_DEPTH_MS = MAX_DEPTH_UNITS;

/** FNV-1a over UTF-16 code units from a seed state. */
export function fnv(text: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** A second hash with different mixing (murmur3 finaliser per code unit), independent of fnv. */
function mix(text: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= text.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h;
}

export type Clock = () => number;

/** Wall-clock ms with sub-ms resolution, the same in every thread (timeOrigin + monotonic now). */
export const preciseNow: Clock = () => performance.timeOrigin + performance.now();

export class RateTable {
  readonly #words: Int32Array;
  /** Unix ms the table seconds count from (the shared table's epoch). */
  readonly #epoch: number;
  readonly #clock: Clock;
  /** After take(): when a refused request may retry, and what the bucket has left (whole requests). */
  retryAfterMs = 0;
  remaining = 0;
  /** Entries evicted while still useful (the table was full around a key): a sign it is too small. */
  evictions = 0;

  constructor(words: Int32Array, epoch: number, clock: Clock = preciseNow) {
    this.#words = words;
    this.#epoch = epoch;
    this.#clock = clock;
  }

  /**
   * Admit one request for `value` under limit `p`, or refuse it. Either way sets retryAfterMs
   * (0 when admitted) and remaining.
   */
  take(p: RateLimitParams, value: string): boolean {
    return this.takeN(p, value, 1) === 1;
  }

  /**
   * Take up to `n` requests' worth at once (the Redis lease refills the local table this way, and
   * the local fallback uses n = 1). Returns how many were taken: n, or 0.
   */
  takeN(p: RateLimitParams, value: string, n: number): number {
    const w = this.#words;
    const ms = this.#clock() - this.#epoch;
    const now = Math.floor(ms * p.unitsPerMs) | 0;
    const nowSec = Math.floor(ms / 1000);
    const entry = this.#entry(p, value, nowSec);
    const tatCell = rateCell(entry, R.TAT);
    const cost = p.interval * n;
    for (;;) {
      const stored = Atomics.load(w, tatCell);
      // An entry past its EXPIRES is a full bucket, whatever its (possibly wrapped) TAT says.
      const fresh = Atomics.load(w, rateCell(entry, R.EXPIRES)) > nowSec;
      const ahead = fresh ? Math.max(0, (stored - now) | 0) : 0;
      if (ahead + cost > p.depth) {
        // Refused: retry when tat - now has fallen to depth - interval.
        this.retryAfterMs = (ahead + p.interval - p.depth) / p.unitsPerMs;
        this.remaining = 0;
        return 0;
      }
      const next = (now + ahead + Math.ceil(cost)) | 0;
      if (Atomics.compareExchange(w, tatCell, stored, next) !== stored) continue;
      // EXPIRES only grows while the entry is live; a stale smaller write is fixed by the next take.
      const expires = nowSec + Math.ceil((ahead + cost) / p.unitsPerMs / 1000) + EXPIRY_MARGIN_S;
      const ec = rateCell(entry, R.EXPIRES);
      let old = Atomics.load(w, ec);
      while (old < expires) {
        const seen = Atomics.compareExchange(w, ec, old, expires);
        if (seen === old) break;
        old = seen;
      }
      this.retryAfterMs = 0;
      this.remaining = Math.floor((p.depth - ahead - cost) / p.interval);
      return n;
    }
  }

  /** The entry holding `value` for `p`, claimed if absent. */
  #entry(p: RateLimitParams, value: string, nowSec: number): number {
    const w = this.#words;
    let k1 = fnv(value, p.seed1);
    if (k1 === 0) k1 = 1;
    const k2 = mix(value, p.seed2);
    const home = (k1 ^ (k1 >>> 16)) & (RATE_ENTRIES - 1) & ~(RATE_PROBE - 1);
    for (;;) {
      let empty = -1;
      let victim = -1;
      let victimExpires = Infinity;
      for (let i = 0; i < RATE_PROBE; i++) {
        const e = home + i;
        const key = Atomics.load(w, rateCell(e, R.KEY));
        if (key === k1 && Atomics.load(w, rateCell(e, R.CHECK)) === k2) return e;
        if (key === 0) {
          if (empty < 0) empty = e;
          continue;
        }
        const expires = Atomics.load(w, rateCell(e, R.EXPIRES));
        if (expires < victimExpires) {
          victim = e;
          victimExpires = expires;
        }
      }
      const target = empty >= 0 ? empty : victim;
      const expected = empty >= 0 ? 0 : Atomics.load(w, rateCell(target, R.KEY));
      if (empty < 0 && victimExpires > nowSec) this.evictions++;
      // Make the entry read as a full bucket before it carries the new key: EXPIRES in the past.
      Atomics.store(w, rateCell(target, R.EXPIRES), 0);
      if (Atomics.compareExchange(w, rateCell(target, R.KEY), expected, k1) !== expected) continue;
      Atomics.store(w, rateCell(target, R.CHECK), k2);
      // TAT is left as it was: with EXPIRES 0 it reads as a full bucket until the first take.
      // Two workers inserting the same new key at once may claim two entries: the lower one wins,
      // the other is given back (each checks for a lower twin after claiming).
      for (let i = 0; home + i < target; i++) {
        const e = home + i;
        if (Atomics.load(w, rateCell(e, R.KEY)) === k1 && Atomics.load(w, rateCell(e, R.CHECK)) === k2) {
          Atomics.compareExchange(w, rateCell(target, R.KEY), k1, 0);
          return e;
        }
      }
      return target;
    }
  }
}
