// The shared rate-limit table: GCRA (the generic cell rate algorithm, ITU-T I.371; the token
// bucket seen from the time side) over fixed-size open addressing in the SharedArrayBuffer
// (layout.ts, "Rate-limit buckets", has the entry format). Every worker runs the same
// compareExchange loop on the same words, so a limit admits the same count whether 1 or 64
// threads serve it. Nothing here allocates; only the first request of a new key takes a (per
// window, claim-only) lock.
//
// GCRA, with T the emission interval (period / count) and L = burst × T the bucket depth:
//   tat' = max(tat, now) + T; admit iff tat' - now <= L; store tat' (only when admitted).
// From a full bucket (tat <= now) it admits `burst` requests at once, then one per T.

import { performance } from 'node:perf_hooks';
import { R, RATE_ENTRIES, RATE_PROBE, rateCell, rateClaimCell } from '../state/layout.js';

/** Unit choice: a limit whose bucket depth fits in 2^29 µs (~9 min) counts in µs, else in ms. */
const MAX_DEPTH_UNITS = 2 ** 29;
/** sweep() moves TATs further behind now than this up to it: far inside the 35-minute µs window. */
const SWEEP_BEHIND_MS = 60_000;
/** How often each worker sweeps (behind + every = 3 minutes at most, still far inside the window). */
export const SWEEP_EVERY_MS = 120_000;
/** Margin added to EXPIRES (eviction only): a key is never evicted as idle before its bucket is full. */
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
    if (this.depth + this.interval > MAX_DEPTH_UNITS) throw new RangeError(`rate limit bucket deeper than ${MAX_DEPTH_UNITS} ms (the config check refuses this)`);
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

  /** Take `n` requests' worth at once, all or none. Returns n, or 0. */
  takeN(p: RateLimitParams, value: string, n: number): number {
    const w = this.#words;
    const ms = this.#clock() - this.#epoch;
    const now = Math.floor(ms * p.unitsPerMs) | 0;
    const nowSec = Math.floor(ms / 1000);
    const entry = this.#entry(p, value, nowSec, now);
    const tatCell = rateCell(entry, R.TAT);
    const cost = p.interval * n;
    for (;;) {
      const stored = Atomics.load(w, tatCell);
      // TAT alone says it all (serial arithmetic: sweep() keeps every TAT near now, so it never
      // wraps); reading a second word here would let two takes slip between the two reads.
      const ahead = Math.max(0, (stored - now) | 0);
      if (ahead + cost > p.depth) {
        // Refused: retry when tat - now has fallen to depth - interval.
        this.retryAfterMs = (ahead + p.interval - p.depth) / p.unitsPerMs;
        this.remaining = 0;
        return 0;
      }
      const next = (now + ahead + Math.ceil(cost)) | 0;
      if (Atomics.compareExchange(w, tatCell, stored, next) !== stored) continue;
      // EXPIRES (only for choosing what to evict) only grows while the entry is live.
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

  /**
   * Keep every TAT near now: one further in the past than SWEEP_BEHIND_MS is moved up to exactly
   * that far behind (the same full bucket), so serial arithmetic never reads a TAT from across a
   * 32-bit wrap (2^31 µs is 35 minutes). Every worker runs it every SWEEP_EVERY_MS; the
   * compareExchange makes concurrent sweeps and takes harmless. About 65 K entries: well under 1 ms.
   */
  sweep(): void {
    const w = this.#words;
    const ms = this.#clock() - this.#epoch;
    const nowUs = Math.floor(ms * 1000) | 0;
    const nowMs = Math.floor(ms) | 0;
    for (let e = 0; e < RATE_ENTRIES; e++) {
      const key = Atomics.load(w, rateCell(e, R.KEY));
      if (key === EMPTY || key === BUSY) continue;
      const inMs = (Atomics.load(w, rateCell(e, R.CHECK)) & 1) === 1;
      const now = inMs ? nowMs : nowUs;
      const floor = (now - SWEEP_BEHIND_MS * (inMs ? 1 : 1000)) | 0;
      const tat = Atomics.load(w, rateCell(e, R.TAT));
      if (((tat - floor) | 0) < 0) Atomics.compareExchange(w, rateCell(e, R.TAT), tat, floor);
    }
  }

  /**
   * The entry holding `value` for `p`, claimed if absent. Lookups take no lock. A claim holds the
   * window's claim word, looks again (another thread may have just claimed the key), then writes
   * the entry and publishes KEY last; an evicted entry is marked BUSY while it is rewritten, so
   * nobody matches its old key against the new key's words.
   */
  #entry(p: RateLimitParams, value: string, nowSec: number, now: number): number {
    const w = this.#words;
    let k1 = fnv(value, p.seed1);
    if (k1 === EMPTY || k1 === BUSY) k1 = 2;
    // CHECK's low bit says the entry's unit, for sweep(): 1 = ms, 0 = µs.
    const k2 = (mix(value, p.seed2) & ~1) | (p.unitsPerMs === 1 ? 1 : 0);
    const home = (k1 ^ (k1 >>> 16)) & (RATE_ENTRIES - 1) & ~(RATE_PROBE - 1);
    const found = find(w, home, k1, k2);
    if (found >= 0) return found;
    const lock = rateClaimCell(home);
    claim(w, lock);
    try {
      const again = find(w, home, k1, k2);
      if (again >= 0) return again;
      let target = -1;
      let victimExpires = Infinity;
      for (let i = 0; i < RATE_PROBE; i++) {
        const e = home + i;
        if (Atomics.load(w, rateCell(e, R.KEY)) === EMPTY) {
          target = e;
          victimExpires = -Infinity;
          break;
        }
        const expires = Atomics.load(w, rateCell(e, R.EXPIRES));
        if (expires < victimExpires) {
          target = e;
          victimExpires = expires;
        }
      }
      if (victimExpires > nowSec) this.evictions++;
      // A full bucket (TAT in the past), published by KEY last.
      Atomics.store(w, rateCell(target, R.KEY), BUSY);
      Atomics.store(w, rateCell(target, R.TAT), (now - 1) | 0);
      Atomics.store(w, rateCell(target, R.EXPIRES), nowSec);
      Atomics.store(w, rateCell(target, R.CHECK), k2);
      Atomics.store(w, rateCell(target, R.KEY), k1);
      return target;
    } finally {
      Atomics.store(w, lock, 0);
    }
  }
}

/** KEY values: no key, and an entry being rewritten (hashes that land on either are moved to 2). */
const EMPTY = 0;
const BUSY = 1;
/**
 * Loads of a held claim word (or a BUSY entry) before it is taken for abandoned, its thread having
 * died mid-claim: far more than the few stores a live claim needs.
 */
const SPINS = 1_000_000;

/** The entry of the window holding (k1, k2), or -1. Waits out an entry being rewritten. */
function find(w: Int32Array, home: number, k1: number, k2: number): number {
  for (let i = 0; i < RATE_PROBE; i++) {
    const e = home + i;
    const cell = rateCell(e, R.KEY);
    let key = Atomics.load(w, cell);
    for (let n = 0; key === BUSY && n < SPINS; n++) key = Atomics.load(w, cell);
    if (key === k1 && Atomics.load(w, rateCell(e, R.CHECK)) === k2) return e;
  }
  return -1;
}

function claim(w: Int32Array, lock: number): void {
  for (let n = 0; n < SPINS; n++) if (Atomics.compareExchange(w, lock, 0, 1) === 0) return;
  // Abandoned by a thread that died holding it: take it over.
  Atomics.store(w, lock, 1);
}
