// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, §3.4): a lookup table of M entries (M prime), each naming a member, filled
// by letting members take turns claiming their next preferred free entry, where member i prefers
//   permutation_i[j] = (offset_i + j × skip_i) mod M,
//   offset_i = h1(id) mod M,  skip_i = h2(id) mod (M − 1) + 1.
// M prime makes every permutation visit every entry. A pick is one table read: table[hash mod M].
// Shares come out within about 1% of even for M ≫ N (the paper suggests M > 100 N), and when one
// of N members leaves, its ≈1/N of the keys move plus a small extra.
//
// Weights (as Envoy's Maglev does it, in its own way): per round, member i claims an entry when
// ⌊round × w_i / w_max⌋ grows, so the heaviest claims every round and shares follow the weights.
//
// Built at construction from ids and configured weights only (members taken in id order), so every
// worker and every Sluice host builds the same table. Per pick, an entry whose member is not a
// candidate (down, drained, excluded) falls through to the following entries until one names a
// candidate: deterministic per key, and the orphaned keys spread over the others by table share.
// Slow start and live weights do not reshape the table. A request without a key gets a weighted
// random pick.

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import { NO_HASH, hashString } from './hash.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

/** Hash seeds for the two permutation parameters (any two distinct constants). */
const OFFSET_SEED = 0x4d41474c; // "MAGL"
const SKIP_SEED = 0x45563031; // "EV01"

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export class Maglev implements Policy {
  readonly #candidates: Candidates;
  readonly #rng: Rng;
  readonly #memberSlots: Int32Array;
  /** Member index for each of the M entries (empty when there are no members). */
  readonly #lookup: Uint16Array;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
    this.#memberSlots = Int32Array.from(members, (m) => m.slot);
    this.#lookup = members.length === 0 ? new Uint16Array(0) : buildLookup(members, options.maglevTableSize);
  }

  /** A copy of the lookup table (member index per entry), for tests and the status page. */
  get lookup(): Uint16Array {
    return this.#lookup.slice();
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    if (ctx.hash === NO_HASH) return c.slots[c.weightedIndex(this.#rng.float())]!;
    const lookup = this.#lookup;
    const size = lookup.length;
    let i = (ctx.hash >>> 0) % size;
    for (let step = 0; step < size; step++, i++) {
      if (i === size) i = 0;
      const owner = lookup[i]!;
      if (c.marked[owner] === 1) return this.#memberSlots[owner]!;
    }
    return -1;
  }
}

function buildLookup(members: readonly Member[], size: number): Uint16Array {
  const n = members.length;
  if (!isPrime(size)) throw new RangeError(`maglevTableSize ${size} must be a prime`);
  if (size < n) throw new RangeError(`maglevTableSize ${size} is smaller than the pool (${n} members)`);
  const order = members.map((_, i) => i).sort((a, b) => (members[a]!.id < members[b]!.id ? -1 : members[a]!.id > members[b]!.id ? 1 : 0));
  const next = new Float64Array(n); // next preferred entry of each member
  const skip = new Float64Array(n);
  const share = new Float64Array(n); // w_i / w_max
  let maxWeight = 0;
  for (const m of members) {
    if (!(m.weight > 0)) throw new RangeError(`member ${m.id}: weight ${m.weight} must be > 0`);
    maxWeight = Math.max(maxWeight, m.weight);
  }
  for (let i = 0; i < n; i++) {
    const id = members[i]!.id;
    next[i] = hashString(id, OFFSET_SEED) % size;
    skip[i] = (hashString(id, SKIP_SEED) % (size - 1)) + 1;
    share[i] = members[i]!.weight / maxWeight;
  }

  const EMPTY = 0xffff; // member indexes stay below CAPACITY (1024)
  const lookup = new Uint16Array(size).fill(EMPTY);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let r = 0; r < n && filled < size; r++) {
      const i = order[r]!;
      if (Math.floor(round * share[i]!) === Math.floor((round - 1) * share[i]!)) continue;
      let entry = next[i]!;
      while (lookup[entry] !== EMPTY) entry = (entry + skip[i]!) % size;
      lookup[entry] = i;
      next[i] = (entry + skip[i]!) % size;
      filled++;
    }
  }
  return lookup;
}

export const maglev: PolicyFactory = (table, members, options) => new Maglev(table, members, options);
