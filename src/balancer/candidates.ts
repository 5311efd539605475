// Which members may take the next pick, and with what effective weight: availability, panic mode,
// slow start and the retry exclusion, shared by every policy.
//
// Health, weight and ejection live in shared memory and change under us without a notification,
// so "rebuild on change" becomes "snapshot at most once per table millisecond": `refresh` rescans
// the members only when `now` or `exclude` differs from the last call, and otherwise returns the
// cached snapshot. A state change is therefore seen within 1 ms, and a pick costs O(1) for most
// policies instead of one scan (four Atomics loads per member) per request. Everything is written
// into typed arrays sized at construction: refresh and pick allocate nothing.

import { Admin, C, CAPACITY, ageOf, cell } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import type { Member, PolicyOptions } from './policy.js';

/**
 * Slow-start weights start here (fraction of the full weight) and rise linearly to 1 over the
 * window. Envoy's default min_weight_percent is 10% too: low enough not to swamp a cold backend,
 * high enough that it gets the traffic that warms it up.
 */
export const SLOW_START_FLOOR = 0.1;

/** Slow-start multiplier for a slot at `now`: SLOW_START_FLOOR → 1 over `windowMs` since SLOW_START_AT. */
export function slowStartFactor(table: SharedTable, slot: number, now: number, windowMs: number): number {
  if (windowMs <= 0) return 1;
  const elapsed = ageOf(table.get(C.SLOW_START_AT, slot), now); // Infinity for 0: none
  if (elapsed >= windowMs) return 1;
  if (elapsed <= 0) return SLOW_START_FLOOR;
  return SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * (elapsed / windowMs);
}

// Per-member state during a scan.
const OFF = 0; // drained, disabled or weight 0: never picked, not even in panic
const DOWN = 1; // operator allows it, but unhealthy or ejected: picked only in panic
const UP = 2;

export class Candidates {
  /** Slots that may take the current pick, in member order; the first `count` entries are valid. */
  readonly slots: Int32Array;
  /** Member index (into the members array) of each entry. */
  readonly member: Int32Array;
  /** Effective weight of each entry: live table weight (× WEIGHT_SCALE) × slow-start factor. */
  readonly weights: Float64Array;
  /** Slow-start factor of each entry (1 = full weight). */
  readonly ramps: Float64Array;
  /** Running sums of `weights`, for weighted binary search. */
  readonly cumulative: Float64Array;
  /** By member index: 1 when that member is a candidate now (hashing policies walk by member). */
  readonly marked: Uint8Array;

  readonly #table: SharedTable;
  readonly #memberSlots: Int32Array;
  readonly #state: Uint8Array;
  readonly #liveWeight: Int32Array;
  readonly #panicPercent: number;
  readonly #slowStartMs: number;
  readonly #adminBase: number;
  #count = 0;
  #total = 0;
  #uniform = true;
  #ramping = false;
  #panic = false;
  #now = Number.NaN;
  #exclude = Number.NaN;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    const n = members.length;
    this.#table = table;
    this.#memberSlots = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const slot = members[i]!.slot;
      if (!Number.isInteger(slot) || slot < 0 || slot >= CAPACITY) {
        throw new RangeError(`member ${members[i]!.id}: slot ${slot} is outside the table (0..${CAPACITY - 1})`);
      }
      this.#memberSlots[i] = slot;
    }
    this.slots = new Int32Array(n);
    this.member = new Int32Array(n);
    this.weights = new Float64Array(n);
    this.ramps = new Float64Array(n);
    this.cumulative = new Float64Array(n);
    this.marked = new Uint8Array(n);
    this.#state = new Uint8Array(n);
    this.#liveWeight = new Int32Array(n);
    this.#panicPercent = options.panicThresholdPercent;
    this.#slowStartMs = options.slowStartMs;
    this.#adminBase = cell(C.ADMIN, 0);
  }

  /** Entries valid after the last refresh. */
  get count(): number {
    return this.#count;
  }
  /** Sum of `weights`. */
  get total(): number {
    return this.#total;
  }
  /** All effective weights equal (policies may then skip weighting). */
  get uniform(): boolean {
    return this.#uniform;
  }
  /** Some candidate is in slow start (ramps < 1). */
  get ramping(): boolean {
    return this.#ramping;
  }
  /** Too few members available: the snapshot holds every member the operator allows. */
  get panic(): boolean {
    return this.#panic;
  }

  /** Forget the snapshot so the next refresh rescans even within the same millisecond. */
  invalidate(): void {
    this.#now = Number.NaN;
  }

  /**
   * Rebuild the snapshot for a pick at `now` avoiding `exclude` (a slot, or -1), unless it is
   * already current. Returns the number of candidates.
   *
   * Panic (Envoy's healthy panic threshold): when fewer than panicThresholdPercent% of the members
   * the operator allows are available, the few left would take the whole load and likely fall over
   * too, so spread it over all allowed members instead. Drained, disabled and weight-0 members stay
   * out even then: those are operator decisions, not health. 0% turns panic off.
   *
   * `exclude` is dropped only while some other candidate remains: a retry may go back to the same
   * backend rather than fail outright.
   */
  refresh(now: number, exclude: number): number {
    if (now === this.#now && exclude === this.#exclude) return this.#count;
    this.#now = now;
    this.#exclude = exclude;

    const table = this.#table;
    const words = table.words;
    const slots = this.#memberSlots;
    const state = this.#state;
    const live = this.#liveWeight;
    const n = slots.length;

    let allowed = 0;
    let up = 0;
    for (let i = 0; i < n; i++) {
      const slot = slots[i]!;
      const weight = table.weight(slot);
      live[i] = weight;
      if (weight <= 0 || Atomics.load(words, this.#adminBase + slot) !== Admin.ENABLED) {
        state[i] = OFF;
        continue;
      }
      allowed++;
      if (table.available(slot, now)) {
        state[i] = UP;
        up++;
      } else {
        state[i] = DOWN;
      }
    }
    const panic = this.#panicPercent > 0 && up * 100 < this.#panicPercent * allowed;
    const need = panic ? DOWN : UP;

    this.marked.fill(0);
    this.#count = 0;
    this.#total = 0;
    this.#uniform = true;
    this.#ramping = false;
    this.#panic = panic;
    let excluded = -1;
    for (let i = 0; i < n; i++) {
      if (state[i]! < need) continue;
      if (slots[i] === exclude) {
        excluded = i;
        continue;
      }
      this.#push(i, now);
    }
    if (this.#count === 0 && excluded >= 0) this.#push(excluded, now);
    return this.#count;
  }

  #push(i: number, now: number): void {
    const k = this.#count++;
    const slot = this.#memberSlots[i]!;
    const ramp = slowStartFactor(this.#table, slot, now, this.#slowStartMs);
    const weight = this.#liveWeight[i]! * ramp;
    this.slots[k] = slot;
    this.member[k] = i;
    this.ramps[k] = ramp;
    this.weights[k] = weight;
    this.#total += weight;
    this.cumulative[k] = this.#total;
    this.marked[i] = 1;
    if (ramp < 1) this.#ramping = true;
    if (weight !== this.weights[0]) this.#uniform = false;
  }

  /**
   * Entry whose cumulative-weight interval holds `u × total`, u in [0, 1): weighted random in
   * O(log n) by binary search over `cumulative`. Precondition: count > 0.
   */
  weightedIndex(u: number): number {
    const target = u * this.#total;
    const cum = this.cumulative;
    let lo = 0;
    let hi = this.#count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
