// Weighted random: each candidate with probability weight / Σ weight, by binary search over the
// cumulative weight table (O(log n) per pick).
//
// The cumulative table is built by Candidates when the snapshot is rebuilt (at most once per
// millisecond of table time, see candidates.ts), not at construction only, so that live weight
// changes, slow start, health and the retry exclusion all apply; between rebuilds a pick only reads.

import type { SharedTable } from '../state/table.js';
import { Candidates } from './candidates.js';
import type { Member, PickContext, Policy, PolicyFactory, PolicyOptions } from './policy.js';
import { Rng } from './rng.js';

export class WeightedRandom implements Policy {
  readonly #candidates: Candidates;
  readonly #rng: Rng;

  constructor(table: SharedTable, members: readonly Member[], options: PolicyOptions) {
    this.#candidates = new Candidates(table, members, options);
    this.#rng = new Rng(options.seed);
  }

  pick(ctx: PickContext): number {
    const c = this.#candidates;
    const n = c.refresh(ctx.now, ctx.exclude);
    if (n === 0) return -1;
    return c.slots[c.weightedIndex(this.#rng.float())]!;
  }
}

export const weightedRandom: PolicyFactory = (table, members, options) => new WeightedRandom(table, members, options);
