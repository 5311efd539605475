// Views and Atomics accessors over the shared backend table (layout.ts holds the map).
// One instance per thread, all over the same SharedArrayBuffer. Accessors take a slot index and do
// one Atomics operation each; they allocate nothing.

import { Admin, BYTES, C, CAPACITY, H, HEADER_WORDS, Health, MAX_ROUTES, MAX_WORKERS, STALE_MS, TIME_COLUMNS, cell, routeCell, toStamp, workerCell } from './layout.js';

/** Unix ms; Date.now unless a test injects a clock. */
export type Clock = () => number;

export class SharedTable {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  /** Unix ms of the table's epoch; `now()` is ms since it (layout.ts, "Time", says how it is stored). */
  readonly epoch: number;
  readonly #clock: Clock;
  readonly #inFlight: number;
  readonly #health: number;
  readonly #admin: number;
  readonly #weight: number;
  readonly #ejected: number;
  readonly #ewma: number;
  readonly #ewmaStamp: number;
  readonly #worker: number;

  /**
   * Wrap an existing buffer (worker side), or create a fresh one (control plane). `clock` is for
   * tests: every thread's table must read the same clock, and it should return whole milliseconds.
   */
  constructor(buffer?: SharedArrayBuffer, worker = -1, clock: Clock = Date.now) {
    if (buffer && buffer.byteLength !== BYTES) throw new Error(`shared table is ${buffer.byteLength} bytes, expected ${BYTES}`);
    this.buffer = buffer ?? new SharedArrayBuffer(BYTES);
    this.words = new Int32Array(this.buffer);
    this.#clock = clock;
    if (!buffer) {
      const now = clock();
      Atomics.store(this.words, H.EPOCH_HI, Math.floor(now / 2 ** 31));
      Atomics.store(this.words, H.EPOCH_LO, now % 2 ** 31);
    }
    this.epoch = Atomics.load(this.words, H.EPOCH_HI) * 2 ** 31 + Atomics.load(this.words, H.EPOCH_LO);
    this.#inFlight = cell(C.IN_FLIGHT, 0);
    this.#health = cell(C.HEALTH, 0);
    this.#admin = cell(C.ADMIN, 0);
    this.#weight = cell(C.WEIGHT, 0);
    this.#ejected = cell(C.EJECTED_UNTIL, 0);
    this.#ewma = cell(C.EWMA_US, 0);
    this.#ewmaStamp = cell(C.EWMA_STAMP, 0);
    if (worker >= MAX_WORKERS) throw new Error(`worker index ${worker} over MAX_WORKERS ${MAX_WORKERS}`);
    this.#worker = worker < 0 ? -1 : workerCell(worker, 0);
  }

  /**
   * Milliseconds since the table epoch (same clock in every thread). Never wraps; time columns
   * store it as a stamp (toStamp) and read it back with ageOf.
   */
  now(): number {
    return this.#clock() - this.epoch;
  }

  /** Hits of the route at `index` in the route table (0 past MAX_ROUTES: not counted). */
  routeHits(index: number): number {
    return index < MAX_ROUTES ? Atomics.load(this.words, routeCell(index)) : 0;
  }

  /** Control plane, when a reload changes the routes: every hit counter back to 0. */
  resetRouteHits(): void {
    for (let i = 0; i < MAX_ROUTES; i++) Atomics.store(this.words, routeCell(i), 0);
  }

  get(column: number, slot: number): number {
    return Atomics.load(this.words, cell(column, slot));
  }
  set(column: number, slot: number, value: number): void {
    Atomics.store(this.words, cell(column, slot), value);
  }
  add(column: number, slot: number, delta: number): number {
    return Atomics.add(this.words, cell(column, slot), delta);
  }
  header(word: number): number {
    return Atomics.load(this.words, word);
  }
  addHeader(word: number, delta: number): number {
    return Atomics.add(this.words, word, delta);
  }
  setHeader(word: number, value: number): void {
    Atomics.store(this.words, word, value);
  }

  // Hot-path accessors: precomputed column bases, one Atomics op each.

