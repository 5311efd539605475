// Ring hash (consistent hashing, Karger et al. 1997; ketama-style virtual nodes): each member owns
// points on a 32-bit ring in proportion to its weight; a key goes to the owner of the first point at
// or after hash(key), wrapping around. When a member leaves, only the keys it owned move (≈ 1/N).
//
// Built at construction (the control plane rebuilds the policy on membership change) from the
// configured member weights and ids only, never from the seed or the member order, so every worker
// and every Sluice host builds the same ring and maps a key the same way. Live weight changes do not
// reshape the ring (that would move keys); weight 0, health, panic and exclusion do apply per pick:
// an unusable owner is skipped by walking forward to the next point of another candidate, which
// spreads its keys over the others in proportion to their ring share. Slow start does not apply
// (it would mean moving keys back and forth). A request without a key gets a weighted random pick.

import { CAPACITY } from '../state/layout.js';
import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import { NO_HASH, hashString } from './hash.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

/**
 * Ring points per unit of weight. A member's share of the ring has a relative spread of about
 * 1/√points (the sum of that many random arcs), so 2048 points keep shares within a few percent
 * (the test holds keys within ±10% of even); ketama's 160 would give ~8% per member.
 */
export const POINTS_PER_WEIGHT = 2048;
/** Ring size cap (points are 6 bytes each: 1.5 MiB at the cap); weights are scaled down to fit. */
export const MAX_POINTS = 1 << 18;

/** Index of the first value ≥ key in a sorted array, or its length. */
function lowerBound(values: Uint32Array, key: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class RingHash implements Policy {
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  readonly #memberSlots: Int32Array;
  /** Point hashes, ascending. */
  readonly #points: Uint32Array;
  /** Member index owning each point. */
  readonly #owners: Uint16Array;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
    this.#memberSlots = Int32Array.from(members, (m) => m.slot);
    const ring = buildRing(members);
    this.#points = ring.points;
    this.#owners = ring.owners;
  }

  /** Points on the ring (for tests and the status page). */
  get size(): number {
    return this.#points.length;
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    if (ctx.hash === NO_HASH) return c.slots[c.weightedIndex(this.#rng.float())]!;
    const points = this.#points;
    const size = points.length;
    let i = lowerBound(points, ctx.hash >>> 0);
    // Some candidate owns points (n > 0), so this walk ends within one lap.
    for (let step = 0; step < size; step++, i++) {
      if (i === size) i = 0;
      const owner = this.#owners[i]!;
      if (c.marked[owner] === 1) return this.#memberSlots[owner]!;
    }
    return -1;
  }
}

/**
 * Points for each member: round(weight × scale), at least 1, where scale is POINTS_PER_WEIGHT per
 * unit weight (per lightest weight if that is below 1), shrunk to fit MAX_POINTS. While the cap is
 * not reached a member's points do not depend on the others, so a membership change moves only the
 * keys of the member that changed. Ties between equal point hashes go to the smaller id.
 */
function buildRing(members: readonly Member[]): { points: Uint32Array; owners: Uint16Array } {
  const n = members.length;
  if (n === 0) return { points: new Uint32Array(0), owners: new Uint16Array(0) };
  if (n > CAPACITY) throw new RangeError(`ring hash: ${n} members is more than the table holds (${CAPACITY})`);
  let minWeight = Infinity;
  let totalWeight = 0;
  for (const m of members) {
    if (!(m.weight > 0)) throw new RangeError(`member ${m.id}: weight ${m.weight} must be > 0`);
    minWeight = Math.min(minWeight, m.weight);
    totalWeight += m.weight;
  }
  let scale = POINTS_PER_WEIGHT / Math.min(1, minWeight);
  let round = Math.round;
  if (totalWeight * scale > MAX_POINTS) {
    scale = (MAX_POINTS - n) / totalWeight; // leave room for the "at least 1" below
    round = Math.floor;
  }
  const counts = members.map((m) => Math.max(1, round(m.weight * scale)));
  const size = counts.reduce((a, b) => a + b, 0);

  // Rank members by id so ties break the same way whatever order discovery listed them in.
  const byId = members.map((_, i) => i).sort((a, b) => (members[a]!.id < members[b]!.id ? -1 : members[a]!.id > members[b]!.id ? 1 : 0));
  const rank = new Uint16Array(n);
  byId.forEach((member, r) => (rank[member] = r));

  // Pack (hash, rank) into one exact double (32 + 10 bits < 53; rank < CAPACITY = 1024) so a
  // numeric sort orders both.
  const packed = new Float64Array(size);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const id = members[i]!.id;
    for (let v = 0; v < counts[i]!; v++) packed[k++] = hashString(id, v) * 1024 + rank[i]!;
  }
  packed.sort();
  const points = new Uint32Array(size);
  const owners = new Uint16Array(size);
  for (let p = 0; p < size; p++) {
    const value = packed[p]!;
    points[p] = Math.floor(value / 1024);
    owners[p] = byId[value % 1024]!;
  }
  return { points, owners };
}

export const ringHash: PolicyFactory = (table, members, options) => new RingHash(table, members, options);