  inFlight(slot: number): number {
    return Atomics.load(this.words, this.#inFlight + slot);
  }
  ewmaUs(slot: number): number {
    return Atomics.load(this.words, this.#ewma + slot);
  }
  ewmaStamp(slot: number): number {
    return Atomics.load(this.words, this.#ewmaStamp + slot);
  }
  /** Compare-and-swap the EWMA; true when this thread's value was installed. */
  casEwma(slot: number, expected: number, value: number): boolean {
    return Atomics.compareExchange(this.words, this.#ewma + slot, expected, value) === expected;
  }
  /** Stamp the EWMA's last update at table time `ms`. */
  stampEwma(slot: number, ms: number): void {
    Atomics.store(this.words, this.#ewmaStamp + slot, toStamp(ms));
  }
  weight(slot: number): number {
    return Atomics.load(this.words, this.#weight + slot);
  }

  /** Start of a request to `slot`: counts it globally and against this worker (for crash recovery). */
  acquire(slot: number): void {
    Atomics.add(this.words, this.#inFlight + slot, 1);
    if (this.#worker >= 0) Atomics.add(this.words, this.#worker + slot, 1);
  }
  release(slot: number): void {
    Atomics.sub(this.words, this.#inFlight + slot, 1);
    if (this.#worker >= 0) Atomics.sub(this.words, this.#worker + slot, 1);
  }

  /**
   * Add `n` bytes to a 64-bit WebSocket byte counter (the LO column; HI is the next one). Atomics.add
   * returns the old LO, so exactly one add sees each carry past 2^32 and bumps HI.
   */
  addWsBytes(lo: number, slot: number, n: number): void {
    const old = Atomics.add(this.words, cell(lo, slot), n) >>> 0;
    if (old + n > 0xffffffff) Atomics.add(this.words, cell(lo + 1, slot), 1);
  }
  /** A 64-bit WebSocket byte counter (exact up to 2^53). */
  wsBytes(lo: number, slot: number): number {
    return Atomics.load(this.words, cell(lo + 1, slot)) * 2 ** 32 + (Atomics.load(this.words, cell(lo, slot)) >>> 0);
  }

  /**
   * Whether a backend may take new traffic: healthy or not yet checked, enabled, weight > 0 and not
   * ejected. UNKNOWN counts as up so a pool without active checks works at once.
   */
  available(slot: number, now: number): boolean {
    const w = this.words;
    if (Atomics.load(w, this.#health + slot) === Health.UNHEALTHY) return false;
    if (Atomics.load(w, this.#admin + slot) !== Admin.ENABLED) return false;
    if (Atomics.load(w, this.#weight + slot) <= 0) return false;
    // Not ejected: never was (0), or the ejection's end is not ahead of now (ageOf, inlined).
    const until = Atomics.load(w, this.#ejected + slot);
    return until === 0 || ((now - until) | 0) >= 0;
  }

  /**
   * Control plane, every RETIRE_EVERY_MS: set time stamps older than STALE_MS to 0, which reads the
   * same ("long ago") but can never alias into the future (layout.ts, "Time"). A compareExchange,
   * so a stamp a worker rewrites meanwhile is left alone. Returns how many were retired.
   */
  retireStaleTimes(now = this.now()): number {
    const used = this.header(H.SLOTS_USED);
    let retired = 0;
    for (const column of TIME_COLUMNS) {
      for (let slot = 0; slot < used; slot++) {
        const i = cell(column, slot);
        const stamp = Atomics.load(this.words, i);
        if (stamp !== 0 && ((now - stamp) | 0) > STALE_MS && Atomics.compareExchange(this.words, i, stamp, 0) === stamp) retired++;
      }
    }
    return retired;
  }

  /**
   * Control plane, after a worker died: its in-flight requests will never release, so take them
   * off the global counts and zero its column. The table itself survives the crash.
   */
  forgetWorker(worker: number): void {
    for (let slot = 0; slot < CAPACITY; slot++) {
      const i = workerCell(worker, slot);
      const n = Atomics.exchange(this.words, i, 0);
      if (n !== 0) Atomics.sub(this.words, cell(C.IN_FLIGHT, slot), n);
    }
  }
}

export { HEADER_WORDS };
